//! dwell's engine: the one place that turns a data location into a DataFusion context with
//! dwell's tables, views, functions and settings, and the one ingest path. The CLI, the server
//! and the tests all go through [`Engine`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dwell_engine::Result<()> {
//! use dwell_engine::{DataLocation, Engine, GenerateOptions};
//!
//! // An in-memory location (a local path, file:// or s3://bucket/prefix work the same way).
//! let engine = Engine::builder(DataLocation::parse("memory://")?).build().await?;
//! engine
//!     .generate(&GenerateOptions { events: 2_000, users: 20, ..Default::default() }, &|_| {})
//!     .await?;
//! let sessions = engine.sql("SELECT * FROM sessions").await?.count().await?;
//! let events = engine.sql("SELECT * FROM sessionized_events").await?.count().await?;
//! assert!(sessions > 0 && sessions < events);
//! # Ok(())
//! # }
//! ```
//!
//! Layout of a data location: `events/` (Parquet, any nesting; `date=YYYY-MM-DD` directories
//! become a `date` partition column when every file sits in one), optional `users/` (Parquet),
//! optional `dwell.toml` ([`Settings`]), and `_dwell/` (the commit log and the persisted sessions,
//! see the README's "Persisted sessions").

mod catalog;
mod committed;
mod context;
mod deadline;
mod engine;
mod error;
pub mod events;
mod file_errors;
pub mod generate;
pub mod ingest;
mod location;
mod persisted;
mod settings;
mod settings_tables;
mod tenant;
mod views;
mod what_if;

pub use context::{
    OPTIMIZER_RULES_LEFT_OUT, StateUpgrade, distributed_state, location_runtime, session_context,
    session_context_with_memory_limit,
};
pub use deadline::StoreSettings;
pub use engine::{Engine, EngineBuilder};
pub use error::{Error, Result};
pub use generate::GenerateOptions;
pub use ingest::{IngestId, IngestReport, SourceFormat};
pub use location::DataLocation;
pub use persisted::{CommitReport, CompactReport, LiveRowFilter};
pub use settings::{SETTINGS_FILE, SegmentThresholds, Settings};
pub use tenant::{AccountFilterExec, AccountScoped, Scope};
pub use views::{SESSION_CHANGES, TableDoc, VIEWS, segments_over};

/// The text of a panic's payload.
#[must_use]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
