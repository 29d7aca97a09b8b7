//! `dwell`: session analytics over events in Parquet.
//!
//! At this stage one command: `dwell sql`, which runs SQL over the events under `--data` with
//! the `sessionize` window function registered.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use arrow::array::RecordBatch;
use clap::{Parser, Subcommand, ValueEnum};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{ParquetReadOptions, SessionConfig};

#[derive(Debug, Parser)]
#[command(
    name = "dwell",
    version,
    about = "Session analytics over user-interaction events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run SQL over the events; `events` is the table, `sessionize` the window function.
    Sql(SqlArgs),
}

#[derive(Debug, clap::Args)]
struct SqlArgs {
    /// Data location: a folder whose `events/` holds the Parquet files.
    #[arg(long, default_value = "./data")]
    data: PathBuf,
    /// The SQL to run.
    #[arg(short = 'c', long = "command", conflicts_with = "file")]
    command: Option<String>,
    /// A file holding the SQL to run.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dwell: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Sql(args) => runtime.block_on(sql(args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the message a user acts on, without DataFusion's backtrace.
            eprintln!("dwell: {}", e.strip_backtrace().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn sql(args: SqlArgs) -> Result<()> {
    let text = match (&args.command, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| {
            DataFusionError::Execution(format!("cannot read {}: {e}", file.display()))
        })?,
        (None, None) => {
            return Err(DataFusionError::Plan(
                "give the SQL with -c SQL or -f FILE".into(),
            ));
        }
    };
    let ctx = dwell_engine::session_context(SessionConfig::new())?;
    let events = args.data.join("events");
    if !events.is_dir() {
        return Err(DataFusionError::Plan(format!(
            "no events at {}: expected Parquet files under it",
            events.display()
        )));
    }
    let events = format!("{}/", events.display());
    ctx.register_parquet("events", &events, ParquetReadOptions::default())
        .await?;
    let batches = ctx.sql(&text).await?.collect().await?;
    print(&batches, args.format)
}

fn print(batches: &[RecordBatch], format: Format) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(stdout, "{table}")?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut stdout);
            for batch in batches {
                writer.write(batch)?;
            }
        }
    }
    Ok(())
}
