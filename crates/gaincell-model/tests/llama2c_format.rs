//! llama2.c checkpoints: every format of the tiny fixture (scripts/make_llama2c_fixture.py, an independent numpy
//! transcription of llama2.c's export.py) gives the HF-named, HF-layout tensors that script computed; the v1
//! writer round-trips; the real stories260K parses; broken files give one clear error each.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use gaincell_model::llama2c::{
    is_llama2c, load_llama2c, load_llama2c_header, read_llama2c, write_llama2c_v1,
    Llama2cCheckpoint, Llama2cHeader,
};

const STORIES260K: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/models/stories260K/stories260K.bin"
);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama2c")
        .join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}; run python3 scripts/make_llama2c_fixture.py"))
}

/// name -> (shape, values) of an expected-*.safetensors file.
fn expected(name: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    candle_core::safetensors::load(fixture(name), &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t): (String, Tensor)| {
            let shape = t.dims().to_vec();
            (
                k,
                (shape, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()),
            )
        })
        .collect()
}

fn tiny_header(version: u32, shared: bool, group_size: Option<usize>) -> Llama2cHeader {
    Llama2cHeader {
        dim: 16,
        hidden_dim: 40,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        vocab_size: 32,
        seq_len: 24,
        shared_classifier: shared,
        version,
        group_size,
    }
}

/// Every tensor of `ck` matches `want` (within `tol`); `ck` has exactly `want`'s names, less lm_head when shared.
fn assert_tensors(
    ck: &Llama2cCheckpoint,
    want: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    tol: f32,
    what: &str,
) {
    let mut names: Vec<&str> = ck.tensors.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut want_names: Vec<&str> = want
        .keys()
        .map(String::as_str)
        .filter(|n| !ck.header.shared_classifier || *n != "lm_head.weight")
        .collect();
    names.sort_unstable();
    want_names.sort_unstable();
    assert_eq!(names, want_names, "{what}: tensor names");
    assert_eq!(
        ck.tensors.len(),
        2 + 9 * 2 + usize::from(!ck.header.shared_classifier)
    );
    for (name, shape, values) in &ck.tensors {
        let (want_shape, want_values) = &want[name];
        assert_eq!(shape, want_shape, "{what}: {name} shape");
        assert_eq!(values.len(), want_values.len(), "{what}: {name} length");
        for (i, (a, b)) in values.iter().zip(want_values).enumerate() {
            assert!(
                (a - b).abs() <= tol,
                "{what}: {name}[{i}] = {a}, expected {b}"
            );
        }
    }
}

#[test]
fn legacy_and_v1_fixtures_give_the_hf_tensors_exactly() {
    let want = expected("expected.safetensors");
    for (file, version, shared) in [
        ("tiny-legacy.bin", 0, true),
        ("tiny-legacy-unshared.bin", 0, false),
        ("tiny-v1.bin", 1, true),
    ] {
        let b = bytes(file);
        assert!(is_llama2c(&b[..28]), "{file} sniffs as llama2.c");
        let ck = read_llama2c(&b, file).unwrap();
        assert_eq!(ck.header, tiny_header(version, shared, None), "{file}");
        assert_tensors(&ck, &want, 0.0, file);
        assert_eq!(ck.get("lm_head.weight").is_some(), !shared, "{file}");
        // The file-based loader agrees.
        let loaded = load_llama2c(&fixture(file)).unwrap();
        assert_eq!(loaded.tensors, ck.tensors, "{file}");
    }
    let q = &want["model.layers.0.self_attn.q_proj.weight"];
    assert_eq!(q.0, [16, 16]);
    assert_eq!(want["model.layers.1.self_attn.k_proj.weight"].0, [8, 16]);
    assert_eq!(want["model.layers.1.mlp.down_proj.weight"].0, [16, 40]);
}

#[test]
fn v2_fixture_gives_the_python_dequantisation() {
    let want = expected("expected-v2.safetensors");
    let b = bytes("tiny-v2.bin");
    assert!(is_llama2c(&b[..8]));
    let ck = read_llama2c(&b, "tiny-v2.bin").unwrap();
    assert_eq!(ck.header, tiny_header(2, true, Some(8)));
    assert_tensors(&ck, &want, 1e-6, "tiny-v2.bin");
    // Q8_0 is close to, not equal to, the fp32 weights.
    let exact = expected("expected.safetensors");
    let name = "model.layers.1.mlp.gate_proj.weight";
    let (_, deq) = ck.get(name).unwrap();
    let err = deq
        .iter()
        .zip(&exact[name].1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        err > 0.0 && err < 2e-3,
        "{name}: max quantisation error {err}"
    );
}

#[test]
fn v1_writer_round_trips() {
    let v1 = bytes("tiny-v1.bin");
    let ck = read_llama2c(&v1, "tiny-v1.bin").unwrap();
    let written = write_llama2c_v1(&ck.header, &ck.tensors).unwrap();
    assert_eq!(
        written, v1,
        "v1 -> read -> write_llama2c_v1 is byte-identical"
    );
    let again = read_llama2c(&written, "rewritten").unwrap();
    assert_eq!(again.header, ck.header);
    assert_eq!(again.tensors, ck.tensors);

    // Legacy with an unshared classifier -> v1 -> read: same tensors, lm_head included.
    let legacy = read_llama2c(&bytes("tiny-legacy-unshared.bin"), "legacy").unwrap();
    let written = write_llama2c_v1(&legacy.header, &legacy.tensors).unwrap();
    let back = read_llama2c(&written, "rewritten").unwrap();
    assert_eq!(back.header, tiny_header(1, false, None));
    assert_eq!(back.tensors, legacy.tensors);
    assert_tensors(
        &back,
        &expected("expected.safetensors"),
        0.0,
        "legacy-unshared -> v1",
    );
}

