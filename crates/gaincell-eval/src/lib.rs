//! Zero-shot evaluation of a model on a chip, in lm-evaluation-harness's conventions: the benchmark table of the
//! paper (wikitext, lambada_openai, hellaswag, piqa, arc_easy, arc_challenge, winogrande).
//!
//! - [`tasks`]: readers and prompt construction, one module per task;
//! - [`request`]: requests and the tokens the harness scores for them (pair encoding, truncation, rolling
//!   windows);
//! - [`lm`]: the model behind a trait, [`LogProbModel`], implemented for GPT-2 on a chip;
//! - [`scorer`]: batched scoring, a prefix shared by a document's requests computed once;
//! - [`metrics`]: acc, acc_norm, perplexities, bits per byte and their standard errors as the harness computes
//!   them;
//! - [`evaluate`]: one task from documents to metrics;
//! - [`results`]: the harness-shaped JSON, the markdown table, and comparisons;
//! - [`samples`]: per-sample logs in the shape of the harness's `--log_samples`, and their comparison;
//! - [`agreement`]: perplexity, KL divergence and top-1 agreement of a chip model against the software model on a
//!   token stream (sampled from the software model when no text is given).
//!
//! Not here: argument parsing, progress bars and printing (the `gaincell` program), the model itself
//! (gaincell-model).

pub mod agreement;
pub mod error;
pub mod evaluate;
pub mod lm;
pub mod metrics;
pub mod request;
pub mod results;
pub mod samples;
pub mod scorer;
pub mod tasks;

pub use error::{EvalError, Result};
pub use evaluate::{evaluate, EvalOptions, MetricValue, TaskResult};
pub use lm::{Group, LogProbModel, TokenScore};
pub use request::{Encoder, Request, TokenSeq};
pub use scorer::{score_requests, ScoreOptions, ScoreStats, Scored};
pub use tasks::{data_dir, default_data_dir, Doc, Task};
