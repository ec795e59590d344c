//! llama2.c checkpoints (`stories260K.bin`, legacy / v1 / v2 exports): `llama2c::is_llama2c`,
//! `llama2c::read_llama2c` on the bytes, `llama2c::load_llama2c_header` and `checkpoint::read_llama2c` (tensors
//! built) on the input written as a `.bin` file, then the shape queries every command makes.

#![no_main]

use gaincell_model::{checkpoint, llama2c, ModelConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = llama2c::is_llama2c(data);
    let whole = llama2c::read_llama2c(data, "model.bin");
    let path = gaincell_fuzz::temp_file("model.bin", data);
    let header = llama2c::load_llama2c_header(&path);
    if let Ok(ck) = &whole {
        let h = header.as_ref().expect("read_llama2c accepted the file");
        assert_eq!(h, &ck.header);
        let c: ModelConfig = checkpoint::llama2c_config(h).into();
        gaincell_fuzz::exercise_config(&c);
        let _ = (h.head_size(), h.kv_dim());
        for (name, shape, values) in &ck.tensors {
            assert_eq!(
                shape.iter().product::<usize>(),
                values.len(),
                "tensor {name}: shape and data disagree"
            );
        }
        let _ = checkpoint::read_llama2c(&path).expect("read_llama2c accepted the bytes");
    }
});
