//! dwell's integration tests. One binary, so DataFusion is linked once.

mod sample_sessions;
mod slt;
mod sql_vs_reference;