#[test]
fn stories260k_parses() {
    let path = PathBuf::from(STORIES260K);
    if !path.exists() {
        println!("skipping: {} is absent", path.display());
        return;
    }
    let ck = load_llama2c(&path).unwrap();
    let h = &ck.header;
    assert_eq!(
        (
            h.dim,
            h.hidden_dim,
            h.n_layers,
            h.n_heads,
            h.n_kv_heads,
            h.vocab_size,
            h.seq_len
        ),
        (64, 172, 5, 8, 4, 512, 512)
    );
    assert!(h.shared_classifier);
    assert_eq!((h.version, h.group_size), (0, None));
    assert_eq!(ck.tensors.len(), 2 + 9 * 5);
    assert!(ck.get("lm_head.weight").is_none());
    assert_eq!(
        ck.get("model.layers.4.self_attn.k_proj.weight").unwrap().0,
        [32, 64]
    );
    assert_eq!(
        ck.get("model.layers.0.mlp.down_proj.weight").unwrap().0,
        [64, 172]
    );
    // The embedding is the first tensor after the 28-byte header.
    let raw = std::fs::read(&path).unwrap();
    let first = f32::from_le_bytes([raw[28], raw[29], raw[30], raw[31]]);
    assert_eq!(ck.get("model.embed_tokens.weight").unwrap().1[0], first);
    for (name, _, values) in &ck.tensors {
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{name} has non-finite values"
        );
    }
}

fn err(b: &[u8]) -> String {
    let e = read_llama2c(b, "bad.bin").unwrap_err();
    assert!(e.starts_with("bad.bin: ") && !e.contains('\n'), "{e}");
    e
}

#[test]
fn the_header_alone_equals_the_full_read_and_is_checked_against_the_file_size() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "tiny-legacy.bin",
        "tiny-legacy-unshared.bin",
        "tiny-v1.bin",
        "tiny-v2.bin",
    ] {
        let full = load_llama2c(&fixture(name)).unwrap().header;
        assert_eq!(load_llama2c_header(&fixture(name)).unwrap(), full, "{name}");
        // One byte short: the same error as reading the whole file.
        let b = std::fs::read(fixture(name)).unwrap();
        let cut = tmp.path().join(name);
        std::fs::write(&cut, &b[..b.len() - 1]).unwrap();
        assert_eq!(
            load_llama2c_header(&cut).unwrap_err(),
            load_llama2c(&cut).unwrap_err(),
            "{name}"
        );
    }
}

#[test]
fn bad_files_name_the_problem() {
    let legacy = bytes("tiny-legacy.bin");
    let n = legacy.len();

    // Truncated by one float.
    let e = err(&legacy[..n - 4]);
    assert!(
        e.contains(&format!("which needs {n} bytes"))
            && e.contains(&format!("the file has {}", n - 4)),
        "{e}"
    );
    assert!(
        e.contains("shared classifier") && e.contains("4 bytes short"),
        "{e}"
    );

    // Header dims disagree with the size (hidden_dim 40 -> 48).
    let mut b = legacy.clone();
    b[4..8].copy_from_slice(&48i32.to_le_bytes());
    let e = err(&b);
    assert!(
        e.contains("header says dim=16 hidden_dim=48") && e.contains(&format!("the file has {n}")),
        "{e}"
    );

    // Unshared classifier announced, but no wcls in the file.
    let mut b = legacy.clone();
    b[20..24].copy_from_slice(&(-32i32).to_le_bytes());
    let e = err(&b);
    assert!(
        e.contains("unshared classifier") && e.contains("sign is wrong"),
        "{e}"
    );

    // n_kv_heads not dividing n_heads.
    let mut b = legacy.clone();
    b[16..20].copy_from_slice(&3i32.to_le_bytes());
    let e = err(&b);
    assert!(
        e.contains("n_heads=4 is not a multiple of n_kv_heads=3"),
        "{e}"
    );

    // Unknown version behind the magic, and an unknown magic.
    let mut b = bytes("tiny-v1.bin");
    b[4..8].copy_from_slice(&7i32.to_le_bytes());
    assert!(err(&b).contains("unknown llama2.c checkpoint version 7"));
    let mut b = bytes("tiny-v1.bin");
    b[..4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    let e = err(&b);
    assert!(
        e.contains("not a llama2.c checkpoint") && e.contains("magic 0x616b3432"),
        "{e}"
    );
    assert!(!is_llama2c(&b));

    // v2 truncated: the group size is named.
    let v2 = bytes("tiny-v2.bin");
    let e = err(&v2[..v2.len() - 1]);
    assert!(e.contains("version 2, Q8_0 group_size 8"), "{e}");

    // Empty file.
    assert!(err(&[]).contains("empty"));
}
