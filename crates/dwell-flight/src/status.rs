//! The one mapping from errors to gRPC statuses.
//!
//! Every `DataFusionError` variant is matched (no catch-all), so a new variant in DataFusion
//! fails the build here rather than reaching a client as an unexplained INTERNAL. Messages are
//! the ones a user can act on; storage and internal errors are logged on the server and the
//! client gets a generic message, so server paths and debug dumps never leave the process.

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use tonic::{Code, Status};

/// Words a client gets instead of a storage error's details.
const STORAGE_FAILED: &str =
    "the server could not read its stored data; the server log has the details";
/// Words a client gets instead of an internal error's details.
const INTERNAL: &str = "internal error in the server; the server log has the details";

/// A gRPC status for an error, and whether its details stayed on the server (to log them).
#[derive(Debug)]
struct Mapped {
    status: Status,
    /// The full message, for the server log, when the client got a generic one.
    withheld: Option<String>,
}

impl Mapped {
    fn shown(code: Code, message: impl Into<String>) -> Self {
        Mapped {
            status: Status::new(code, message.into()),
            withheld: None,
        }
    }

    fn withheld(code: Code, shown: &str, detail: impl ToString) -> Self {
        Mapped {
            status: Status::new(code, shown),
            withheld: Some(detail.to_string()),
        }
    }
}

/// The status for a DataFusion error; withheld details go to the server log.
pub(crate) fn df_status(error: &DataFusionError) -> Status {
    map_datafusion(error).into_status()
}

/// The status for an engine error; withheld details go to the server log.
pub(crate) fn engine_status(error: &dwell_engine::Error) -> Status {
    map_engine(error).into_status()
}

impl Mapped {
    fn into_status(self) -> Status {
        if let Some(detail) = &self.withheld {
            crate::log::detail(self.status.code(), detail);
        }
        self.status
    }
}

/// Maps a DataFusion error.
fn map_datafusion(error: &DataFusionError) -> Mapped {
    match error {
        DataFusionError::ArrowError(e, _) => map_arrow(e),
        DataFusionError::ParquetError(e) => Mapped::withheld(Code::Internal, STORAGE_FAILED, e),
        DataFusionError::ObjectStore(e) => map_object_store(e),
        DataFusionError::IoError(e) => Mapped::withheld(Code::Internal, STORAGE_FAILED, e),
        DataFusionError::SQL(e, _) => Mapped::shown(Code::InvalidArgument, parser_message(e)),
        DataFusionError::NotImplemented(m) => {
            Mapped::shown(Code::Unimplemented, format!("not supported: {m}"))
        }
        DataFusionError::Internal(m) | DataFusionError::Ffi(m) => {
            Mapped::withheld(Code::Internal, INTERNAL, m)
        }
        DataFusionError::Plan(m) => plan_message(m),
        // Configuration and execution errors are the query's own (bad values, bad options).
        DataFusionError::Configuration(m) | DataFusionError::Execution(m) => {
            Mapped::shown(Code::InvalidArgument, m.clone())
        }
        DataFusionError::SchemaError(e, _) => Mapped::shown(Code::InvalidArgument, e.to_string()),
        DataFusionError::ExecutionJoin(e) => {
            if e.is_cancelled() {
                Mapped::shown(Code::Cancelled, "the query was cancelled")
            } else {
                Mapped::withheld(Code::Internal, INTERNAL, e)
            }
        }
        DataFusionError::ResourcesExhausted(m) => Mapped::shown(
            Code::ResourceExhausted,
            format!("the query needs more memory than the server allows: {m}"),
        ),
        DataFusionError::External(e) => map_external(e.as_ref()),
        DataFusionError::Context(context, inner) => {
            let mut mapped = map_datafusion(inner);
            if mapped.withheld.is_none() {
                mapped.status = Status::new(
                    mapped.status.code(),
                    format!("{context}: {}", mapped.status.message()),
                );
            }
            mapped
        }
        DataFusionError::Substrait(m) => {
            Mapped::shown(Code::Unimplemented, format!("Substrait: {m}"))
        }
        DataFusionError::Diagnostic(_, inner) => map_datafusion(inner),
        DataFusionError::Collection(errors) => errors.first().map_or_else(
            || Mapped::withheld(Code::Internal, INTERNAL, "empty error collection"),
            map_datafusion,
        ),
        DataFusionError::Shared(inner) => map_datafusion(inner),
    }
}

