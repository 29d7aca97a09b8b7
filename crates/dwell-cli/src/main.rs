//! `dwell`: session analytics over user-interaction events. See `dwell --help`.

fn main() -> std::process::ExitCode {
    dwell_cli::main()
}
