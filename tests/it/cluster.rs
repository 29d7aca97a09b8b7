//! The same SQL on an Apache DataFusion Ballista cluster: an in-process one (scheduler and two
//! executors on this test's runtime), and real `dwell scheduler` and `dwell executor` processes
//! on 127.0.0.1, over a local folder and over S3 (moto). Every view, and queries over the
//! settings tables, must give exactly the rows a single-process engine gives (floating-point
//! sums to within 1e-9 relative: the cluster adds partial sums in another order).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float64Type;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionConfig;
use dwell_cluster::ClusterUrl;
use dwell_engine::{DataLocation, Engine, GenerateOptions, Scope, StoreSettings, VIEWS};

use futures::TryStreamExt;

use crate::load::ServeProcess;
use crate::support::{close, generate_at, query};

/// Queries beyond the views: the settings tables travel to the cluster as in-memory tables,
/// and a join mixes them with the Parquet events; the what-if table function plans its views
/// in the client like the views.
const MORE_QUERIES: [&str; 5] = [
    "SELECT * FROM dwell_settings",
    "SELECT a.app_id, a.timeout_seconds, count(*) AS events FROM events e \
     JOIN app_settings a ON e.app_id = a.app_id GROUP BY a.app_id, a.timeout_seconds",
    "SELECT account_id, count(*) AS sessions, sum(duration_seconds) AS seconds \
     FROM sessions GROUP BY account_id",
    dwell_cli::HEADLINE_SQL,
    "SELECT account_id, count(*) AS sessions, sum(duration_seconds) AS seconds \
     FROM sessions_with('default_timeout', '15m', 'day_boundary', true) GROUP BY account_id",
];

/// A cell of a result: floating-point sums may differ in their last bits between plans that
/// add in another order (the cluster adds each partition's partial sums), so they are compared
/// as numbers, within [`close`]; every other value as its text.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Text(String),
    Float(f64),
}

/// The rows of a result, sorted: the views' row order is not part of what they promise, and the
/// cluster returns partitions in another order.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<Cell> = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(
                    |(column, formatter)| match column.as_primitive_opt::<Float64Type>() {
                        Some(floats) if floats.is_valid(row) => Cell::Float(floats.value(row)),
                        _ => Cell::Text(formatter.value(row).to_string()),
                    },
                )
                .collect();
            rows.push(cells);
        }
    }
    // Text cells decide the order; floats only break ties.
    rows.sort_by(|a, b| {
        let text = |row: &Vec<Cell>| {
            row.iter()
                .filter_map(|c| match c {
                    Cell::Text(t) => Some(t.clone()),
                    Cell::Float(_) => None,
                })
                .collect::<Vec<_>>()
        };
        text(a)
            .cmp(&text(b))
            .then_with(|| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal))
    });
    rows
}

/// Every view and [`MORE_QUERIES`], by query.
async fn answers(engine: &Engine) -> BTreeMap<String, Vec<Vec<Cell>>> {
    let mut answers = BTreeMap::new();
    let queries = VIEWS
        .iter()
        .map(|v| format!("SELECT * FROM {}", v.name))
        .chain(MORE_QUERIES.iter().map(|q| (*q).to_owned()));
    for sql in queries {
        let batches = query(engine, &sql).await;
        answers.insert(sql, rows(&batches));
    }
    answers
}

fn assert_same(
    single: &BTreeMap<String, Vec<Vec<Cell>>>,
    cluster: &BTreeMap<String, Vec<Vec<Cell>>>,
) {
    for (sql, expected) in single {
        assert!(!expected.is_empty(), "{sql}: no rows to compare");
        let got = &cluster[sql];
        assert_eq!(
            got.len(),
            expected.len(),
            "{sql}: {} rows on the cluster, {} in one process",
            got.len(),
            expected.len()
        );
        for (g, e) in got.iter().zip(expected) {
            let same = g.len() == e.len()
                && g.iter().zip(e).all(|pair| match pair {
                    (Cell::Float(a), Cell::Float(b)) => close(*a, *b),
                    (a, b) => a == b,
                });
            assert!(
                same,
                "{sql}: the cluster gives {g:?} where one process gives {e:?}"
            );
        }
    }
}

