//! Value parsers for command-line numbers that have a domain (counts ≥ 1): refused by clap at the edge, naming
//! the option, before any work starts.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_zero_and_non_numbers_are_refused() {
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(at_least_one("0").unwrap_err().contains("at least 1"));
        assert!(at_least_one("-2").is_err() && at_least_one("x").is_err());
    }
}
