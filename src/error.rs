//! The crate's error type.
//!
//! Every failure a user can cause (a missing file, a column that does not fit its schema, a flag
//! out of range) is a variant that names the file, column or flag involved, so that the message
//! alone tells the user what to fix. Failures from the libraries underneath (polars, candle, IO)
//! are wrapped with the context of what synth was doing when they happened.

use std::path::PathBuf;

/// Everything that can go wrong in synth, grouped by the stage that reports it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Input data and schema.
    /// A data file could not be opened or read.
    #[error("cannot read `{path}`: {reason}")]
    ReadData {
        /// The file.
        path: PathBuf,
        /// What went wrong, in words.
        reason: String,
    },
    /// A column's values or type do not allow modelling it.
    #[error("column `{column}`: {reason}")]
    Column {
        /// The column.
        column: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schema file is malformed or does not match the data.
    #[error("schema `{path}`: {reason}")]
    Schema {
        /// The schema file, or the data file for an inferred schema.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    // Command-line values.
    /// A flag has a value that cannot be used.
    #[error("invalid value for `{flag}`: {reason}")]
    Flag {
        /// The flag, as the user types it.
        flag: String,
        /// Why the value is refused.
        reason: String,
    },

    // Outputs and models.
    /// An output could not be written, or would overwrite something.
    #[error("cannot write `{path}`: {reason}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A model directory is missing, corrupt or of an unknown format.
    #[error("cannot load model `{path}`: {reason}")]
    Model {
        /// The model directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A device was asked for that this build or machine cannot provide.
    #[error("device `{device}` is not available: {reason}")]
    Device {
        /// The device name.
        device: String,
        /// Why.
        reason: String,
    },

    // Libraries underneath.
    /// An error from the tensor library.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// An error from the data-frame library.
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    /// An IO error with no better context.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with a [`Error::Column`] for `column`, formatting the reason.
#[macro_export]
macro_rules! column_bail {
    ($column:expr, $($arg:tt)+) => {
        return Err($crate::error::Error::Column {
            column: $column.to_string(),
            reason: format!($($arg)+),
        })
    };
}

/// Returns early with a [`Error::Flag`] for `flag` unless `cond` holds.
#[macro_export]
macro_rules! flag_ensure {
    ($cond:expr, $flag:expr, $($arg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err($crate::error::Error::Flag {
                flag: $flag.to_string(),
                reason: format!($($arg)+),
            }
            .into());
        }
    };
}
