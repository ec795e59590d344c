//! Hub parquet files that `gaincell eval download` converts (WikiText, HellaSwag, PIQA, ARC): the binary's own
//! row reader (crates/gaincell/src/parquet_rows.rs, compiled in), on the input written as a `.parquet` file, each
//! row then written as a JSON line. The
//! parquet crate's own panics, which `parquet_rows` turns into errors, do not count as crashes here.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/gaincell/src/parquet_rows.rs"]
mod parquet_rows;
use parquet_rows::parquet_rows;

/// libfuzzer-sys aborts on every panic, caught or not; `parquet_rows` turns the parquet crate's panics into errors
/// on purpose, so those are let through (any other panic still aborts).
fn let_parquet_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let aborting = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parquet = info
                .location()
                .is_some_and(|l| l.file().contains("/parquet-"));
            // `parquet_rows` reads on its own thread and catches these there.
            if !in_parquet {
                aborting(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_parquet_panics_unwind();
    let path = gaincell_fuzz::temp_file("data.parquet", data);
    let rows = parquet_rows(&path);
    if let Ok(rows) = rows {
        for r in rows {
            let _ = r.to_string();
        }
    }
});
