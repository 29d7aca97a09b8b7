//! `dwell`: session analytics over user-interaction events. See `dwell --help`.

use std::process::ExitCode;

use clap::Parser;
use dwell_cli::{Cli, one_line, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
