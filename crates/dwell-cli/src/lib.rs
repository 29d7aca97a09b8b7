//! The `dwell` command line: `generate`, `ingest`, `sql`, `serve`, `scheduler` and `executor`, over
//! [`dwell_engine::Engine`].
//!
//! The commands live here, writing to a given output, so the integration tests run them
//! in-process; `main.rs` only parses the arguments and sets the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use clap::{Args, Parser, Subcommand, ValueEnum};
use datafusion::error::DataFusionError;
use dwell_engine::{DataLocation, Engine, GenerateOptions, StoreSettings};

/// The headline metrics that `dwell generate` prints, also `queries/headline.sql`.
pub const HEADLINE_SQL: &str = include_str!("../../../queries/headline.sql");

/// Everything a command can fail with; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Engine(#[from] dwell_engine::Error),
    #[error("{}", .0.strip_backtrace())]
    Query(#[from] DataFusionError),
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Serve(#[from] dwell_flight::Error),
    #[error("{0}")]
    Cluster(#[from] dwell_cluster::Error),
    #[error("{0}")]
    Usage(String),
}

/// The CLI's result.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

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

/// Output formats of `dwell sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row and line.
    Json,
    /// Parquet (needs -o).
    Parquet,
}

/// Runs a command, writing its results to `out` (progress and notes go to standard error).
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> Result<()> {
    match cli.command {
        Command::Generate(args) => generate(args, out).await,
        Command::Ingest(args) => ingest(args, out).await,
        Command::Sql(args) => sql(args, out).await,
        Command::Serve(args) => serve(args, out).await,
        Command::Scheduler(args) => scheduler(args, out).await,
        Command::Executor(args) => executor(args, out).await,
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(args: ServeArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let auth = args
        .auth
        .as_deref()
        .map(dwell_flight::AuthConfig::read)
        .transpose()?;
    if let (Some(cluster), Some(auth)) = (&args.cluster.cluster, &auth) {
        let scoped = auth.account_scoped();
        if !scoped.is_empty() {
            return Err(CliError::Usage(format!(
                "--cluster {cluster}: account-scoped callers ({}) cannot be served from a \
                 cluster yet (their tables do not travel to it); serve them without --cluster",
                scoped.join(", ")
            )));
        }
    }
    let engine = open_on(&args.data, false, &args.cluster).await?;
    let mut options = dwell_flight::ServerOptions::new(args.listen);
    options.auth = auth;
    options.allow_unauthenticated_remote = args.allow_unauthenticated;
    options.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(dwell_flight::TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if options.tls.is_some() {
        "grpc+tls"
    } else {
        "grpc"
    };
    let server = dwell_flight::FlightServer::bind(std::sync::Arc::new(engine), options).await?;
    writeln!(
        out,
        "dwell serve: listening on {scheme}://{}",
        server.local_addr()
    )
    .and_then(|()| out.flush())
    .map_err(io("standard output"))?;
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        stop_signal().await;
        let _ = stopping_tx.send(());
    };
    let grace = std::time::Duration::from_secs(args.shutdown_grace);
    let serving = server.serve_until(shutdown);
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async {
            // After the signal, calls in progress get the grace period, then the process ends.
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            eprintln!("dwell serve: calls still running after {}s; stopping them", grace.as_secs());
        }
    }
    Ok(())
}

fn store_settings(data: &DataArg) -> StoreSettings {
    StoreSettings {
        timeout: data.store_timeout,
        connect_timeout: data.store_timeout.min(std::time::Duration::from_secs(5)),
        retries: data.store_retries,
        retry_timeout: data.store_timeout.saturating_mul(2),
    }
}

async fn open(data: &DataArg, create: bool) -> Result<Engine> {
    open_on(data, create, &ClusterArg { cluster: None }).await
}

/// The engine over `data`, running its queries on `cluster` if one is given.
async fn open_on(data: &DataArg, create: bool, cluster: &ClusterArg) -> Result<Engine> {
    let store = store_settings(data);
    let location = DataLocation::parse_with(&data.data, &store)?;
    let mut builder = Engine::builder(location.clone())
        .create_if_missing(create)
        .with_memory_limit(data.memory_limit)
        .with_store_settings(store);
    if let Some(url) = &cluster.cluster {
        let url: dwell_cluster::ClusterUrl = url.parse()?;
        builder = builder.with_state_upgrade(dwell_cluster::client_upgrade(&url, &location)?);
    }
    Ok(builder.build().await?)
}

async fn scheduler(args: SchedulerArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let store = store_settings(&args.data);
    let location = DataLocation::parse_with(&args.data.data, &store)?;
    writeln!(out, "dwell scheduler: df://{} over {location}", args.listen)
        .and_then(|()| out.flush())
        .map_err(io("standard output"))?;
    tokio::select! {
        result = dwell_cluster::run_scheduler(args.listen, location, store) => result?,
        () = stop_signal() => {}
    }
    Ok(())
}

async fn executor(args: ExecutorArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let store = store_settings(&args.data);
    let location = DataLocation::parse_with(&args.data.data, &store)?;
    let options = dwell_cluster::ExecutorOptions {
        scheduler: args.scheduler.parse()?,
        listen: args.listen,
        task_slots: args.task_slots,
        work_dir: args.work_dir,
        memory_limit: args.data.memory_limit,
    };
    writeln!(
        out,
        "dwell executor: {} for {} over {location}",
        options.listen, options.scheduler
    )
    .and_then(|()| out.flush())
    .map_err(io("standard output"))?;
    tokio::select! {
        result = dwell_cluster::run_executor(options, location, store) => result?,
        () = stop_signal() => {}
    }
    Ok(())
}

async fn generate(args: GenerateArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let engine = open(&args.data, true).await?;
    let options = GenerateOptions {
        events: args.events,
        users: args.users.unwrap_or((args.events / 200).max(10)),
        days: args.days,
        seed: args.seed,
        ..GenerateOptions::default()
    };
    if options.days == 0 {
        return Err(CliError::Usage("--days must be at least 1".into()));
    }
    let bar = indicatif::ProgressBar::new(options.events);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} generating [{bar:30}] {pos}/{len} events ({per_sec}, {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let reports = engine
        .generate(&options, &|done| bar.set_position(done))
        .await?;
    bar.finish_and_clear();
    let landed: usize = reports.iter().map(|r| r.rows).sum();
    let files: usize = reports.iter().map(|r| r.files.len()).sum();
    let again = reports.iter().filter(|r| r.already_landed).count();
    writeln!(
        out,
        "generated {} events for {} users over {} days (seed {}) into {} in {:.1} s: \
         {landed} events landed in {files} files{}",
        options.events,
        options.users,
        options.days,
        options.seed,
        engine.location(),
        started.elapsed().as_secs_f64(),
        if again > 0 {
            format!(", {again} chunks had landed before and were skipped")
        } else {
            String::new()
        }
    )
    .map_err(io("writing the output"))?;
    let batches = engine.sql(HEADLINE_SQL).await?.collect().await?;
    print(&batches, Format::Table, out)
}

async fn ingest(args: IngestArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let engine = open(&args.data, true).await?;
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

/// Splits SQL text into statements at `;` outside quotes and comments.
#[must_use]
pub fn statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) => {
                if c == q {
                    quote = None;
                }
                current.push(c);
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, '-') if chars.peek() == Some(&'-') => {
                // A line comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            (None, ';') => {
                if !current.trim().is_empty() {
                    statements.push(current.trim().to_owned());
                }
                current.clear();
            }
            (None, c) => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

async fn sql(args: SqlArgs, out: &mut (dyn Write + Send)) -> Result<()> {
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
        for statement in statements(&text) {
            let stages = dwell_cluster::explain_stages(&engine, &statement).await?;
            write!(out, "{stages}").map_err(io("writing the output"))?;
        }
        return Ok(());
    }
    let Some(text) = text else {
        return repl(&engine).await;
    };
    let mut last = Vec::new();
    for statement in statements(&text) {
        let batches = engine.sql(&statement).await?.collect().await?;
        last = batches;
    }
    match &args.output {
        Some(path) => write_file(path, &last, args.format),
        None => print(&last, args.format, out),
    }
}

/// Writes a result to a file: to a temporary name first, renamed when complete.
fn write_file(path: &Path, batches: &[RecordBatch], format: Format) -> Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(directory)
        .map_err(io(format!("cannot write in {}", directory.display())))?;
    match format {
        Format::Parquet => {
            let schema = batches.first().map_or_else(
                || std::sync::Arc::new(arrow::datatypes::Schema::empty()),
                RecordBatch::schema,
            );
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut temporary, schema, None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
        other => print(batches, other, &mut temporary)?,
    }
    // A temporary file is private (0600); a result file is an ordinary one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io(format!("cannot write {}", path.display())))?;
    }
    temporary.persist(path).map_err(|e| CliError::Io {
        context: format!("cannot write {}", path.display()),
        source: e.error,
    })?;
    Ok(())
}

/// Prints batches in a text format.
pub fn print(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{table}").map_err(io("writing the output"))?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Parquet => {
            return Err(CliError::Usage("--format parquet needs -o OUT".into()));
        }
    }
    Ok(())
}

