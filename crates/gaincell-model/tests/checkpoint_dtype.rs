//! Checkpoints stored in half precision: weights come back as their f16 rounding, scalers exactly, and the
//! sidecar's extra untouched.

use std::path::PathBuf;

use candle_core::DType;
use gaincell_chip::ChipConfig;
use gaincell_model::checkpoint;

#[test]
fn f16_checkpoint_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-gpt2");
    let chip = ChipConfig::load("paper-nonlinear").unwrap();
    let mut model = checkpoint::load(&dir, Some(chip)).unwrap();
    // Scalers no f16 can hold exactly.
    for s in &mut model.scalers {
        s.q.b = (s.q.b.clone() + 0.123_456_789).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let extra = serde_json::json!({ "statistics": { "note": "kept" } });
    checkpoint::save_as(&model, out.path(), extra.clone(), DType::F16).unwrap();
    let back = checkpoint::load(out.path(), None).unwrap();
    assert_eq!(checkpoint::read_extra(out.path()).unwrap(), extra);
    let size = std::fs::metadata(out.path().join("model.safetensors"))
        .unwrap()
        .len();
    let params = model.config.parameters() as u64;
    assert!(
        size < params * 2 + 64 * 1024,
        "{size} bytes for {params} parameters"
    );
    for ((name, a), (_, b)) in model.named_tensors().iter().zip(back.named_tensors()) {
        let a16: Vec<f32> = if name.contains(".attn.scaler.") {
            a.flatten_all().unwrap().to_vec1().unwrap()
        } else {
            a.to_dtype(DType::F16)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a16, b, "{name}");
    }
    assert_eq!(back.named_tensors().len(), model.named_tensors().len());
}
