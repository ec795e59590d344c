//! Token shards (`gaincell train --data DIR`): `data::Shards::open` on a folder whose `meta.json`, `train.bin`
//! and `val.bin` come from the input (split at the first NUL byte: `meta.json` before it; after it, one byte
//! choosing where `train.bin` ends and `val.bin` begins), then reading every token and a batch.

#![no_main]

use gaincell_train::data::{Shards, Split, META};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (meta, rest) = gaincell_fuzz::split_nul(data);
    let (cut, shards) = match rest.split_first() {
        Some((&c, s)) => (c as usize, s),
        None => (0, rest),
    };
    let at = shards.len() * cut / 255;
    let dir = gaincell_fuzz::fresh_dir("shards");
    std::fs::write(dir.join(META), meta).expect("write meta.json");
    std::fs::write(dir.join(Split::Train.file()), &shards[..at]).expect("write train.bin");
    std::fs::write(dir.join(Split::Val.file()), &shards[at..]).expect("write val.bin");
    let Ok(s) = Shards::open(&dir) else {
        return;
    };
    for split in [Split::Train, Split::Val] {
        let n = s.len(split);
        assert_eq!(s.is_empty(split), n == 0);
        for i in 0..n.min(1 << 12) {
            let _ = s.token(split, i);
        }
        for (rows, ctx) in [(1, 1), (2, 3), (3, 16)] {
            if let Ok((x, y)) = s.batch(split, rows, ctx, 7, 3) {
                assert_eq!((x.len(), y.len()), (rows * ctx, rows * ctx));
            }
        }
    }
});
