//! `dwell ingest`: event files validated and landed under `events/`.

use std::io::Write;

use super::open_with;
use crate::args::IngestArgs;
use crate::errors::{Result, io};

pub(crate) async fn ingest(args: IngestArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let engine = open_with(&args.data, true, |b| {
        b.with_session_upkeep(!args.no_session_upkeep)
    })
    .await?;
    for file in &args.files {
        let report = engine.ingest_file(file).await?;
        if report.already_landed {
            writeln!(
                out,
                "{}: already landed (ingest {}); nothing written",
                report.source, report.ingest_id
            )
        } else {
            writeln!(
                out,
                "{}: {} events landed in {} files (ingest {})",
                report.source,
                report.rows,
                report.files.len(),
                report.ingest_id
            )
        }
        .map_err(io("writing the output"))?;
    }
    Ok(())
}
