//! `.npy` inputs (`gaincell attention --q/--k/--v`): the binary crate's reader, `crates/gaincell/src/npy.rs`,
//! compiled in as it is, on the fuzz input written to a file. (The project reads no `.npz`.)

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/gaincell/src/npy.rs"]
mod npy;

fuzz_target!(|data: &[u8]| {
    let path = gaincell_fuzz::temp_file("input.npy", data);
    if let Ok(a) = npy::read_f32(&path) {
        assert!(a.iter().all(|x| x.is_finite()));
    }
});
