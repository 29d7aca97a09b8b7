//! The command line's arguments: the `clap` types of `dwell` and each of its commands, and the
//! parsers of their sizes and durations.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// `dwell`: session analytics over user-interaction events.
#[derive(Debug, Parser)]
#[command(
    name = "dwell",
    version,
    about = "Session analytics over user-interaction events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate realistic synthetic events (and a users table) into the data location.
    Generate(GenerateArgs),
    /// Validate event files (Parquet, CSV, JSON lines) and land them under events/.
    Ingest(IngestArgs),
    /// Run SQL over the tables and views; without -c or -f, open an interactive prompt.
    Sql(SqlArgs),
    /// Recompute every persisted session from the events (after files were placed by other
    /// means or dwell.toml changed); the change log records what differs.
    Rebuild(RebuildArgs),
    /// Merge small event and session files into few (the answers do not change); an ingest
    /// also does this every 64 commits.
    Compact(CompactArgs),
    /// Serve the tables and views to BI tools over Arrow Flight SQL (JDBC, ADBC, ...).
    Serve(ServeArgs),
    /// Run a Ballista scheduler for a cluster over the data location (see `--cluster`).
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor that takes work from a scheduler and reads the data location.
    Executor(ExecutorArgs),
}

/// Where queries run.
#[derive(Debug, Args)]
pub struct ClusterArg {
    /// Run queries on a dwell cluster (`dwell scheduler` and `dwell executor` processes over
    /// the same data location) instead of in this process.
    #[arg(long, value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

/// `dwell scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    #[command(flatten)]
    pub data: DataArg,
    /// Address to listen on for clients and executors.
    #[arg(long, default_value = "127.0.0.1:50050", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
}

/// `dwell executor`.
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    #[command(flatten)]
    pub data: DataArg,
    /// The scheduler to take work from.
    #[arg(
        long,
        default_value = "df://127.0.0.1:50050",
        value_name = "df://HOST:PORT"
    )]
    pub scheduler: String,
    /// Address other executors and clients fetch this executor's results from (Arrow Flight).
    #[arg(long, default_value = "127.0.0.1:50060", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Tasks to run at once (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub task_slots: usize,
    /// Folder for shuffle files (default: a new temporary folder).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// `dwell serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Credentials file (TOML, see the README): users with passwords, and tokens.
    #[arg(long, value_name = "FILE")]
    pub auth: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve a non-loopback address without --auth (anyone who can reach it can query).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Seconds calls in progress may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_grace: u64,
    /// Also serve the session analytics page (and its JSON API) over HTTP on this address,
    /// with the same --auth and the same loopback rule.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Serve only the page: no Flight SQL listener (needs --http).
    #[arg(long, requires = "http")]
    pub no_flight: bool,
}

/// Where the data is.
#[derive(Debug, Args)]
pub struct DataArg {
    /// Data location: a folder, `file://`, `s3://bucket/prefix` (`AWS_*` variables) or `memory://`.
    #[arg(long, default_value = "./data", value_name = "LOC")]
    pub data: String,
    /// Memory a query may hold in its sorts, aggregations, joins and sessionization, e.g.
    /// `2GiB` or `512MiB`; past it a query spills or fails with "resources exhausted" instead
    /// of the process running out of memory. Default: no limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub memory_limit: Option<usize>,
    /// Longest wait for one storage request, or for the next chunk of a download, e.g. `30s`.
    /// A call that gets no answer fails with an error naming it instead of hanging.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub store_timeout: std::time::Duration,
    /// Retries of a failed S3 request (with backoff, within `--store-timeout` x 2).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub store_retries: usize,
}

/// `30s`, `2m`, `500ms`: a positive duration.
fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a positive duration such as 30s"))
}

/// `2GiB`, `512MiB`, `1.5GB`, `800000` (bytes).
fn parse_bytes(text: &str) -> std::result::Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 2GiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let bytes = value * scale;
    if bytes < 1.0 || !bytes.is_finite() || bytes > usize::MAX as f64 {
        return Err(format!("{text:?} is not a usable memory size"));
    }
    Ok(bytes as usize)
}

/// `dwell generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub data: DataArg,
    /// Number of events.
    #[arg(long)]
    pub events: u64,
    /// Number of users (default: one per 200 events, at least 10).
    #[arg(long)]
    pub users: Option<u64>,
    /// Number of days, starting 2026-11-02.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Seed: the same seed and sizes give the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `dwell ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub data: DataArg,
    /// Files to ingest: .parquet, .csv (with a header row) or .jsonl/.json (one object per line).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Land the events without bringing the persisted sessions up to date: the session views
    /// sessionize at query time until `dwell rebuild` or the next ingest (for bulk loads).
    #[arg(long)]
    pub no_session_upkeep: bool,
}

/// `dwell rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub data: DataArg,
}

/// `dwell compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub data: DataArg,
    /// Delete files no commit has named for this long (queries that listed them before may
    /// still read them meanwhile).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub grace: std::time::Duration,
}

/// `dwell sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
    /// The SQL to run.
    #[arg(
        short = 'c',
        long = "command",
        conflicts_with = "file",
        value_name = "SQL"
    )]
    pub command: Option<String>,
    /// A file holding the SQL to run (one or more statements separated by `;`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the result to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Print the stages each statement runs in on a cluster (tasks and operators of each)
    /// instead of running it. Needs no running cluster.
    #[arg(long, conflicts_with = "output")]
    pub stages: bool,
}
