//! `dwell sql`: statements from `-c` or `-f` (the last one's result printed or written to a
//! file), their cluster stages with `--stages`, or the interactive prompt.

use std::io::Write;

use super::open_on;
use crate::args::SqlArgs;
use crate::errors::{CliError, Result, io};
use crate::output::{Format, print, write_file};
use crate::repl::repl;
use crate::statements::engine_statements;

pub(crate) async fn sql(args: SqlArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let text = match (&args.command, &args.file) {
        (Some(sql), _) => Some(sql.clone()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file).map_err(io(format!("cannot read {}", file.display())))?,
        ),
        (None, None) => None,
    };
    if args.format == Format::Parquet && args.output.is_none() {
        return Err(CliError::Usage("--format parquet needs -o OUT".into()));
    }
    let engine = open_on(&args.data, false, &args.cluster).await?;
    if args.stages {
        let Some(text) = text else {
            return Err(CliError::Usage("--stages needs -c SQL or -f FILE".into()));
        };
        for statement in engine_statements(&engine, &text) {
            let stages = dwell_cluster::explain_stages(&engine, &statement).await?;
            write!(out, "{stages}").map_err(io("writing the output"))?;
        }
        return Ok(());
    }
    let Some(text) = text else {
        return repl(&engine).await;
    };
    let mut last = Vec::new();
    for statement in engine_statements(&engine, &text) {
        let batches = engine.sql(&statement).await?.collect().await?;
        last = batches;
    }
    match &args.output {
        Some(path) => write_file(path, &last, args.format),
        None => print(&last, args.format, out),
    }
}
