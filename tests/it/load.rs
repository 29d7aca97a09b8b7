//! Load and cancellation against a real `dwell serve` process on 127.0.0.1.
//!
//! - 16 concurrent Flight SQL clients mix metadata calls, view queries, prepared statements
//!   with parameters and small ingests for `DWELL_LOAD_SECONDS` (120 under CI, 15 otherwise);
//!   no call may fail, every ingest must be counted after, and p50/p99 latencies are printed.
//! - A query whose client disconnects, or whose deadline passes, stops using the server's CPU
//!   within a second (measured from `/proc/PID/stat`).
//! - A query over the server's `--memory-limit` fails with `RESOURCE_EXHAUSTED`, and the server
//!   serves on.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use dwell_engine::{DataLocation, GenerateOptions};
use futures::TryStreamExt;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::flight::{append, events_batch};
use crate::support::ints;

/// The load test and the CPU measurement do not run at the same time: the load would starve
/// the query whose CPU is measured.
static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `dwell serve` process this test started; ended by its PID when dropped.
pub(crate) struct ServeProcess {
    child: Child,
    pub(crate) address: String,
    /// The page's `host:port`, when started with `--http`.
    pub(crate) page: Option<String>,
    pub(crate) log: Arc<std::sync::Mutex<Vec<String>>>,
    log_thread: Option<std::thread::JoinHandle<()>>,
}

impl ServeProcess {
    /// Starts `dwell serve --listen 127.0.0.1:0 --data DATA ARGS...` and reads the address it
    /// listens on from its first line.
    pub(crate) fn start(data: &std::path::Path, args: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dwell-under-test"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dwell serve");
        let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().expect("stderr");
        let log_writer = Arc::clone(&log);
        let log_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log_writer.lock().expect("log").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("the server's first line");
        let address = first
            .trim()
            .strip_prefix("dwell serve: listening on grpc://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}, log {:?}", log.lock()))
            .to_owned();
        // With --http, the next line names the page's address.
        let page = args.contains(&"--http").then(|| {
            let mut second = String::new();
            stdout
                .read_line(&mut second)
                .expect("the server's second line");
            second
                .trim()
                .strip_prefix("dwell serve: session analytics page on http://")
                .and_then(|rest| rest.strip_suffix('/'))
                .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
                .to_owned()
        });
        ServeProcess {
            child,
            address,
            page,
            log,
            log_thread: Some(log_thread),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the process with `signal` and waits for it (at most 30 s); its exit status.
    pub(crate) fn stop(&mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                break exit;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(thread) = self.log_thread.take() {
            thread.join().expect("log thread");
        }
        exit
    }

    pub(crate) async fn client(&self) -> FlightSqlServiceClient<Channel> {
        FlightSqlServiceClient::new(self.channel().await)
    }

    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A data folder with generated events (three accounts).
pub(crate) async fn generated_folder(dir: &std::path::Path, events: u64) -> std::path::PathBuf {
    let data = dir.join("data");
    let options = GenerateOptions {
        events,
        users: 120,
        days: 5,
        seed: 11,
        ..GenerateOptions::default()
    };
    let location = DataLocation::parse(data.to_str().expect("utf-8")).expect("location");
    crate::support::generate_at(&location, &options).await;
    data
}

/// Seconds of CPU (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces): state is 0, utime 11, stime 12.
    let after = stat.rsplit_once(')').expect("comm").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

/// CPU seconds the process uses during `window`.
async fn cpu_during(pid: u32, window: Duration) -> f64 {
    let before = cpu_seconds(pid);
    tokio::time::sleep(window).await;
    cpu_seconds(pid) - before
}

async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, FlightError> {
    let info = client.execute(sql.to_owned(), None).await?;
    fetch(client, info).await
}

async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> Result<Vec<RecordBatch>, FlightError> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            batches.push(batch);
        }
    }
    Ok(batches)
}

/// One kind of call the load mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Metadata,
    ViewQuery,
    Prepared,
    Ingest,
}

/// A small deterministic generator per client (no shared state, reproducible mixes).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

