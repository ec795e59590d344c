//! Output paths checked against input paths before anything is written: an output that is, contains or lies
//! inside an input would overwrite or mix with what the command is reading.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// `path` made absolute without requiring it to exist: `.` and `..` resolved by name, then the deepest existing
/// ancestor canonicalised (symlinks resolved) with the rest appended.
fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = std::env::current_dir().unwrap_or_default().join(path);
    let mut lexical = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                lexical.pop();
            }
            c => lexical.push(c),
        }
    }
    let mut rest = Vec::new();
    let mut base = lexical.as_path();
    loop {
        if let Ok(mut out) = base.canonicalize() {
            out.extend(rest.iter().rev());
            return out;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return lexical,
        }
    }
}

/// Write a whole output file through a temporary name and a rename, so a failure mid-write (a full disk) leaves
/// the previous file or none, never a truncated one. The error names the path once, with the OS's reason.
pub fn write_file(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> Result<()> {
    Ok(gaincell_model::checkpoint::write_atomically(
        path.as_ref(),
        bytes.as_ref(),
    )?)
}

/// [`write_file`], creating the file's folder first when it is missing.
pub fn write_file_creating_folder(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_file(path, bytes)
}

/// Whether an output option names standard output (`-`).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A command's result file: `-` is standard output (as for every `--json`), anything else a file written atomically.
pub fn write_output(path: &Path, text: impl AsRef<str>) -> Result<()> {
    if is_stdout(path) {
        println!("{}", text.as_ref().trim_end());
        return Ok(());
    }
    write_file(path, text.as_ref())
}

/// Refuse an output (`flag` names its option, e.g. `--out`) that is, contains or lies inside one of `inputs`.
pub fn refuse_overlap(flag: &str, out: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    let o = absolute(out);
    for (name, input) in inputs {
        let i = absolute(input);
        let relation = if o == i {
            "is"
        } else if o.starts_with(&i) {
            "lies inside"
        } else if i.starts_with(&o) {
            "contains"
        } else {
            continue;
        };
        bail!(
            "{flag} {} {relation} the input {name} {}: writing there would overwrite or mix with what is being \
             read; choose another {flag}",
            out.display(),
            input.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inside_and_containing_are_refused_siblings_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("model")).unwrap();
        let model = dir.join("model");
        for (out, relation) in [
            (model.clone(), "is"),
            (model.join("sub/new"), "lies inside"),
            (dir.clone(), "contains"),
            (dir.join("x/../model"), "is"),
        ] {
            let e = refuse_overlap("--out", &out, &[("--from", &model)]).unwrap_err();
            assert!(e.to_string().contains(relation), "{out:?}: {e}");
        }
        refuse_overlap("--out", &dir.join("model2"), &[("--from", &model)]).unwrap();
    }
}
