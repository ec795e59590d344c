//! GPT-2 on a gain-cell chip: the transformer whose attention a [`ChipConfig`](gaincell_chip::ChipConfig) chooses.
//!
//! - [`Gpt2Config`]: model shapes (HF `config.json`, or the named sizes gpt2 … gpt2-xl);
//! - [`Gpt2`]: the model, one readable file; attention is softmax (full or windowed) or a gain-cell chip, with
//!   the per-head affine scalers of SPEC §2 as named parameters;
//! - [`checkpoint`]: HF safetensors (Conv1D layout, tied embeddings, with or without the `transformer.` prefix),
//!   our own checkpoints (safetensors + JSON sidecar), and names resolved on the Hub when online;
//! - [`Tokenizer`]: GPT-2 BPE, embedded and offline, or any HF `tokenizer.json`;
//! - [`Decoder`]: token-by-token generation, the chip's arrays written one column per token;
//! - [`perplexity`]: strided-window perplexity and bits per byte;
//! - [`PrefixCache`]: logits of chosen positions only, and continuations scored after a prefix computed once
//!   ([`Gpt2::prefill`], [`Gpt2::extend`]), for task evaluation.
//!
//! Not here: training and adaptation (gaincell-train), task evaluation (gaincell-eval), printing.

mod attention;
pub mod checkpoint;
mod config;
mod decode;
mod error;
mod model;
pub mod ops;
mod ppl;
mod prefix;
mod tokenizer;

pub use attention::{Attention, Scalers};
pub use config::Gpt2Config;
pub use decode::{Decoder, Sampler};
pub use error::ModelError;
pub use model::{Gpt2, Site};
pub use ppl::{perplexity, PplOptions, PplResult};
pub use prefix::PrefixCache;
pub use tokenizer::{train_bpe, Tokenizer};