const VIEW_QUERIES: [&str; 4] = [
    "SELECT count(*) AS n, sum(duration_seconds) AS s FROM sessions",
    "SELECT day, sum(sessions) AS sessions FROM daily_session_metrics GROUP BY day ORDER BY day",
    "SELECT segment, count(*) AS n FROM user_segments GROUP BY segment",
    "SELECT * FROM user_session_stats ORDER BY sessions DESC LIMIT 10",
];

/// Runs one call of `op`; `serial` makes ingests distinct.
async fn call(
    client: &mut FlightSqlServiceClient<Channel>,
    op: Op,
    pick: u64,
    ingest_user: &str,
) -> Result<(), FlightError> {
    match op {
        Op::Metadata => {
            let info = match pick % 4 {
                0 => client.get_catalogs().await?,
                1 => {
                    client
                        .get_db_schemas(CommandGetDbSchemas::default())
                        .await?
                }
                2 => {
                    client
                        .get_tables(CommandGetTables {
                            include_schema: true,
                            ..CommandGetTables::default()
                        })
                        .await?
                }
                _ => {
                    client
                        .get_sql_info(vec![SqlInfo::FlightSqlServerName, SqlInfo::SqlKeywords])
                        .await?
                }
            };
            fetch(client, info).await?;
        }
        Op::ViewQuery => {
            let sql = VIEW_QUERIES[(pick % VIEW_QUERIES.len() as u64) as usize];
            query(client, sql).await?;
        }
        Op::Prepared => {
            let mut prepared = client
                .prepare(
                    "SELECT count(*) AS n FROM sessions WHERE user_id = ?".into(),
                    None,
                )
                .await?;
            let user = format!("acme-u{:06}", pick % 120);
            let params = RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, false)])),
                vec![Arc::new(StringArray::from(vec![user]))],
            )
            .expect("parameters");
            prepared.set_parameters(params)?;
            let info = prepared.execute().await?;
            fetch(client, info).await?;
            prepared.close().await?;
        }
        Op::Ingest => {
            let batch = events_batch(ingest_user, 10);
            client
                .execute_ingest(append("events"), futures::stream::iter([Ok(batch)]))
                .await?;
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn load_seconds() -> u64 {
    std::env::var("DWELL_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::var_os("CI").is_some() {
            120
        } else {
            15
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_mixing_every_kind_of_call_get_no_errors() {
    const CLIENTS: u64 = 16;
    let _exclusive = CPU_HEAVY.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated_folder(dir.path(), 20_000).await;
    let server = Arc::new(ServeProcess::start(&data, &[]));
    let seconds = load_seconds();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for index in 0..CLIENTS {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let mut client = server.client().await;
            let mut random = Lcg(index + 1);
            let mut latencies: Vec<(Op, Duration)> = Vec::new();
            let mut errors = Vec::new();
            let mut ingests = 0u64;
            // Bounded in count as well as in time.
            while Instant::now() < until && latencies.len() < 100_000 {
                let roll = random.next();
                let op = match roll % 20 {
                    0..=5 => Op::Metadata,
                    6..=12 => Op::ViewQuery,
                    13..=17 => Op::Prepared,
                    _ => Op::Ingest,
                };
                let user = format!("load-{index}-{ingests}");
                let started = Instant::now();
                match call(&mut client, op, random.next(), &user).await {
                    Ok(()) => {
                        latencies.push((op, started.elapsed()));
                        if op == Op::Ingest {
                            ingests += 1;
                        }
                    }
                    Err(error) => errors.push(format!("{op:?}: {error}")),
                }
            }
            (latencies, errors, ingests)
        }));
    }
    let mut by_op: BTreeMap<Op, Vec<Duration>> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut ingests = 0;
    for task in tasks {
        let (latencies, task_errors, task_ingests) = task.await.expect("client task");
        for (op, latency) in latencies {
            by_op.entry(op).or_default().push(latency);
        }
        errors.extend(task_errors);
        ingests += task_ingests;
    }
    let mut all: Vec<Duration> = by_op.values().flatten().copied().collect();
    all.sort();
    eprintln!(
        "load: {CLIENTS} clients, {seconds} s, {} calls ({:.1}/s), {} errors",
        all.len(),
        all.len() as f64 / seconds as f64,
        errors.len()
    );
    for (op, latencies) in &mut by_op {
        latencies.sort();
        eprintln!(
            "load: {op:?}: {} calls, p50 {:.1} ms, p99 {:.1} ms",
            latencies.len(),
            percentile(latencies, 0.5).as_secs_f64() * 1e3,
            percentile(latencies, 0.99).as_secs_f64() * 1e3
        );
    }
    eprintln!(
        "load: all: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3
    );
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert_eq!(by_op.len(), 4, "every kind of call ran");
    // Every ingest is there, once.
    let mut client = server.client().await;
    let landed = query(
        &mut client,
        "SELECT count(*) AS n FROM events WHERE user_id LIKE 'load-%'",
    )
    .await
    .expect("count");
    assert_eq!(ints(&landed, "n"), vec![Some(ingests as i64 * 10)]);
    drop(client);
    let mut server = Arc::into_inner(server).expect("the only handle");
    assert!(server.stop("TERM").success());
}

