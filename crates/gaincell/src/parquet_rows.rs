//! Every row of a parquet file as JSON, hardened against malformed files (the parquet crate panics or asks for
//! memory on some): one error instead. Used by `gaincell eval download`, and compiled into the `eval_parquet`
//! fuzz target (fuzz/) as it is, so the fuzzed code is this code.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

/// Every row of a parquet file as a JSON object (lists as arrays, structs as objects).
pub fn parquet_rows(path: &Path) -> Result<Vec<Value>> {
    let file = File::open(path).with_context(|| path.display().to_string())?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let reader = SerializedFileReader::new(file).context("not a parquet file")?;
    // The row reader panics (`ColumnChunkMetaData::byte_range`) on a negative column offset or size: check them,
    // and that each column chunk lies inside the file, first.
    for (g, group) in reader.metadata().row_groups().iter().enumerate() {
        for c in group.columns() {
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let len = c.compressed_size();
            let inside = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l))
                .is_some_and(|end| end <= file_len);
            if !inside {
                bail!(
                    "not a readable parquet file: row group {g}, column {}: offset {start} and size {len} are not \
                     inside the file's {file_len} bytes",
                    c.column_path()
                );
            }
        }
    }
    // A dictionary page's value count sizes the decoder's buffer before anything checks it against the page (28 GB
    // asked for by a 2.8 KB file, found by fuzzing): every dictionary value takes at least one byte of the page.
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).context("a parquet row group")?;
        for c in 0..group.num_columns() {
            let pages = group
                .get_column_page_reader(c)
                .context("a parquet column")?;
            for page in pages {
                let Ok(page) = page else { break };
                if let parquet::column::page::Page::DictionaryPage {
                    buf, num_values, ..
                } = &page
                {
                    if *num_values as usize > buf.len() {
                        bail!(
                            "not a readable parquet file: row group {g}, column {c}: a dictionary of {num_values} values in a page of {} bytes",
                            buf.len()
                        );
                    }
                }
            }
        }
    }
    // The row reader also panics on other malformed pages (`Decoder for dict should have been set`), and on some
    // it spins in its page-header decoder (a 1.3 KB file kept it busy past libFuzzer's 10 s): it runs on its own
    // thread with a deadline that grows with the file (a real task file reads in well under a second per MB).
    let deadline = std::time::Duration::from_secs(30 + file_len.min(1 << 40) / (1 << 20) * 5);
    rows_within(reader, deadline)
}

/// The rows of `reader`, or an error when reading them panics or takes longer than `deadline` (the reading
/// thread is then left behind: the command ends with the error).
pub fn rows_within(
    reader: SerializedFileReader<File>,
    deadline: std::time::Duration,
) -> Result<Vec<Value>> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rows = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader
                .get_row_iter(None)
                .context("parquet rows")?
                .map(|r| r.map(|row| row.to_json_value()).context("a parquet row"))
                .collect::<Result<Vec<Value>>>()
        }))
        .unwrap_or_else(|_| {
            bail!("not a readable parquet file: the parquet reader failed on its pages")
        });
        let _ = send.send(rows);
    });
    match receive.recv_timeout(deadline) {
        Ok(rows) => rows,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => bail!(
            "not a readable parquet file: reading its rows took more than {} s (malformed page headers)",
            deadline.as_secs()
        ),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            bail!("not a readable parquet file: the parquet reader failed on its pages")
        }
    }
}

#[cfg(test)]
mod fuzz_regressions {
    /// Found by the `eval_parquet` fuzz target (fuzz/, crash-b4f607b9da64c00c834e7a6059c15cc9ecefcba8): a column
    /// chunk with a negative offset made the parquet row reader panic (`ColumnChunkMetaData::byte_range`).
    #[test]
    fn parquet_with_a_negative_column_offset_is_an_error() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/parquet-negative-column-offset.parquet");
        let e = super::parquet_rows(&path).unwrap_err().to_string();
        assert!(e.contains("are not inside the file's"), "{e}");
    }

    /// Found by the `eval_parquet` fuzz target (crash-e385a7cbf16df83f92108b95a8f459954866bd56): a dictionary-encoded
    /// page without its dictionary page made the row reader panic (`Decoder for dict should have been set`).
    #[test]
    fn parquet_with_a_dictionary_page_missing_is_an_error() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/parquet-dictionary-page-missing.parquet");
        let e = super::parquet_rows(&path).unwrap_err().to_string();
        assert!(e.contains("not a readable parquet file"), "{e}");
    }

    /// Found by the `eval_parquet` fuzz target (timeout-553374ffcb1512ee266b02cc61c527d64f09ace8): page headers
    /// that keep the parquet crate's header decoder busy; within a deadline it is an error or rows, never a hang.
    #[test]
    fn parquet_whose_page_headers_spin_the_decoder_ends_within_the_deadline() {
        use parquet::file::reader::SerializedFileReader;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/parquet-slow-page-header.parquet");
        let started = std::time::Instant::now();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let deadline = std::time::Duration::from_secs(2);
        let _ = super::rows_within(reader, deadline);
        assert!(started.elapsed() < deadline + std::time::Duration::from_secs(2));
    }

    /// Found by the `eval_parquet` fuzz target (crash-b81a823d4458a65704040808b1fb0b926bf5088d): a dictionary page
    /// whose value count asked the decoder for 28 GB (an out-of-memory abort, not an error).
    #[test]
    fn parquet_with_a_dictionary_larger_than_its_page_is_an_error() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/parquet-dictionary-too-large.parquet");
        let e = super::parquet_rows(&path).unwrap_err().to_string();
        assert!(e.contains("not a readable parquet file"), "{e}");
    }
}