/// Collects prompt lines into statements: input is complete when a line ends with `;`.
#[derive(Debug, Default)]
pub struct LineBuffer {
    text: String,
}

/// What a line of the prompt asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// More lines are needed.
    Incomplete,
    /// This text (one or more statements) is ready to run.
    Complete(String),
    /// `\q`, `quit` or `exit` on a line of its own.
    Quit,
}

impl LineBuffer {
    /// Whether a statement has been started.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Adds a line.
    pub fn push(&mut self, line: &str) -> Input {
        let trimmed = line.trim();
        if self.text.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
            return Input::Quit;
        }
        if self.text.is_empty() && trimmed.is_empty() {
            return Input::Incomplete;
        }
        self.text.push_str(line);
        self.text.push('\n');
        if trimmed.ends_with(';') {
            Input::Complete(std::mem::take(&mut self.text))
        } else {
            Input::Incomplete
        }
    }

    /// Drops a half-typed statement (Ctrl-C).
    pub fn clear(&mut self) {
        self.text.clear();
    }
}

/// Runs the statements of one prompt input: results to `out`, an error as one line to `err`;
/// a failed statement does not end the session.
pub async fn run_input(engine: &Engine, text: &str, out: &mut dyn Write, err: &mut dyn Write) {
    for statement in statements(text) {
        let started = std::time::Instant::now();
        let outcome = async {
            let batches = engine.sql(&statement).await?.collect().await?;
            print(&batches, Format::Table, out)?;
            Ok::<usize, CliError>(batches.iter().map(RecordBatch::num_rows).sum())
        }
        .await;
        let _ = match outcome {
            Ok(rows) => writeln!(
                err,
                "{rows} rows in {:.3} s",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => writeln!(err, "error: {}", one_line(&e.to_string())),
        };
    }
}

/// The interactive prompt: statements end with `;`, `\q` quits, history is kept in
/// `~/.dwell_history`.
async fn repl(engine: &Engine) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| CliError::Usage(format!("cannot open the prompt: {e}")))?;
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".dwell_history"));
    if let Some(history) = &history {
        // A first run has no history yet.
        let _ = editor.load_history(history);
    }
    eprintln!(
        "dwell {} on {}: SQL ending with ';', \\q to quit. Tables: SHOW TABLES;",
        env!("CARGO_PKG_VERSION"),
        engine.location()
    );
    let mut buffer = LineBuffer::default();
    loop {
        let prompt = if buffer.is_empty() {
            "dwell> "
        } else {
            "   ..> "
        };
        match editor.readline(prompt) {
            Ok(line) => match buffer.push(&line) {
                Input::Incomplete => {}
                Input::Quit => break,
                Input::Complete(text) => {
                    let _ = editor.add_history_entry(text.trim());
                    run_input(
                        engine,
                        &text,
                        &mut std::io::stdout().lock(),
                        &mut std::io::stderr().lock(),
                    )
                    .await;
                }
            },
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Usage(format!("prompt failed: {e}"))),
        }
    }
    if let Some(history) = &history {
        editor
            .save_history(history)
            .map_err(|e| CliError::Usage(format!("cannot save the history: {e}")))?;
    }
    Ok(())
}

/// An error message on one line.
#[must_use]
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `dwell` program: parses the command line, runs it, and reports an error on one line.
#[must_use]
pub fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let cli = Cli::parse();
    // dwell's own warnings (a query that runs on a slow path) reach the user on stderr.
    if log::set_logger(&WARNINGS).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
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

/// Prints dwell's warnings (log targets under `dwell`) to stderr; other crates' logs stay off.
struct Warnings;

static WARNINGS: Warnings = Warnings;

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn && metadata.target().starts_with("dwell")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("dwell: warning: {}", record.args());
        }
    }

    fn flush(&self) {}
}
