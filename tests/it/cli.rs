//! The `dwell` commands, run in-process.

use clap::{CommandFactory, Parser};
use dwell_cli::{Cli, one_line, run, statements};

use crate::support::{ints, texts};

async fn dwell(args: &[&str]) -> Result<String, String> {
    let cli = Cli::try_parse_from(std::iter::once("dwell").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    run(cli, &mut out)
        .await
        .map_err(|e| one_line(&e.to_string()))?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

/// A Parquet file written by `dwell sql -o`: an ordinary file (not the temp file's 0600).
fn read_result_file(path: &std::path::Path) -> Vec<arrow::array::RecordBatch> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "an ordinary file, not the temp file's 0600"
        );
    }
    let file = std::fs::File::open(path).expect("written");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches")
}

#[test]
fn every_command_has_help_and_a_version() {
    Cli::command().debug_assert();
    for command in [vec![], vec!["generate"], vec!["ingest"], vec!["sql"]] {
        let args: Vec<&str> = std::iter::once("dwell")
            .chain(command.iter().copied())
            .chain(["--help"])
            .collect();
        let error = Cli::try_parse_from(&args).expect_err("help exits");
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::DisplayHelp,
            "{args:?}"
        );
        assert!(error.to_string().contains("Usage: dwell"), "{args:?}");
    }
    let error = Cli::try_parse_from(["dwell", "--version"]).expect_err("version exits");
    assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
}

#[test]
fn statements_split_outside_quotes_and_comments() {
    assert_eq!(
        statements("SELECT ';' AS a; -- a comment; with a semicolon\nSELECT 2;\n\n"),
        vec!["SELECT ';' AS a".to_owned(), "SELECT 2".to_owned()]
    );
    assert_eq!(statements("SELECT 1"), vec!["SELECT 1".to_owned()]);
}

#[tokio::test]
async fn generate_ingest_and_sql_from_the_command_line() {
    let data = tempfile::tempdir().expect("tempdir");
    let loc = data.path().to_str().expect("utf-8");
    let out = dwell(&[
        "generate", "--events", "3000", "--users", "30", "--days", "3", "--data", loc,
    ])
    .await
    .expect("generate");
    assert!(out.contains("3000 events landed"), "{out}");
    assert!(
        out.contains("avg_session_seconds"),
        "the headline metrics are printed: {out}"
    );
    assert!(data.path().join("users/users.parquet").is_file());
    assert!(data.path().join("dwell.toml").is_file());

    // Again: the same chunks have landed, nothing doubles.
    let out = dwell(&[
        "generate", "--events", "3000", "--users", "30", "--days", "3", "--data", loc,
    ])
    .await
    .expect("generate again");
    assert!(out.contains("0 events landed"), "{out}");

    let csv = dwell(&[
        "sql",
        "--data",
        loc,
        "-c",
        "SELECT count(*) AS n FROM events",
        "--format",
        "csv",
    ])
    .await
    .expect("sql");
    assert_eq!(csv, "n\n3000\n");

    let json = dwell(&[
        "sql",
        "--data",
        loc,
        "-c",
        "SELECT 1 AS a, 'x' AS b",
        "--format",
        "json",
    ])
    .await
    .expect("json");
    assert_eq!(json, "{\"a\":1,\"b\":\"x\"}\n");

    let table = dwell(&["sql", "--data", loc, "-c", "SELECT 1 AS a"])
        .await
        .expect("table");
    assert!(table.contains("| a |"), "{table}");

    // -f with several statements prints the last; -o writes a file.
    let script = data.path().join("q.sql");
    std::fs::write(
        &script,
        "SELECT 1; SELECT user_id, sessions FROM user_session_stats ORDER BY user_id;",
    )
    .expect("script");
    let parquet = data.path().join("out.parquet");
    let out = dwell(&[
        "sql",
        "--data",
        loc,
        "-f",
        script.to_str().expect("utf-8"),
        "--format",
        "parquet",
        "-o",
        parquet.to_str().expect("utf-8"),
    ])
    .await
    .expect("parquet output");
    assert!(out.is_empty());
    let batches = read_result_file(&parquet);
    assert_eq!(texts(&batches, "user_id").len(), 30);
    assert!(
        ints(&batches, "sessions")
            .iter()
            .all(|n| n.is_some_and(|n| n > 0))
    );

    let error = dwell(&["sql", "--data", loc, "-c", "SELECT * FROM nope"])
        .await
        .expect_err("bad SQL");
    assert!(error.contains("nope") && !error.contains('\n'), "{error}");
    let error = dwell(&[
        "sql", "--data", loc, "-c", "SELECT 1", "--format", "parquet",
    ])
    .await
    .expect_err("parquet to a terminal");
    assert!(error.contains("-o"), "{error}");
}

