//! Transformer language models on a gain-cell chip: the model whose attention a
//! [`ChipConfig`](gaincell_chip::ChipConfig) chooses, in two families.
//!
//! - [`ModelConfig`]: a model's shape — [`Gpt2Config`] (HF `config.json`, or the named sizes gpt2 … gpt2-xl) or
//!   [`LlamaConfig`] (Llama 2/3, TinyLlama, Mistral-style configs; llama2.c checkpoints);
//! - [`Model`]: the block's forward written once ([`model`](crate::Model)), each family one readable file
//!   ([`gpt2`], [`llama`]); attention is softmax (full or windowed) or a gain-cell chip, with the per-head affine
//!   scalers of the chip as named parameters; grouped-query attention shares a key/value head's arrays among its
//!   group of query heads;
//! - [`checkpoint`]: HF safetensors (GPT-2's Conv1D layout, Llama's, sharded or not), llama2.c checkpoints
//!   ([`llama2c`]: legacy, v1 and v2 exports), our own checkpoints (safetensors + JSON sidecar), and names resolved
//!   on the Hub when online;
//! - [`Tokenizer`]: GPT-2 BPE, embedded and offline, any HF `tokenizer.json`, or llama2.c's `tokenizer.bin`
//!   ([`Llama2cTokenizer`], encoding as `run.c` does);
//! - [`Decoder`]: token-by-token generation, the chip's arrays written one column per token;
//! - [`perplexity`]: strided-window perplexity and bits per byte, on text tokenized as a stream
//!   ([`text_stream`]: memory independent of the file's size);
//! - [`PrefixCache`]: logits of chosen positions only, and continuations scored after a prefix computed once
//!   ([`Model::prefill`], [`Model::extend`]), for task evaluation.
//!
//! Not here: training and adaptation (gaincell-train), task evaluation (gaincell-eval), printing.

mod attention;
pub mod checkpoint;
mod config;
mod decode;
mod error;
pub mod gpt2;
mod head_affine;
mod heads;
pub mod llama;
pub mod llama2c;
pub mod llama2c_tokenizer;
mod model;
pub mod ops;
mod ppl;
mod prefix;
mod rms_norm;
mod rope;
mod row_broadcast;
pub mod text_stream;
mod tokenizer;

pub use attention::{Affine, Attention, Scalers};
pub use config::ModelConfig;
pub use decode::{Decoder, Sampler};
pub use error::ModelError;
pub use gpt2::Gpt2Config;
pub use llama::LlamaConfig;
pub use llama2c_tokenizer::Llama2cTokenizer;
pub use model::{Model, Site, Weights};
pub use ppl::{perplexity, PplOptions, PplResult};
pub use prefix::PrefixCache;
pub use tokenizer::{train_bpe, Tokenizer};
