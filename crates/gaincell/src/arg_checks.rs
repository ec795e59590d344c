//! Value parsers for command-line numbers that have a domain (counts ≥ 1, fractions strictly inside (0, 1)):
//! refused by clap at the edge, naming the option, before any work starts.

/// A count of at least one (tokens, heads, repetitions, steps, sequences per batch, …).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n == 0 {
        return Err("0: give at least 1".into());
    }
    Ok(n)
}

/// A share strictly between 0 and 1 (e.g. the part held out for validation).
pub fn open_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(f > 0.0 && f < 1.0) {
        return Err(format!("{s}: give a share strictly between 0 and 1"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_fractions_outside_their_domain_are_refused() {
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(at_least_one("-2").is_err() && at_least_one("x").is_err());
        assert_eq!(open_fraction("0.05"), Ok(0.05));
        for bad in ["0", "1", "1.5", "-0.1", "nan", "inf"] {
            assert!(open_fraction(bad).is_err(), "{bad}");
        }
    }
}
