//! What a command can fail with, and how an error prints: on one line.
//!
//! The CLI's own messages (usage errors) are `CliError::Usage`, written where each command
//! checks its arguments; engine errors print as the engine words them.

use datafusion::error::DataFusionError;

/// Everything a command can fail with; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Engine(#[from] dwell_engine::Error),
    #[error("{}", .0.strip_backtrace())]
    Query(#[from] DataFusionError),
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Serve(#[from] dwell_flight::Error),
    #[error("{0}")]
    Cluster(#[from] dwell_cluster::Error),
    #[error("{0}")]
    Usage(String),
}

/// The CLI's result.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Turns an I/O error into a [`CliError::Io`] saying what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

/// An error message on one line.
#[must_use]
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
