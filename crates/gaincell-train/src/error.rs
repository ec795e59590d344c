//! Errors of training, data preparation and adaptation: each says what was wrong and what to do.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] gaincell_model::ModelError),
    #[error(transparent)]
    Chip(#[from] gaincell_chip::ChipError),
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
