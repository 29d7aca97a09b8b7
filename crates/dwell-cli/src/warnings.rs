//! The logger that shows dwell's own warnings (a query that runs on a slow path) on stderr, and
//! other crates' errors (a Ballista scheduler that drops an executor's task status, say).

/// Prints dwell's warnings (log targets under `dwell`) and other crates' errors to stderr; the
/// rest of other crates' logs stay off.
struct Warnings;

static WARNINGS: Warnings = Warnings;

/// Installs the logger, unless one is installed already.
pub(crate) fn install() {
    if log::set_logger(&WARNINGS).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if metadata.target().starts_with("dwell") {
            metadata.level() <= log::Level::Warn
        } else {
            metadata.level() <= log::Level::Error
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if record.target().starts_with("dwell") {
            eprintln!("dwell: warning: {}", record.args());
        } else {
            eprintln!("dwell: error in {}: {}", record.target(), record.args());
        }
    }

    fn flush(&self) {}
}
