//! dwell's integration tests. One binary, so DataFusion is linked once.

mod aggregates;
mod cli;
mod cluster;
mod corpus;
mod differential;
mod faults;
mod flight;
mod fuzzing;
mod load;
mod persisted;
mod python;
mod queries;
mod shapes;
mod slt;
mod sql_vs_reference;
mod statements;
mod storage;
mod support;
mod tenants;
mod views;
mod web;
mod what_if;
mod writers;
