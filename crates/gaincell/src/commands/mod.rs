//! One module per subcommand.

pub mod attention;
pub mod bench;
pub mod bench_ppl;
pub mod chip;
pub mod cost;
pub mod eval;
pub mod generate;
pub mod sweep;
pub mod tokenizer;
