//! `dwell rebuild`: every persisted session recomputed from the events.

use std::io::Write;

use super::open;
use crate::args::RebuildArgs;
use crate::errors::{Result, io};

pub(crate) async fn rebuild(args: RebuildArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let engine = open(&args.data, false).await?;
    let report = engine.rebuild().await?;
    writeln!(
        out,
        "commit {}: sessions of {} users recomputed; {} session rows retracted, {} inserted",
        report.commit, report.users, report.retracted, report.inserted
    )
    .map_err(io("writing the output"))
}
