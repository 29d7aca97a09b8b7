//! The bad-input corpus (`tests/corpus/`): every file is refused with an error that names it
//! and what is wrong, nothing is written, and what was stored before is still there.
//! Hostile SQL goes to a running server, which refuses it and keeps serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_flight::error::FlightError;
use dwell_engine::{DataLocation, Engine, IngestId};
use serde::Deserialize;
use tonic::Code;

use crate::flight::{client, events_batch, query, serve, small_engine};
use crate::support::ints;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    ingest: Vec<Case>,
    settings: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    #[serde(default)]
    expect: Vec<String>,
    outcome: Option<String>,
    what: String,
}

impl Case {
    /// What an error text lacks of the expected words, if anything (a case must expect some).
    fn lacks(&self, shown: &str) -> Option<String> {
        let missing: Vec<_> = self
            .expect
            .iter()
            .filter(|w| !shown.contains(w.as_str()))
            .collect();
        (!missing.is_empty() || self.expect.is_empty())
            .then(|| format!("error lacks {missing:?}: {shown}"))
    }
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn cases() -> Cases {
    let text = std::fs::read_to_string(corpus().join("cases.toml")).expect("cases.toml");
    toml::from_str(&text).expect("cases.toml parses")
}

/// Every file under a folder with its size: what "nothing was written" compares.
fn listing(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                out.insert(
                    relative.display().to_string(),
                    entry.metadata().expect("metadata").len(),
                );
            }
        }
    }
    out
}

