//! The logger that shows dwell's own warnings (a query that runs on a slow path) on stderr, and
//! other crates' errors (a Ballista scheduler that drops an executor's task status, say).
//! `DWELL_LOG=info` or `DWELL_LOG=debug` shows more of dwell's own lines (what each step of
//! a commit's upkeep took, say).

use std::sync::OnceLock;

/// Prints dwell's warnings (log targets under `dwell`) and other crates' errors to stderr; the
/// rest of other crates' logs stay off.
struct Warnings;

static WARNINGS: Warnings = Warnings;

/// The level of dwell's own lines, from `DWELL_LOG` (warnings by default).
static DWELL_LEVEL: OnceLock<log::LevelFilter> = OnceLock::new();

fn dwell_level() -> log::LevelFilter {
    *DWELL_LEVEL.get_or_init(|| {
        match std::env::var("DWELL_LOG")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "debug" => log::LevelFilter::Debug,
            "info" => log::LevelFilter::Info,
            _ => log::LevelFilter::Warn,
        }
    })
}

/// Installs the logger, unless one is installed already.
pub(crate) fn install() {
    if log::set_logger(&WARNINGS).is_ok() {
        log::set_max_level(dwell_level());
    }
}

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if metadata.target().starts_with("dwell") {
            metadata.level() <= dwell_level()
        } else {
            metadata.level() <= log::Level::Error
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if record.target().starts_with("dwell") {
            let kind = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warning",
                log::Level::Info => "info",
                log::Level::Debug | log::Level::Trace => "debug",
            };
            eprintln!("dwell: {kind}: {}", record.args());
        } else {
            eprintln!("dwell: error in {}: {}", record.target(), record.args());
        }
    }

    fn flush(&self) {}
}