#[tokio::test]
async fn ingest_reports_what_landed() {
    let data = tempfile::tempdir().expect("tempdir");
    let loc = data.path().to_str().expect("utf-8");
    let file = data.path().join("in.csv");
    std::fs::write(
        &file,
        "event_time,user_id,app_id,tab_id,event_type\n2026-11-02T10:00:00Z,u1,crm,t1,page_view\n",
    )
    .expect("csv");
    let path = file.to_str().expect("utf-8");
    let out = dwell(&["ingest", "--data", loc, path])
        .await
        .expect("ingest");
    assert!(out.contains("1 events landed in 1 files"), "{out}");
    let out = dwell(&["ingest", "--data", loc, path])
        .await
        .expect("ingest again");
    assert!(out.contains("already landed"), "{out}");
    let error = dwell(&["sql", "--data", "/nonexistent/dwell-data", "-c", "SELECT 1"])
        .await
        .expect_err("missing");
    assert!(
        error.contains("/nonexistent/dwell-data") && error.contains("does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn the_prompt_takes_multi_line_statements_and_survives_errors() {
    use dwell_cli::{Input, LineBuffer, run_input};
    let mut buffer = LineBuffer::default();
    assert_eq!(buffer.push(""), Input::Incomplete);
    assert_eq!(buffer.push("SELECT 1 AS a,"), Input::Incomplete);
    assert!(!buffer.is_empty());
    let Input::Complete(text) = buffer.push("       2 AS b;") else {
        panic!("a line ending with ; completes the statement");
    };
    assert!(buffer.is_empty());
    assert_eq!(buffer.push("\\q"), Input::Quit);
    assert_eq!(buffer.push("SELECT"), Input::Incomplete);
    assert_eq!(
        buffer.push("quit"),
        Input::Incomplete,
        "quit inside a statement is text"
    );
    buffer.clear();
    assert_eq!(buffer.push("exit"), Input::Quit);

    let engine = crate::views::generated(
        &dwell_engine::GenerateOptions {
            events: 200,
            users: 5,
            ..crate::views::small()
        },
        None,
    )
    .await;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    run_input(
        &engine,
        &format!("{text}SELECT * FROM nope; SELECT count(*) AS n FROM events;"),
        &mut out,
        &mut err,
    )
    .await;
    let (out, err) = (
        String::from_utf8(out).expect("utf-8"),
        String::from_utf8(err).expect("utf-8"),
    );
    assert!(
        out.contains("| a | b |") && out.contains("| 200 |"),
        "{out}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("1 rows in"), "{err}");
    assert!(
        lines[1].starts_with("error: ") && lines[1].contains("nope"),
        "{err}"
    );
    assert!(lines[2].starts_with("1 rows in"), "{err}");
}

/// `--memory-limit` takes sizes with units, runs queries within the limit with the same answers,
/// and refuses sizes it cannot read, naming them.
#[tokio::test]
async fn memory_limit_takes_sizes_and_gives_the_same_answers() {
    let data = tempfile::tempdir().expect("tempdir");
    let loc = data.path().to_str().expect("utf-8");
    dwell(&[
        "generate", "--events", "3000", "--users", "30", "--days", "3", "--data", loc,
    ])
    .await
    .expect("generate");
    let sql = "SELECT count(*) AS n, sum(event_count) AS e FROM sessions";
    let unlimited = dwell(&["sql", "--data", loc, "--format", "csv", "-c", sql])
        .await
        .expect("sql");
    for limit in ["64MiB", "0.5GB", "1GiB", "100000000"] {
        let limited = dwell(&[
            "sql",
            "--data",
            loc,
            "--memory-limit",
            limit,
            "--format",
            "csv",
            "-c",
            sql,
        ])
        .await
        .expect("sql within the limit");
        assert_eq!(limited, unlimited, "--memory-limit {limit}");
    }
    for (bad, says) in [
        ("12XB", "unknown unit"),
        ("lots", "not a size"),
        ("0", "not a usable memory size"),
    ] {
        let error = dwell(&["sql", "--data", loc, "--memory-limit", bad, "-c", sql])
            .await
            .expect_err("bad size");
        assert!(
            error.contains("--memory-limit") && error.contains(says),
            "--memory-limit {bad}: {error}"
        );
    }
}
