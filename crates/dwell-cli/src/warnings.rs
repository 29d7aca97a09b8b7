//! The logger that shows dwell's own warnings (a query that runs on a slow path) on stderr.

/// Prints dwell's warnings (log targets under `dwell`) to stderr; other crates' logs stay off.
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
        metadata.level() <= log::Level::Warn && metadata.target().starts_with("dwell")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("dwell: warning: {}", record.args());
        }
    }

    fn flush(&self) {}
}
