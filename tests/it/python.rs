//! Real Python Flight SQL clients (ADBC, flightsql-dbapi, `SQLAlchemy`) against a real
//! `dwell serve` process: `tests/python/`, run with the interpreter named by
//! `DWELL_TEST_PYTHON` (`.ci/run` installs one; without it the test says SKIPPED, and fails
//! under CI).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use dwell_engine::{DataLocation, Engine, GenerateOptions};

use crate::flight::{PASSWORD, TOKEN, auth_toml};

/// A child process stopped (by its PID) when the test ends, however it ends.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Option<std::ffi::OsString> {
    match std::env::var_os("DWELL_TEST_PYTHON") {
        Some(python) => Some(python),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must set DWELL_TEST_PYTHON (.ci/run installs the clients)")
        }
        None => {
            eprintln!(
                "SKIPPED python clients: set DWELL_TEST_PYTHON to a Python with \
                 adbc-driver-flightsql, flightsql-dbapi and pytest"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "start, run the suite, stop, read the log: one story"
)]
async fn python_clients_work_against_dwell_serve() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let engine = Engine::builder(DataLocation::parse(data.to_str().expect("utf-8")).expect("loc"))
        .create_if_missing(true)
        .build()
        .await
        .expect("engine");
    let options = GenerateOptions {
        events: 20_000,
        users: 100,
        days: 3,
        seed: 11,
        ..GenerateOptions::default()
    };
    engine.generate(&options, &|_| {}).await.expect("generate");
    drop(engine);
    let auth = dir.path().join("auth.toml");
    std::fs::write(&auth, auth_toml()).expect("auth file");

    let mut server = Started(
        Command::new(env!("CARGO_BIN_EXE_dwell-under-test"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--auth")
            .arg(&auth)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dwell serve"),
    );
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = server.0.stderr.take().expect("stderr");
    let log_writer = Arc::clone(&log);
    let log_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log_writer.lock().expect("log").push(line);
        }
    });
    let mut stdout = BufReader::new(server.0.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .expect("the server's first line");
    let address = first
        .trim()
        .strip_prefix("dwell serve: listening on grpc://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}, log {:?}", log.lock()))
        .to_owned();
    let (host, port) = address.rsplit_once(':').expect("host:port");

    let output = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
        .env("DWELL_FLIGHT_HOST", host)
        .env("DWELL_FLIGHT_PORT", port)
        .env("DWELL_FLIGHT_USER", "analyst")
        .env("DWELL_FLIGHT_PASSWORD", PASSWORD)
        .env("DWELL_FLIGHT_TOKEN", TOKEN)
        .env("DWELL_VERSION", env!("CARGO_PKG_VERSION"))
        .output()
        .expect("run pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{report}");
    assert!(
        output.status.success(),
        "the Python client suite failed:\n{report}"
    );
    assert!(report.contains(" passed"), "{report}");

    // SIGTERM: the server stops gracefully, by the PID of the process this test started.
    let pid = server.0.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "dwell serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "dwell serve exited with {exit}");
    log_thread.join().expect("log reader");

    // One line per call, and never a secret in them.
    let log = log.lock().expect("log").join("\n");
    for method in ["Handshake", "GetFlightInfo", "DoGet", "DoPut", "DoAction"] {
        assert!(
            log.contains(&format!(" {method} ")),
            "{method} logged:\n{log}"
        );
    }
    assert!(log.contains(" rows="), "{log}");
    assert!(log.contains("PermissionDenied"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    for secret in [PASSWORD, TOKEN, "Bearer", "Basic "] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_the_network_without_auth_and_bad_auth_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let mut out = Vec::new();
    let error = dwell_cli::run(
        dwell_cli::Cli::parse_from(["dwell", "serve", "--data", &data, "--listen", "0.0.0.0:0"]),
        &mut out,
    )
    .await
    .expect_err("open network without auth");
    assert!(error.to_string().contains("--auth"), "{error}");

    let auth = dir.path().join("auth.toml");
    std::fs::write(&auth, "[[users]]\nname = \"a\"\n").expect("write");
    let error = dwell_cli::run(
        dwell_cli::Cli::parse_from([
            "dwell",
            "serve",
            "--data",
            &data,
            "--auth",
            auth.to_str().expect("utf-8"),
        ]),
        &mut out,
    )
    .await
    .expect_err("bad auth file");
    let shown = error.to_string();
    assert!(
        shown.contains("auth.toml: users[0].password: missing"),
        "{shown}"
    );
}