/// Long enough to still run after seconds, and cheap in memory.
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnected_or_timed_out_query_frees_its_cpu_within_a_second() {
    let _exclusive = CPU_HEAVY.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated_folder(dir.path(), 2_000).await;
    let mut server = ServeProcess::start(&data, &[]);
    let pid = server.pid();
    let mut results = Vec::new();
    for ending in ["disconnect", "deadline"] {
        let mut client = server.client().await;
        let info = client.execute(SLOW.into(), None).await.expect("plan");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let mut raw = FlightServiceClient::new(server.channel().await);
        let mut request = tonic::Request::new(ticket);
        if ending == "deadline" {
            request.set_timeout(Duration::from_secs(3));
        }
        let mut stream = raw.do_get(request).await.expect("do_get").into_inner();
        // Running: the query keeps a core busy (less of one when other tests run too).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = cpu_during(pid, Duration::from_secs(1)).await;
        assert!(
            busy > 0.1,
            "{ending}: the query is not running ({busy:.2} s of CPU in 1 s)"
        );
        let ended = Instant::now();
        if ending == "disconnect" {
            drop(stream);
            drop(raw);
            drop(client);
        } else {
            let status = loop {
                match stream.message().await {
                    Err(status) => break status,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the slow query finished"),
                }
            };
            assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
        }
        // Within a second of the end, the server is idle again: measured over the next second.
        let settle = Duration::from_secs(1).saturating_sub(ended.elapsed());
        tokio::time::sleep(settle).await;
        let idle = cpu_during(pid, Duration::from_secs(1)).await;
        results.push(format!(
            "{ending}: busy {busy:.2} s/1 s, after {idle:.3} s/1 s"
        ));
        assert!(
            idle < 0.15,
            "{ending}: still {idle:.2} s of CPU a second after"
        );
    }
    eprintln!("cancel: {}", results.join("; "));
    assert!(server.stop("TERM").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_the_memory_limit_is_refused_and_the_server_serves_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated_folder(dir.path(), 20_000).await;
    let mut server = ServeProcess::start(&data, &["--memory-limit", "1MiB"]);
    let mut client = server.client().await;
    // Sorting every event and grouping all sessions does not fit in 1 MiB.
    let error = query(
        &mut client,
        "SELECT user_id, count(*) AS n, array_agg(session_id ORDER BY start_time) AS ids \
         FROM sessions GROUP BY user_id ORDER BY n DESC",
    )
    .await
    .expect_err("over the limit");
    match &error {
        FlightError::Tonic(status) => {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
            assert!(status.message().contains("memory"), "{status}");
        }
        other => panic!("not a gRPC status: {other:?}"),
    }
    let one = query(&mut client, "SELECT 1 AS n")
        .await
        .expect("still serving");
    assert_eq!(ints(&one, "n"), vec![Some(1)]);
    drop(client);
    assert!(server.stop("TERM").success());
}
