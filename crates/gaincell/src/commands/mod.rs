//! One module per subcommand.

pub mod adapt;
pub mod attention;
pub mod bench;
pub mod bench_generate;
pub mod bench_ppl;
pub mod bench_train;
pub mod cell;
pub mod cell_array;
pub mod cell_spice;
pub mod chip;
pub mod convert;
pub mod cost;
pub mod data;
pub mod demo;
pub mod download;
pub mod eval;
pub mod export;
pub mod generate;
pub mod peak_memory;
pub mod pipeline;
pub mod pytorch_baseline;
pub mod study;
pub mod study_retention;
pub mod sweep;
pub mod tokenizer;
pub mod train;
