//! Peak resident memory of this process, per measured phase (Linux: VmHWM, reset through clear_refs), so a
//! benchmark can print each chip's peak beside PyTorch's.

/// Peak resident memory since the last [`reset`], in MB (None where /proc is not there).
pub fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Reset the peak to the current resident size (writing 5 to clear_refs), so the next phase's peak is its own.
pub fn reset() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_large_allocation_raises_the_peak_and_a_reset_does_not_raise_it() {
        let Some(before) = super::peak_mb() else {
            eprintln!("skipped: no /proc/self/status here");
            return;
        };
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let during = super::peak_mb().unwrap();
        assert!(during >= before + 60.0, "{before} → {during}");
        drop(big);
        // The allocator may keep the freed pages: after a reset the peak is the current size, never more.
        super::reset();
        assert!(super::peak_mb().unwrap() <= during + 1.0);
    }
}