/// Generated events (three accounts, five applications with their own timeouts in the
/// location's `dwell.toml`) at `location`.
async fn generate(location: &DataLocation, events: u64) {
    let options = GenerateOptions {
        events,
        users: 90,
        days: 4,
        seed: 7,
        ..GenerateOptions::default()
    };
    generate_at(location, &options).await;
}

/// A client engine whose queries run on `cluster`, with more partitions than this machine's
/// cores so that the stages have several tasks to spread over the executors.
async fn client(location: &DataLocation, cluster: &ClusterUrl) -> Engine {
    Engine::builder(location.clone())
        .with_config(SessionConfig::new().with_target_partitions(4))
        .with_state_upgrade(dwell_cluster::client_upgrade(cluster, location).expect("upgrade"))
        .build()
        .await
        .expect("client engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_cluster_gives_the_single_process_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location =
        DataLocation::parse(dir.path().join("data").to_str().expect("utf-8")).expect("location");
    generate(&location, 20_000).await;
    let single = Engine::builder(location.clone())
        .build()
        .await
        .expect("engine");
    let expected = answers(&single).await;

    let url = dwell_cluster::start_in_process(&location, &StoreSettings::default(), 2, 2)
        .await
        .expect("in-process cluster");
    let engine = client(&location, &url).await;
    assert_same(&expected, &answers(&engine).await);

    // A tenant's tables (scoped to its account) travel to the cluster, and the executors run
    // the account filter: the same answers as the tenant gets from one process, its rows only.
    for account in ["acme", "globex"] {
        let scope = Scope::Account(account.to_owned());
        let on_cluster = tenant_answers(&engine, &scope).await;
        assert_same(&tenant_answers(&single, &scope).await, &on_cluster);
        let accounts = &on_cluster["SELECT DISTINCT account_id FROM sessions"];
        assert_eq!(accounts, &[vec![Cell::Text(account.to_owned())]]);
    }

    // An ingest through the client engine lands in the location, and the cluster sees it in
    // the next query (the scheduler lists files at every query).
    let before = count(&engine, "SELECT count(*) AS n FROM events").await;
    let more = dir.path().join("more.csv");
    std::fs::write(
        &more,
        "event_time,account_id,user_id,app_id,tab_id,event_type\n\
         2026-11-03T10:00:00Z,acme,late-user,crm,t1,click\n\
         2026-11-03T10:01:00Z,acme,late-user,crm,t1,click\n",
    )
    .expect("write");
    engine.ingest_file(&more).await.expect("ingest");
    assert_eq!(
        count(&engine, "SELECT count(*) AS n FROM events").await,
        before + 2
    );
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) AS n FROM sessions WHERE user_id = 'late-user'"
        )
        .await,
        1
    );

    // An event inside that session retracts its row: the executors drop retracted rows by
    // the set the live-row filter carries, and answer as one process does.
    let inside = dir.path().join("inside.csv");
    std::fs::write(
        &inside,
        "event_time,account_id,user_id,app_id,tab_id,event_type\n\
         2026-11-03T10:00:30Z,acme,late-user,crm,t1,click\n",
    )
    .expect("write");
    engine.ingest_file(&inside).await.expect("ingest");
    assert_eq!(
        count(
            &engine,
            "SELECT event_count AS n FROM sessions WHERE user_id = 'late-user'"
        )
        .await,
        3
    );
    let single = Engine::builder(location.clone())
        .build()
        .await
        .expect("engine");
    assert_same(&answers(&single).await, &answers(&engine).await);
    let scope = Scope::Account("acme".to_owned());
    assert_same(
        &tenant_answers(&single, &scope).await,
        &tenant_answers(&engine, &scope).await,
    );
}

