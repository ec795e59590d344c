//! Reading and writing `.npy` arrays with errors that say what was wrong and how to fix it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

/// Read a float32 array.
pub fn read_f32(path: &Path) -> Result<ArrayD<f32>> {
    if path.is_dir() {
        bail!("{} is a directory: give a .npy file", path.display());
    }
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_data_size(&bytes).map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
    let a: ArrayD<f32> = ndarray_npy::ReadNpyExt::read_npy(&bytes[..]).map_err(|e| match &e {
        ndarray_npy::ReadNpyError::WrongDescriptor(descr) => anyhow::anyhow!(
            "{}: holds {descr} data, not float32: save it with np.save(path, x.astype(np.float32))",
            path.display()
        ),
        _ => anyhow::anyhow!("{}: {e}", path.display()),
    })?;
    if let Some((i, x)) = a.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        bail!(
            "{}: element {i} (row-major) is {x}; inputs must be finite",
            path.display()
        );
    }
    Ok(a)
}

/// Check that a `.npy` file holds the float32 data its header's shape announces, before ndarray-npy allocates the
/// header's length and the whole array from the header alone (a corrupt header would be a huge allocation, not an
/// error). What does not start like a `.npy` file at all is left to ndarray-npy to report.
fn check_data_size(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 12 || !bytes.starts_with(b"\x93NUMPY") {
        return Ok(());
    }
    let (start, len): (usize, usize) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        _ => return Ok(()),
    };
    // ndarray-npy allocates the header's own length before reading it, too.
    let Some(header) = bytes.get(start..start.saturating_add(len)) else {
        return Err(format!(
            "the header says it is {len} bytes long, the file has {} after the {start}-byte preamble: it is \
             truncated or its header is corrupt",
            bytes.len() - start
        ));
    };
    let header = String::from_utf8_lossy(header);
    let bad = |why: &str| format!("the header {why}: the file is corrupt");
    // numpy writes no escapes; refusing them keeps a key spelt with escapes from hiding the shape.
    if header.contains('\\') {
        return Err(bad("has a backslash escape"));
    }
    // Every `'shape': (…)` in the text must fit (a second one, or one inside a string, cannot hide a larger one).
    let mut found = false;
    for key in ["'shape'", "\"shape\""] {
        for (at, _) in header.match_indices(key) {
            let rest = header[at + key.len()..].trim_start();
            let Some(rest) = rest.strip_prefix(':') else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix('(') else {
                continue;
            };
            let tuple = &rest[..rest
                .find(')')
                .ok_or_else(|| bad("has an unclosed shape tuple"))?];
            let mut elements: Option<usize> = Some(1);
            for dim in tuple.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                let d: usize = dim.parse().map_err(|_| {
                    bad(&format!("has a shape ({tuple}) that is not whole numbers"))
                })?;
                elements = elements.and_then(|n| n.checked_mul(d));
            }
            let have = bytes.len() - (start + len);
            match elements.and_then(|n| n.checked_mul(4)) {
                Some(need) if need <= have => found = true,
                need => {
                    let need = need.map_or_else(
                        || "more bytes than a file can hold".to_string(),
                        |n| format!("{n} bytes"),
                    );
                    return Err(format!(
                        "the header's shape ({tuple}) needs {need} of float32 data, the file has {have} bytes \
                         after its header: it is truncated or its header is corrupt"
                    ));
                }
            }
        }
    }
    if !found {
        return Err(bad("has no shape tuple"));
    }
    Ok(())
}

/// Write a float32 array of `shape`. A result that is NaN or infinite anywhere is an error, not a file.
pub fn write_f32(path: &Path, shape: &[usize], data: Vec<f32>) -> Result<()> {
    if let Some((i, x)) = data.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        bail!(
            "{}: the computed array holds {x} at element {i} (row-major), from finite inputs: a chip setting overflows (a cell curve, scaler or range too large); nothing was written",
            path.display()
        );
    }
    let a = ArrayD::from_shape_vec(IxDyn(shape), data).context("internal: output shape")?;
    // Encoded in memory, then written through a temporary name: a full disk leaves no truncated .npy behind.
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&a, &mut bytes).context("internal: encoding .npy")?;
    gaincell_model::checkpoint::write_atomically(path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}
