//! What a command can fail with, and how an error prints: on one line.
//!
//! The CLI's own messages (usage errors) are `CliError::Usage`, written where each command
//! checks its arguments. Engine errors print as the engine words them, with the CLI's words
//! added where the engine names something the user set by a flag ([`in_cli_terms`]).

use datafusion::error::DataFusionError;

/// Everything a command can fail with; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}", in_cli_terms(.0))]
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
    Page(#[from] dwell_web::Error),
    #[error("{0}")]
    Cluster(#[from] dwell_cluster::Error),
    #[error("{0}")]
    Usage(String),
}

/// An engine error as the CLI's user knows its causes: options by their flags, and what to do
/// about a missing location.
fn in_cli_terms(error: &dwell_engine::Error) -> String {
    use dwell_engine::Error as E;
    match error {
        E::NoLocation { .. } => {
            format!("{error} (create it with `dwell ingest` or `dwell generate`)")
        }
        E::InvalidOption { option, reason } => format!("--{} {reason}", option.replace('_', "-")),
        other => other.to_string(),
    }
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
