//! The `dwell` command line: `generate`, `ingest`, `sql`, `serve`, `scheduler` and `executor`, over
//! [`dwell_engine::Engine`].
//!
//! The commands live here, writing to a given output, so the integration tests run them
//! in-process; `main.rs` only parses the arguments and sets the exit code.

mod args;
mod commands;
mod errors;
mod output;
mod repl;
mod statements;
mod warnings;

use std::io::Write;

pub use args::{
    Cli, ClusterArg, Command, DataArg, ExecutorArgs, GenerateArgs, IngestArgs, SchedulerArgs,
    ServeArgs, SqlArgs,
};
pub use errors::{CliError, Result, one_line};
pub use output::{Format, print};
pub use repl::{Input, LineBuffer, run_input};
pub use statements::statements;

/// The headline metrics that `dwell generate` prints, also `queries/headline.sql`.
pub const HEADLINE_SQL: &str = include_str!("../../../queries/headline.sql");

/// Runs a command, writing its results to `out` (progress and notes go to standard error).
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> Result<()> {
    match cli.command {
        Command::Generate(args) => commands::generate(args, out).await,
        Command::Ingest(args) => commands::ingest(args, out).await,
        Command::Sql(args) => commands::sql(args, out).await,
        Command::Rebuild(args) => commands::rebuild(args, out).await,
        Command::Compact(args) => commands::compact(args, out).await,
        Command::Serve(args) => commands::serve(args, out).await,
        Command::Scheduler(args) => commands::scheduler(args, out).await,
        Command::Executor(args) => commands::executor(args, out).await,
    }
}

/// The `dwell` program: parses the command line, runs it, and reports an error on one line.
#[must_use]
pub fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let cli = <Cli as clap::Parser>::parse();
    // dwell's own warnings (a query that runs on a slow path) reach the user on stderr.
    warnings::install();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dwell: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(cli, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the message a user acts on, without DataFusion's backtrace.
            eprintln!("dwell: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