fn map_arrow(error: &ArrowError) -> Mapped {
    match error {
        ArrowError::MemoryError(m) => Mapped::shown(Code::ResourceExhausted, m.clone()),
        ArrowError::ExternalError(e) => map_external(e.as_ref()),
        ArrowError::IoError(..) | ArrowError::ParquetError(_) | ArrowError::IpcError(_) => {
            Mapped::withheld(Code::Internal, STORAGE_FAILED, error)
        }
        ArrowError::NotYetImplemented(m) => {
            Mapped::shown(Code::Unimplemented, format!("not supported: {m}"))
        }
        // Casts, parsing, overflow, division by zero: the query's own values are at fault.
        other => Mapped::shown(Code::InvalidArgument, other.to_string()),
    }
}

fn map_object_store(error: &object_store::Error) -> Mapped {
    // Timeouts and unreachable stores are worth retrying; the details stay in the log.
    Mapped::withheld(Code::Unavailable, STORAGE_FAILED, error)
}

fn map_external(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Mapped {
    if let Some(e) = error.downcast_ref::<DataFusionError>() {
        return map_datafusion(e);
    }
    if let Some(e) = error.downcast_ref::<ArrowError>() {
        return map_arrow(e);
    }
    if let Some(e) = error.downcast_ref::<dwell_engine::Error>() {
        return map_engine(e);
    }
    if let Some(status) = error.downcast_ref::<Status>() {
        return Mapped::shown(status.code(), status.message());
    }
    if let Some(e) = error.downcast_ref::<object_store::Error>() {
        return map_object_store(e);
    }
    Mapped::withheld(Code::Internal, INTERNAL, error)
}

/// Maps an engine error (ingest, settings, storage).
fn map_engine(error: &dwell_engine::Error) -> Mapped {
    use dwell_engine::Error as E;
    match error {
        // The message names the column (or option) and what is wrong with it; the "file" is
        // the request.
        E::Ingest { .. } | E::InvalidOption { .. } => {
            Mapped::shown(Code::InvalidArgument, error.to_string())
        }
        E::Forbidden { .. } => Mapped::shown(Code::PermissionDenied, error.to_string()),
        E::Setting { .. } => Mapped::withheld(
            Code::FailedPrecondition,
            "the server's dwell.toml is invalid; the server log has the details",
            error,
        ),
        E::Location { .. } | E::NoLocation { .. } | E::Store(_) => {
            Mapped::withheld(Code::Unavailable, STORAGE_FAILED, error)
        }
        E::Internal(_) => Mapped::withheld(Code::Internal, INTERNAL, error),
        E::DataFusion(e) => map_datafusion(e),
    }
}

/// A parser error's own words, without the enum's debug formatting.
fn parser_message(error: &ParserError) -> String {
    match error {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
            format!("SQL syntax error: {m}")
        }
        ParserError::RecursionLimitExceeded => {
            "SQL syntax error: the statement nests too deeply".into()
        }
    }
}

/// Planning errors: an unknown table is `NOT_FOUND`, the rest is the query's fault.
fn plan_message(message: &str) -> Mapped {
    let lower = message.to_ascii_lowercase();
    if lower.starts_with("table '") && lower.contains("' not found") {
        Mapped::shown(Code::NotFound, message)
    } else {
        Mapped::shown(Code::InvalidArgument, message)
    }
}
