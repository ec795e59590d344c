//! Pareto fronts of a sweep: the points no other point beats in both of two figures, both lower-is-better
//! (accuracy loss against energy per token, and against latency per token).

/// Whether each point is on the front of `(a, b)` pairs: no other point is at least as good in both and better
/// in one. Points with a NaN figure are never on it; equal points are all on it.
pub fn front(points: &[(f64, f64)]) -> Vec<bool> {
    let ok = |p: &(f64, f64)| !p.0.is_nan() && !p.1.is_nan();
    points
        .iter()
        .map(|p| {
            ok(p)
                && !points
                    .iter()
                    .any(|q| ok(q) && q.0 <= p.0 && q.1 <= p.1 && (q.0 < p.0 || q.1 < p.1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::front;

    #[test]
    fn dominated_points_are_off_the_front() {
        // (loss, energy): (1, 5) and (3, 1) trade off; (2, 2) too; (3, 5) is beaten by all three.
        let pts = [
            (1.0, 5.0),
            (3.0, 5.0),
            (2.0, 2.0),
            (3.0, 1.0),
            (f64::NAN, 0.0),
        ];
        assert_eq!(front(&pts), [true, false, true, true, false]);
    }

    #[test]
    fn ties_stay_on_the_front_and_a_point_equal_in_one_figure_is_beaten() {
        let pts = [(1.0, 1.0), (1.0, 1.0), (1.0, 2.0)];
        assert_eq!(front(&pts), [true, true, false]);
        assert_eq!(front(&[]), Vec::<bool>::new());
    }
}
