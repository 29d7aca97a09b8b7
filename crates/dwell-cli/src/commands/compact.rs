//! `dwell compact`: small event and session files merged.

use std::io::Write;

use super::open;
use crate::args::CompactArgs;
use crate::errors::{Result, io};

pub(crate) async fn compact(args: CompactArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let engine = open(&args.data, false).await?;
    let report = engine.compact(args.grace).await?;
    match report.commit {
        Some(commit) => writeln!(
            out,
            "commit {commit}: {} event files merged into {}; {} session row files and {} change \
             log files merged; {} old files deleted",
            report.event_files_merged,
            report.event_files_written,
            report.session_files_merged,
            report.change_files_merged,
            report.files_deleted
        ),
        None => writeln!(
            out,
            "nothing to merge; {} old files deleted",
            report.files_deleted
        ),
    }
    .map_err(io("writing the output"))
}
