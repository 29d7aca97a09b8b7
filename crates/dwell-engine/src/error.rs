//! The engine's one error type.

use datafusion::error::DataFusionError;

/// Everything that can go wrong in the engine, each naming what is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data location could not be understood or reached, or its files do not make a table.
    #[error("data location {location}: {reason}")]
    Location { location: String, reason: String },
    /// The data location is a local folder that does not exist (and was not to be created).
    #[error("data location {location} does not exist")]
    NoLocation { location: String },
    /// An option given to the engine (of [`GenerateOptions`](crate::GenerateOptions), say) is
    /// out of range; `option` is its field name.
    #[error("option {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    /// `dwell.toml` is unreadable or holds a bad setting; `key` names it.
    #[error("{file}: {key}: {reason}")]
    Setting {
        file: String,
        key: String,
        reason: String,
    },
    /// A file offered to ingest was rejected whole; `column` names the culprit when there is one.
    #[error("{file}: {}{reason}", column.as_ref().map(|c| format!("column {c}: ")).unwrap_or_default())]
    Ingest {
        file: String,
        column: Option<String>,
        reason: String,
    },
    /// The caller may not do this: an ingest naming another account than the caller's.
    #[error("{file}: {reason}")]
    Forbidden { file: String, reason: String },
    /// Object storage failed.
    #[error("storage: {0}")]
    Store(#[from] object_store::Error),
    /// An invariant of the engine itself failed: a bug, not the caller's or the data's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// Planning or running a query failed.
    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[from] DataFusionError),
}

impl Error {
    pub(crate) fn ingest(file: &str, column: Option<&str>, reason: impl Into<String>) -> Self {
        Error::Ingest {
            file: file.to_owned(),
            column: column.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::DataFusion(e.into())
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::DataFusion(e.into())
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// The engine's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
