//! Reading and writing `.npy` arrays with errors that say what was wrong and how to fix it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

/// Read a float32 array.
pub fn read_f32(path: &Path) -> Result<ArrayD<f32>> {
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let a: ArrayD<f32> = ndarray_npy::read_npy(path).map_err(|e| match &e {
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