/// The views, a what-if call and the accounts seen, in the context of a caller of `scope`.
async fn tenant_answers(engine: &Engine, scope: &Scope) -> BTreeMap<String, Vec<Vec<Cell>>> {
    let ctx = engine.context_for(scope).await.expect("tenant context");
    let queries = VIEWS
        .iter()
        .map(|v| format!("SELECT * FROM {}", v.name))
        .chain([
            "SELECT DISTINCT account_id FROM sessions".to_owned(),
            "SELECT count(*) AS n, sum(duration_seconds) AS seconds \
             FROM sessions_with('default_timeout', '15m')"
                .to_owned(),
        ]);
    let mut answers = BTreeMap::new();
    for sql in queries {
        let batches = ctx
            .sql(&sql)
            .await
            .unwrap_or_else(|e| panic!("plan {sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("run {sql}: {e}"));
        answers.insert(sql, rows(&batches));
    }
    answers
}

async fn count(engine: &Engine, sql: &str) -> i64 {
    crate::support::ints(&query(engine, sql).await, "n")[0].expect("a count")
}

#[tokio::test]
async fn a_cluster_refuses_a_location_only_this_process_sees() {
    let location = DataLocation::parse("memory://").expect("location");
    let error = dwell_cluster::start_in_process(&location, &StoreSettings::default(), 1, 1)
        .await
        .expect_err("memory:// is private");
    assert!(error.to_string().contains("in-memory location"), "{error}");
    // The client side refuses it the same way, and so does `dwell sql --cluster`.
    let url: ClusterUrl = "df://127.0.0.1:9".parse().expect("url");
    let error = dwell_cluster::client_upgrade(&url, &location)
        .err()
        .expect("a client over memory:// is refused");
    assert!(error.to_string().contains("in-memory location"), "{error}");
    let output = Command::new(env!("CARGO_BIN_EXE_dwell-under-test"))
        .args([
            "sql",
            "--data",
            "memory://",
            "--cluster",
            "df://127.0.0.1:9",
            "-c",
            "SELECT 1",
        ])
        .output()
        .expect("dwell sql");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("in-memory location"),
        "{stderr}"
    );
    for (url, says) in [
        ("http://127.0.0.1:50050", "df://HOST:PORT"),
        ("df://", "names no host"),
        ("df://host:50050/path", "only df://HOST:PORT"),
    ] {
        let error = url.parse::<ClusterUrl>().expect_err(url).to_string();
        assert!(error.contains(url) && error.contains(says), "{error}");
    }
    let url: ClusterUrl = "df://127.0.0.1".parse().expect("default port");
    assert_eq!(url.to_string(), "df://127.0.0.1:50050");
}

/// A port free on 127.0.0.1 at the time of asking.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A process this test started, ended by its PID when dropped.
struct Started {
    name: &'static str,
    child: Child,
    log: std::path::PathBuf,
}

impl Started {
    fn spawn(name: &'static str, args: &[&str], log: std::path::PathBuf) -> Started {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dwell-under-test"))
            .args(args)
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Started { name, child, log }
    }

    /// Panics with the process's output if it has ended.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            panic!(
                "{} ended ({status}): {}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SIGTERM by the PID this test holds; the commands stop on it.
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `dwell scheduler` and two `dwell executor` processes over `data`, on free loopback ports.
/// The second has a memory limit, so it sessionizes over DataFusion's spilling sort (its
/// codec decodes `SessionizeExec` so) where the first sorts in memory.
fn start_cluster(data: &str, dir: &Path) -> (ClusterUrl, Vec<Started>, Vec<std::path::PathBuf>) {
    let scheduler_port = free_port();
    let listen = format!("127.0.0.1:{scheduler_port}");
    let url: ClusterUrl = format!("df://{listen}").parse().expect("url");
    let mut processes = vec![Started::spawn(
        "scheduler",
        &["scheduler", "--data", data, "--listen", &listen],
        dir.join("scheduler.log"),
    )];
    let mut work_dirs = Vec::new();
    for i in 0..2 {
        let work = dir.join(format!("executor-{i}"));
        std::fs::create_dir_all(&work).expect("work dir");
        let listen = format!("127.0.0.1:{}", free_port());
        let memory_limit: &[&str] = if i == 0 {
            &[]
        } else {
            &["--memory-limit", "2GiB"]
        };
        processes.push(Started::spawn(
            "executor",
            &[
                &[
                    "executor",
                    "--data",
                    data,
                    "--scheduler",
                    &url.to_string(),
                    "--listen",
                    &listen,
                    "--task-slots",
                    "2",
                    "--work-dir",
                    work.to_str().expect("utf-8"),
                ][..],
                memory_limit,
            ]
            .concat(),
            dir.join(format!("executor-{i}.log")),
        ));
        work_dirs.push(work);
    }
    // The scheduler accepts connections once it is ready.
    let deadline = Instant::now() + Duration::from_mins(1);
    while std::net::TcpStream::connect(("127.0.0.1", scheduler_port)).is_err() {
        processes[0].assert_running();
        assert!(Instant::now() < deadline, "the scheduler did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (url, processes, work_dirs)
}

/// Whether an executor wrote shuffle output under its work folder, i.e. ran a task.
fn ran_tasks(work_dir: &Path) -> bool {
    std::fs::read_dir(work_dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// The CLI against the cluster: `dwell sql --cluster` prints what it prints in one process.
fn cli_sql(data: &str, cluster: Option<&ClusterUrl>, sql: &str) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dwell-under-test"));
    command.args(["sql", "--data", data, "--format", "csv", "-c", sql]);
    if let Some(cluster) = cluster {
        command.args(["--cluster", &cluster.to_string()]);
    }
    let output = command.output().expect("dwell sql");
    assert!(
        output.status.success(),
        "dwell sql {cluster:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn processes_give_the_single_process_answers(location: &DataLocation, data: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    generate(location, 20_000).await;
    let single = Engine::builder(location.clone())
        .build()
        .await
        .expect("engine");
    let expected = answers(&single).await;

    let (url, mut processes, work_dirs) = start_cluster(data, dir.path());
    let engine = client(location, &url).await;
    assert_same(&expected, &answers(&engine).await);
    for process in &mut processes {
        process.assert_running();
    }
    assert!(
        work_dirs.iter().all(|w| ran_tasks(w)),
        "both executors ran tasks: {work_dirs:?}"
    );

    let sql = "SELECT account_id, count(*) AS sessions FROM sessions \
               GROUP BY account_id ORDER BY account_id";
    assert_eq!(cli_sql(data, Some(&url), sql), cli_sql(data, None, sql));

    // `dwell serve --cluster`: a Flight SQL client's statements and prepared statements run on
    // the cluster and give the single-process rows.
    let mut server = ServeProcess::start(Path::new(data), &["--cluster", &url.to_string()]);
    let mut flight = server.client().await;
    for sql in ["SELECT * FROM user_session_stats", "SELECT * FROM sessions"] {
        let batches = crate::flight::query(&mut flight, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql} through dwell serve --cluster: {e}"));
        let single = query(&single, sql).await;
        assert_same(
            &BTreeMap::from([(sql.to_owned(), rows(&single))]),
            &BTreeMap::from([(sql.to_owned(), rows(&batches))]),
        );
    }
    let mut prepared = flight
        .prepare("SELECT count(*) AS n FROM sessions".to_owned(), None)
        .await
        .expect("prepare");
    let info = prepared.execute().await.expect("execute");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> = flight
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("stream");
    assert_eq!(
        crate::support::ints(&batches, "n"),
        vec![Some(
            count(&single, "SELECT count(*) AS n FROM sessions").await
        )]
    );
    assert!(server.stop("TERM").success(), "{:?}", server.log);

    // A tenant of `dwell serve --cluster --auth`: its queries run on the cluster and see its
    // own account only.
    let auth = dir.path().join("auth.toml");
    std::fs::write(
        &auth,
        "[[users]]\nname = \"alice\"\npassword = \"secret\"\naccount = \"acme\"\n",
    )
    .expect("auth file");
    let auth = auth.to_str().expect("utf-8");
    let mut server = ServeProcess::start(
        Path::new(data),
        &["--cluster", &url.to_string(), "--auth", auth],
    );
    let mut alice = server.client().await;
    alice.handshake("alice", "secret").await.expect("login");
    let accounts = crate::flight::query(&mut alice, "SELECT DISTINCT account_id FROM sessions")
        .await
        .expect("a tenant's query through dwell serve --cluster");
    assert_eq!(
        crate::support::texts(&accounts, "account_id"),
        [Some("acme".to_owned())]
    );
    let own = crate::flight::query(&mut alice, "SELECT count(*) AS n FROM sessions")
        .await
        .expect("count");
    assert_eq!(
        crate::support::ints(&own, "n"),
        vec![Some(
            count(
                &single,
                "SELECT count(*) AS n FROM sessions WHERE account_id = 'acme'"
            )
            .await
        )]
    );
    assert!(server.stop("TERM").success(), "{:?}", server.log);
    drop(processes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduler_and_two_executor_processes_over_a_local_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let location = DataLocation::parse(data).expect("location");
    processes_give_the_single_process_answers(&location, data).await;
}

/// The same over a real S3 API: `.ci/run` starts moto and sets `DWELL_TEST_S3` and `AWS_*`,
/// which the processes inherit; without it the test says so and passes, except under CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduler_and_two_executor_processes_over_s3() {
    let Some(data) = crate::support::s3_test_prefix("cluster_over_s3") else {
        return;
    };
    let location = DataLocation::parse(&data).expect("s3 location");
    processes_give_the_single_process_answers(&location, &data).await;
}

/// The stages of `sql` as `explain_stages` prints them, each as its header line and its text.
async fn stages(engine: &Engine, sql: &str) -> Vec<(String, String)> {
    let text = dwell_cluster::explain_stages(engine, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    text.split("stage ")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let (header, body) = block.split_once('\n').expect("a header line");
            (header.to_owned(), body.to_owned())
        })
        .collect()
}

/// What the executors run: the scheduler's plan of a query that sessionizes, encoded and
/// decoded as an executor does, keeps dwell's operator, sorting in memory (or, on an executor
/// with a memory limit, with DataFusion's spilling sort inside it), with the same operators
/// (the scheduler counts them: a task's metrics that do not match its stage's are dropped, and
/// the task's output with them), and gives the rows of the plan it came from under a memory
/// pool like an executor's.
#[tokio::test]
async fn executors_run_dwell_s_operator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location =
        DataLocation::parse(dir.path().join("data").to_str().expect("utf-8")).expect("location");
    generate(&location, 2_000).await;
    let engine = Engine::builder(location)
        .with_config(SessionConfig::new().with_target_partitions(4))
        .build()
        .await
        .expect("engine");
    let operator_lines = |plan: &dyn datafusion::physical_plan::ExecutionPlan| {
        let text = datafusion::physical_plan::displayable(plan)
            .indent(false)
            .to_string();
        let lines: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("SessionizeExec:"))
            .collect();
        (lines, at)
    };
    for sql in [
        "SELECT * FROM sessions_with()",
        "SELECT * FROM sessionized_events",
        "SELECT count(*) AS n, sum(duration_seconds) AS seconds \
         FROM sessions_with('default_timeout', '15m') WHERE user_id = 'u1'",
    ] {
        let (state, plan) = engine.sql(sql).await.expect("plan").into_parts();
        let planning =
            dwell_engine::distributed_state(state.config().clone(), state.runtime_env().clone())
                .expect("scheduler state");
        let physical = planning
            .create_physical_plan(&state.optimize(&plan).expect("optimize"))
            .await
            .expect("physical plan");
        let (lines, at) = operator_lines(physical.as_ref());
        assert!(
            !at.is_empty() && at.iter().all(|&i| lines[i].contains("mode=SortInMemory")),
            "{sql}: the scheduler plans SessionizeExec: {lines:#?}"
        );
        // A pool as an executor's tasks get (a share of a limit, spilling fairly).
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::from_runtime_env(
            planning.runtime_env(),
        )
        .with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(1 << 30),
        ))
        .build_arc()
        .expect("runtime");
        let task =
            Arc::new(datafusion::execution::TaskContext::from(&planning).with_runtime(runtime));
        let expected = rows(
            &datafusion::physical_plan::collect(Arc::clone(&physical), Arc::clone(&task))
                .await
                .expect("run"),
        );
        for memory_limited in [false, true] {
            let decoded =
                dwell_cluster::as_executor_decodes(Arc::clone(&physical), &task, memory_limited)
                    .unwrap_or_else(|e| panic!("{sql}: decoding: {e}"));
            let (decoded_lines, decoded_at) = operator_lines(decoded.as_ref());
            assert_eq!(decoded_at.len(), at.len(), "{sql}: {decoded_lines:#?}");
            for (&before, &after) in at.iter().zip(&decoded_at) {
                // The operators the scheduler sent, which it counts (an executor with a
                // memory limit sorts with DataFusion's spilling sort inside the operator).
                let expected_line = if memory_limited {
                    lines[before].replace("mode=SortInMemory", "mode=SortSpilling")
                } else {
                    lines[before].clone()
                };
                assert_eq!(decoded_lines[after], expected_line, "{sql}");
                assert_eq!(decoded_lines[after + 1], lines[before + 1], "{sql}");
            }
            assert_eq!(
                decoded_lines.len(),
                lines.len(),
                "{sql}: {decoded_lines:#?}"
            );
            let got = rows(
                &datafusion::physical_plan::collect(decoded, Arc::clone(&task))
                    .await
                    .expect("run the decoded plan"),
            );
            // Sums within 1e-9: the repartition may hand the rows over in another order.
            assert_same(
                &BTreeMap::from([(sql.to_owned(), expected.clone())]),
                &BTreeMap::from([(sql.to_owned(), got)]),
            );
        }
    }
}

/// What runs where: the events are read, filtered and hash-partitioned by (account, user) in
/// one stage, one task per file group; each of those partitions (a bucket of users) is then
/// sorted and sessionized by a task of its own in the next stage, and only the result moves on.
#[tokio::test]
async fn each_bucket_of_users_sessionizes_in_a_task_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location =
        DataLocation::parse(dir.path().join("data").to_str().expect("utf-8")).expect("location");
    generate(&location, 2_000).await;
    // Planning the stages needs no running cluster.
    let url: ClusterUrl = "df://127.0.0.1:9".parse().expect("url");
    let engine = client(&location, &url).await;
    for sql in [
        "SELECT * FROM sessionized_events",
        // `sessions` reads the persisted sessions; `sessions_with()` sessionizes as it did.
        "SELECT count(*) AS n FROM sessions_with() WHERE user_id = 'u1'",
    ] {
        let stages = stages(&engine, sql).await;
        // dwell's operator, sorting each bucket in memory, as in one process: the executors
        // run it (the in-process and process clusters give the single-process answers).
        let window = stages
            .iter()
            .position(|(_, body)| body.contains("SessionizeExec: mode=SortInMemory"))
            .unwrap_or_else(|| panic!("{sql}: no stage runs SessionizeExec: {stages:?}"));
        assert!(
            stages.iter().all(|(_, body)| body.lines().all(|line| !(line
                .contains("WindowAggExec: wdw=[")
                && line.contains("sessionize(")))),
            "{sql}: sessionize in DataFusion's window operator: {stages:?}"
        );
        let (header, body) = &stages[window];
        assert!(header.contains("(4 tasks)"), "{sql}: {header}");
        let under = body
            .lines()
            .skip_while(|line| !line.contains("SessionizeExec:"))
            .nth(1)
            .expect("an input under SessionizeExec");
        assert!(
            !under.trim_start().starts_with("SortExec"),
            "{sql}: SessionizeExec sorts the bucket itself: {body}"
        );
        assert!(
            body.contains(
                "UnresolvedShuffleExec: stage=1, partitioning: Hash([account_id@1, user_id@2], 4)"
            ),
            "{sql}: the sessionizing stage reads buckets of users: {body}"
        );
        let (_, scan) = &stages[0];
        assert!(
            scan.contains("DataSourceExec")
                && scan.contains("partitioning=Hash([account_id@1, user_id@2], 4)"),
            "{sql}: the first stage reads the files and buckets the users: {scan}"
        );
        assert!(
            !scan.contains("sessionize"),
            "{sql}: nothing is sessionized before the shuffle: {scan}"
        );
    }
    // `dwell sql --stages` prints the same.
    let sql = "SELECT * FROM sessions_with()";
    let data = dir.path().join("data");
    let cli = <dwell_cli::Cli as clap::Parser>::try_parse_from([
        "dwell",
        "sql",
        "--data",
        data.to_str().expect("utf-8"),
        "--stages",
        "-c",
        sql,
    ])
    .expect("arguments");
    let mut out = Vec::new();
    dwell_cli::run(cli, &mut out)
        .await
        .expect("dwell sql --stages");
    // The CLI's engine has the default number of partitions.
    let default_partitions = Engine::builder(location).build().await.expect("engine");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        dwell_cluster::explain_stages(&default_partitions, sql)
            .await
            .expect("stages")
    );
}
