//! The request log: one line per call on stderr, never with credentials, tokens or SQL text.

use std::time::Duration;

use tonic::Code;

/// One finished call.
pub(crate) struct CallRecord<'a> {
    pub(crate) method: &'a str,
    pub(crate) command: &'a str,
    pub(crate) caller: &'a str,
    pub(crate) elapsed: Duration,
    pub(crate) rows: Option<u64>,
    pub(crate) outcome: Outcome,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Failed(Code),
    /// The client went away (disconnect, its own deadline) before the stream ended.
    Abandoned,
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

pub(crate) fn call(record: &CallRecord<'_>) {
    let outcome = match record.outcome {
        Outcome::Ok => "ok".to_owned(),
        Outcome::Failed(code) => format!("{code:?}"),
        Outcome::Abandoned => "abandoned".to_owned(),
    };
    let rows = record
        .rows
        .map(|r| format!(" rows={r}"))
        .unwrap_or_default();
    eprintln!(
        "{} {} {} caller={} {:.1}ms{rows} {outcome}",
        now(),
        record.method,
        record.command,
        record.caller,
        record.elapsed.as_secs_f64() * 1e3,
    );
}

/// Details of an error the client got only a generic message for.
pub(crate) fn detail(code: Code, detail: &str) {
    eprintln!("{} error-detail {code:?}: {detail}", now());
}

/// Anything else worth a line (start, shutdown).
pub(crate) fn info(message: &str) {
    eprintln!("{} {message}", now());
}