async fn count_events(engine: &Engine) -> i64 {
    let batches = engine
        .sql("SELECT count(*) AS n FROM events")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("count");
    ints(&batches, "n")[0].expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_file_is_refused_by_name_and_nothing_is_written() {
    let cases = cases();
    assert!(cases.ingest.len() >= 47, "the corpus shrank");
    let mut listed: Vec<String> = std::fs::read_dir(corpus().join("ingest"))
        .expect("ingest folder")
        .map(|e| format!("ingest/{}", e.expect("entry").file_name().to_string_lossy()))
        .collect();
    listed.sort();
    let mut named: Vec<String> = cases.ingest.iter().map(|c| c.file.clone()).collect();
    named.sort();
    assert_eq!(
        listed, named,
        "every corpus file has a case, every case a file"
    );

    // One location with good events already landed; every bad file is offered to it.
    let (dir, _, engine) = location_with_good_events().await;
    let before = listing(dir.path());
    let mut failures = Vec::new();
    for case in &cases.ingest {
        let path = corpus().join(&case.file);
        let result = engine.ingest_file(&path).await;
        match (&case.outcome, result) {
            (None, Err(error)) => {
                if let Some(lack) = case.lacks(&error.to_string()) {
                    failures.push(format!("{} ({}): {lack}", case.file, case.what));
                }
            }
            (None, Ok(report)) => failures.push(format!(
                "{} ({}): was accepted: {report:?}",
                case.file, case.what
            )),
            (Some(outcome), Ok(report)) => {
                assert_eq!(outcome, "lands nothing", "{}", case.file);
                if report.rows != 0 || !report.files.is_empty() {
                    failures.push(format!("{}: landed {report:?}", case.file));
                }
            }
            (Some(_), Err(error)) => failures.push(format!("{}: failed: {error}", case.file)),
        }
        if listing(dir.path()) != before {
            failures.push(format!("{}: the location changed", case.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        count_events(&engine).await,
        50,
        "the landed events are intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_settings_file_is_refused_naming_the_file_and_key() {
    let mut failures = Vec::new();
    for case in cases().settings {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(corpus().join(&case.file), dir.path().join("dwell.toml")).expect("copy");
        let location = DataLocation::parse(dir.path().to_str().expect("utf-8")).expect("location");
        match Engine::builder(location).build().await {
            Ok(_) => failures.push(format!("{}: accepted ({})", case.file, case.what)),
            Err(error) => {
                if let Some(lack) = case.lacks(&error.to_string()) {
                    failures.push(format!("{}: {lack}", case.file));
                }
            }
        }
        assert_eq!(
            listing(dir.path()).len(),
            1,
            "{}: only dwell.toml is there",
            case.file
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn status_of(error: &FlightError) -> (Code, String) {
    match error {
        FlightError::Tonic(status) => (status.code(), status.message().to_owned()),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

/// Hostile SQL, each with the code it gets and words of its message.
fn hostile_sql(scratch: &Path) -> Vec<(String, Code, &'static str)> {
    let written = scratch.join("copied.csv");
    let deep_parens = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    let deep_calls = format!("SELECT {}1{}", "abs(".repeat(2_000), ")".repeat(2_000));
    let long_sum = format!("SELECT 1{}", " + 1".repeat(20_000));
    let deep_subqueries = format!(
        "SELECT * FROM {}(SELECT 1 AS x){}",
        "(SELECT * FROM ".repeat(300),
        " AS t)".repeat(300)
    );
    vec![
        (
            "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/'".into(),
            Code::PermissionDenied,
            "read-only",
        ),
        (
            format!("COPY (SELECT * FROM events) TO '{}'", written.display()),
            Code::PermissionDenied,
            "read-only",
        ),
        (
            "SET datafusion.execution.batch_size = 1".into(),
            Code::PermissionDenied,
            "read-only",
        ),
        (
            "INSERT INTO events SELECT * FROM events".into(),
            Code::PermissionDenied,
            "read-only",
        ),
        (
            "DROP VIEW sessions".into(),
            Code::PermissionDenied,
            "read-only",
        ),
        (
            "CREATE VIEW mine AS SELECT 1".into(),
            Code::PermissionDenied,
            "read-only",
        ),
        (
            "SELECT * FROM (SELECT 1) t WHERE EXISTS (SELECT 1 FROM events) UNION ALL \
             SELECT 1 FROM (SELECT 1) u"
                .into(),
            Code::Ok,
            "",
        ),
        (
            "SELECT * FROM '/etc/passwd'".into(),
            Code::NotFound,
            "not found",
        ),
        (
            "SELECT * FROM \"../../etc/passwd\"".into(),
            Code::NotFound,
            "not found",
        ),
        (
            "SELECT * FROM \"events/../users\"".into(),
            Code::NotFound,
            "not found",
        ),
        (deep_parens, Code::InvalidArgument, "nests too deeply"),
        (deep_calls, Code::InvalidArgument, "nests too deeply"),
        (long_sum, Code::InvalidArgument, "nests too deeply"),
        (
            format!(
                "SELECT count(*) AS n FROM events WHERE {}",
                (0..400)
                    .map(|i| format!("user_id = 'u{i}'"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            Code::Ok,
            "",
        ),
        (deep_subqueries, Code::InvalidArgument, "nests too deeply"),
        (
            format!(
                "SELECT count(*) AS n FROM events WHERE user_id IN ({})",
                (0..50_000)
                    .map(|i| format!("'u{i}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Code::Ok,
            "",
        ),
        (
            "SELECT 1; SELECT 2".into(),
            Code::Unimplemented,
            "single SQL statement",
        ),
        ("\u{0}\u{1}".into(), Code::InvalidArgument, "syntax"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_is_refused_and_the_server_keeps_serving() {
    let served = serve(small_engine().await, |_| {}).await;
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut attacker = client(served.addr).await;
    let mut bystander = client(served.addr).await;
    let sessions = "SELECT count(*) AS n FROM sessions";
    let expected = count(&mut bystander, sessions).await;
    let mut failures = Vec::new();
    for (sql, code, words) in hostile_sql(scratch.path()) {
        let shown: String = sql.chars().take(80).collect();
        let outcome = query(&mut attacker, &sql).await;
        match (outcome, code) {
            (Ok(_), Code::Ok) => {}
            (Ok(_), _) => failures.push(format!("{shown}: ran, expected {code:?}")),
            (Err(error), _) => {
                let (got, message) = status_of(&error);
                if got != code || !message.contains(words) {
                    failures.push(format!(
                        "{shown}: {got:?} {message}, expected {code:?} {words}"
                    ));
                }
            }
        }
        // Whatever the attacker sent, another client is served, with the same answer.
        assert_eq!(
            count(&mut bystander, sessions).await,
            expected,
            "after {shown}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        !scratch.path().join("copied.csv").exists(),
        "COPY wrote a file"
    );
    let tables = count(
        &mut bystander,
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN ('etc', 'mine')",
    )
    .await;
    assert_eq!(tables, 0, "no table was created");
}

async fn count(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> i64 {
    let batches = query(client, sql).await.expect(sql);
    ints(&batches, "n")[0].expect("count")
}

/// Files that no ingest wrote (another process, a broken copy) found among the events.
const FOUND_IN_STORAGE: [&str; 8] = [
    "truncated.parquet",
    "bad_magic.parquet",
    "absurd_footer.parquet",
    "zeroed_pages.parquet",
    "empty.parquet",
    "only_magic.parquet",
    "wrong_type_user.parquet",
    "nested_struct.parquet",
];

/// A location with 50 good events (5 sessions) landed.
async fn location_with_good_events() -> (tempfile::TempDir, DataLocation, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = DataLocation::parse(dir.path().to_str().expect("utf-8")).expect("location");
    let engine = Engine::builder(location.clone())
        .build()
        .await
        .expect("engine");
    let good = events_batch("corpus-user", 50);
    engine
        .ingest_batches(
            "good events",
            &IngestId::of_batches(std::slice::from_ref(&good)).expect("id"),
            &good.schema(),
            &[good],
        )
        .await
        .expect("good events land");
    (dir, location, engine)
}

const SESSIONS: &str = "SELECT count(*) AS n FROM sessions";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_in_storage_is_named_and_the_server_keeps_serving() {
    let mut failures = Vec::new();
    for name in FOUND_IN_STORAGE {
        // Opening a location with the file there: refused, naming the file.
        let (dir, location, _) = location_with_good_events().await;
        let day = dir.path().join("events/date=2026-01-01");
        std::fs::copy(corpus().join("ingest").join(name), day.join(name)).expect("copy");
        match Engine::builder(location).build().await {
            Err(error) if error.to_string().contains(name) => {}
            Err(error) => failures.push(format!("{name}: open: {error}")),
            // A 0-byte object is no Parquet file and holds no rows: DataFusion skips it.
            Ok(engine) if name == "empty.parquet" => {
                let batches = engine.sql(SESSIONS).await.expect("plan").collect().await;
                assert_eq!(ints(&batches.expect("run"), "n"), vec![Some(5)]);
            }
            // Its footer is intact and its columns are the events': the location opens, and
            // the query that meets its pages fails naming it.
            Ok(engine) if name == "zeroed_pages.parquet" => {
                match engine.sql(SESSIONS).await.expect("plan").collect().await {
                    Err(error) if error.to_string().contains(name) => {}
                    Err(error) => failures.push(format!("{name}: query: {error}")),
                    Ok(_) => failures.push(format!("{name}: read")),
                }
            }
            Ok(_) => failures.push(format!("{name}: opened")),
        }

        // The file arriving under a running server: the query fails, the server serves on.
        let (dir, _, engine) = location_with_good_events().await;
        let served = serve(Arc::new(engine), |_| {}).await;
        let mut reader = client(served.addr).await;
        let mut bystander = client(served.addr).await;
        std::fs::copy(
            corpus().join("ingest").join(name),
            dir.path().join("events/date=2026-01-01").join(name),
        )
        .expect("copy");
        match query(&mut reader, SESSIONS).await {
            Err(error) => {
                let (code, _) = status_of(&error);
                if code == Code::Ok || code == Code::Unknown {
                    failures.push(format!("{name}: served: {code:?} {error}"));
                }
            }
            Ok(batches) if name == "empty.parquet" => {
                assert_eq!(ints(&batches, "n"), vec![Some(5)]);
            }
            // Read against the table's schema as it was when the server started: its integer
            // user ids and millisecond times cast to text and nanoseconds, its 3 sessions
            // counted. (Opening the location anew refuses it, above.)
            Ok(batches) if name == "wrong_type_user.parquet" => {
                assert_eq!(ints(&batches, "n"), vec![Some(8)]);
            }
            Ok(batches) => failures.push(format!("{name}: served {:?}", ints(&batches, "n"))),
        }
        let one = query(&mut bystander, "SELECT 1 AS n")
            .await
            .expect("still serving");
        assert_eq!(ints(&one, "n"), vec![Some(1)], "{name}");
        bystander
            .get_catalogs()
            .await
            .expect("metadata still served");
        // And the reader's own connection is still good.
        let one = query(&mut reader, "SELECT 2 AS n")
            .await
            .expect("connection intact");
        assert_eq!(ints(&one, "n"), vec![Some(2)], "{name}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
