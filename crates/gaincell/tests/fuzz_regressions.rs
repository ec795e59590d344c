//! `.npy` inputs that crashed the `npy` fuzz target (fuzz/): a header whose shape the file does not hold made
//! ndarray-npy allocate the whole array from the header (an abort, not an error). Each must now be a clear error.
//! The files are under tests/fixtures/fuzz/.

use std::path::Path;
use std::process::Command;

fn attention_on(npy: &str) -> String {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(npy);
    let dir = tempfile::tempdir().unwrap();
    let f = fixture.display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args([
            "attention",
            "--chip",
            "software",
            "--q",
            &f,
            "--k",
            &f,
            "--v",
            &f,
        ])
        .arg("--out-dir")
        .arg(dir.path().join("sim"))
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "accepted {npy}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Shape (2^40,) of float32 and no data: 4 TiB allocated before the read failed.
#[test]
fn npy_whose_shape_the_file_does_not_hold_is_an_error() {
    let e = attention_on("npy-shape-2e40.npy");
    assert!(
        e.contains("needs 4398046511104 bytes of float32 data, the file has 0 bytes"),
        "{e}"
    );
}

/// Shape (2^32, 2^32): the element count overflows (ndarray-npy refused it already; the size check must too).
#[test]
fn npy_whose_shape_overflows_is_an_error() {
    let e = attention_on("npy-shape-overflow.npy");
    assert!(e.contains("more bytes than a file can hold"), "{e}");
}

/// Found by libFuzzer (`npy` target, oom-2f38068304ad086c0be6381fd878d2a6ed0ac8df): a version-3 header whose
/// length field says 3.6 GB in a 169-byte file; ndarray-npy allocated the header's length before reading it.
#[test]
fn npy_whose_header_length_the_file_does_not_hold_is_an_error() {
    let e = attention_on("npy-header-len-3.6e9.npy");
    assert!(
        e.contains("the header says it is 3632922742 bytes long, the file has 157"),
        "{e}"
    );
}
