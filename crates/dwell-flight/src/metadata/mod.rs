//! The Flight SQL metadata commands: which command a request holds, the schema of its answer,
//! and the answer, from the caller's context or from what the server says about itself.

mod catalog;
mod command;
mod keys;
mod sql_info;
mod type_info;

pub(crate) use command::{Metadata, MetadataCommand};
