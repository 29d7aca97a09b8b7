//! Real Python Flight SQL clients (ADBC, flightsql-dbapi, `SQLAlchemy`) against a real
//! `dwell serve` process: `tests/python/`, run with the interpreter named by
//! `DWELL_TEST_PYTHON` (`.ci/run` installs one; without it the test says SKIPPED, and fails
//! under CI).

use std::process::Command;

use clap::Parser;

use crate::flight::{PASSWORD, TOKEN, auth_toml};
use crate::load::{ServeProcess, generated_folder};

pub(crate) fn python() -> Option<std::ffi::OsString> {
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

/// Runs the pytest suite in `tests/SUITE` with `env`; fails the test (with pytest's report)
/// unless it passes.
pub(crate) fn pytest(
    python: &std::ffi::OsStr,
    suite: &str,
    env: &[(&str, std::ffi::OsString)],
) -> String {
    let output = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"])
        .arg(format!("{}/{suite}", env!("CARGO_MANIFEST_DIR")))
        .envs(env.iter().map(|(k, v)| (*k, v)))
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
        "the {suite} suite failed:\n{report}"
    );
    assert!(report.contains(" passed"), "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_work_against_dwell_serve() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated_folder(dir.path(), 20_000).await;
    let auth = dir.path().join("auth.toml");
    std::fs::write(&auth, auth_toml()).expect("auth file");
    let mut server = ServeProcess::start(&data, &["--auth", auth.to_str().expect("utf-8")]);
    let address = server.address.clone();
    let (host, port) = address.rsplit_once(':').expect("host:port");

    pytest(
        &python,
        "python",
        &[
            ("DWELL_FLIGHT_HOST", host.into()),
            ("DWELL_FLIGHT_PORT", port.into()),
            ("DWELL_FLIGHT_USER", "analyst".into()),
            ("DWELL_FLIGHT_PASSWORD", PASSWORD.into()),
            ("DWELL_FLIGHT_TOKEN", TOKEN.into()),
            ("DWELL_VERSION", env!("CARGO_PKG_VERSION").into()),
        ],
    );

    // SIGTERM: the server stops gracefully, by the PID of the process this test started.
    let exit = server.stop("TERM");
    assert!(exit.success(), "dwell serve exited with {exit}");

    // One line per call, and never a secret in them.
    let log = server.log.lock().expect("log").join("\n");
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
