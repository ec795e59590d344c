//! Errors of the harness, each saying what was wrong and what to do; a task whose data is missing has its own
//! variant so that a run can skip it and go on with the others.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A task's data file is not where it is looked for.
    #[error("{task}: no data at {}: {hint}", path.display())]
    MissingData {
        task: String,
        path: PathBuf,
        /// Where to get the file and where to put it.
        hint: String,
    },
    /// A data file that cannot be read as its format says.
    #[error("{path}: {message}")]
    Data { path: String, message: String },
    /// A request the model cannot score (too long, unknown task, …).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Model(#[from] gaincell_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl EvalError {
    pub(crate) fn data(path: &std::path::Path, message: impl Into<String>) -> Self {
        EvalError::Data {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EvalError>;
