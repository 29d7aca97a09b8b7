//! The session analytics page of `dwell serve --http`: its JSON API against the SQL views, and
//! the page itself in headless Chromium (`tests/browser/`, Playwright from the Python of
//! `DWELL_TEST_PYTHON`; `.ci/run` installs both).

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use dwell_engine::{DataLocation, Engine};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::flight::{PASSWORD, TOKEN};
use crate::load::{ServeProcess, generated_folder};
use crate::support::close;

/// The account the tenant login is confined to (one of the generated accounts).
const TENANT_PASSWORD: &str = "tenant-pw";

fn auth_file(tenant_account: &str) -> String {
    format!(
        "[[users]]\nname = \"analyst\"\npassword = \"{PASSWORD}\"\nadmin = true\n\n\
         [[users]]\nname = \"viewer\"\npassword = \"{TENANT_PASSWORD}\"\naccount = \"{tenant_account}\"\n\n\
         [[tokens]]\nname = \"script\"\ntoken = \"{TOKEN}\"\nadmin = true\n"
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// One HTTP/1.1 GET over a fresh connection: status, headers (lower-case names) and body.
async fn get(address: &str, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the page");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        request = format!("{request}Authorization: {value}\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read the answer");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let head = head.to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "answers carry their length: {head}"
    );
    (status, head, body.to_owned())
}

/// GET that must answer 200 with JSON.
async fn json(address: &str, path: &str, authorization: &str) -> Value {
    let (status, head, body) = get(address, path, Some(authorization)).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A query's rows, every column as JSON: integers, floats, or text (dates and times included).
async fn rows(engine: &Engine, sql: &str) -> Vec<BTreeMap<String, Value>> {
    let batches = engine
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut map = BTreeMap::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let value = if column.is_null(row) {
                    Value::Null
                } else {
                    match column.data_type() {
                        t if t.is_integer() => Value::from(
                            cast(column, &DataType::Int64)
                                .expect("int")
                                .as_primitive::<Int64Type>()
                                .value(row),
                        ),
                        t if t.is_floating() => Value::from(
                            cast(column, &DataType::Float64)
                                .expect("float")
                                .as_primitive::<Float64Type>()
                                .value(row),
                        ),
                        _ => Value::from(
                            cast(column, &DataType::Utf8)
                                .expect("text")
                                .as_string::<i32>()
                                .value(row),
                        ),
                    }
                };
                map.insert(field.name().clone(), value);
            }
            out.push(map);
        }
    }
    out
}

fn f(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("a number: {value}"))
}

/// Each row of `got` equals the row of `want` at the same place, column by column; floats up
/// to summation order.
fn assert_rows(what: &str, got: &Value, want: &[BTreeMap<String, Value>]) {
    let got = got
        .as_array()
        .unwrap_or_else(|| panic!("{what}: rows: {got}"));
    assert_eq!(got.len(), want.len(), "{what}: {got:?}\nwant {want:?}");
    for (g, w) in got.iter().zip(want) {
        for (column, expected) in w {
            let actual = &g[column];
            let same = match (actual, expected) {
                (Value::Number(_), Value::Number(_)) => close(f(actual), f(expected)),
                _ => actual == expected,
            };
            assert!(
                same,
                "{what}: {column} is {actual}, the views say {expected}\n{g}\n{w:?}"
            );
        }
    }
}

/// The filters of one check, as query string and as SQL over `sessions`.
struct Filter {
    query: String,
    condition: String,
}

fn filters(first_day: &str, last_day: &str, account: &str, app: &str) -> Vec<Filter> {
    vec![
        Filter {
            query: String::new(),
            condition: "TRUE".into(),
        },
        Filter {
            query: format!("from={first_day}&to={last_day}"),
            condition: format!("day BETWEEN DATE '{first_day}' AND DATE '{last_day}'"),
        },
        Filter {
            query: format!("account={account}&app={app}&to={last_day}"),
            condition: format!(
                "account_id = '{account}' AND app_id = '{app}' AND day <= DATE '{last_day}'"
            ),
        },
    ]
}

/// A `dwell serve --http` process over 20,000 generated events (several accounts), with an
/// admin, a tenant of `tenant` and a token; an engine over the same folder for the views'
/// figures.
struct Served {
    dir: tempfile::TempDir,
    engine: Engine,
    accounts: Vec<BTreeMap<String, Value>>,
    tenant: String,
    other: String,
    server: ServeProcess,
    page: String,
}

async fn served_page() -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = generated_folder(dir.path(), 20_000).await;
    let engine =
        Engine::builder(DataLocation::parse(data.to_str().expect("utf-8")).expect("location"))
            .build()
            .await
            .expect("engine");
    let accounts = rows(
        &engine,
        "SELECT DISTINCT account_id FROM sessions ORDER BY 1",
    )
    .await;
    let account = |i: usize| {
        accounts[i]["account_id"]
            .as_str()
            .expect("account")
            .to_owned()
    };
    let (tenant, other) = (account(1), account(0));
    let auth = dir.path().join("auth.toml");
    std::fs::write(&auth, auth_file(&tenant)).expect("auth file");
    let server = ServeProcess::start(
        &data,
        &[
            "--auth",
            auth.to_str().expect("utf-8"),
            "--http",
            "127.0.0.1:0",
        ],
    );
    let page = server.page.clone().expect("the page's address");
    Served {
        dir,
        engine,
        accounts,
        tenant,
        other,
        server,
        page,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_api_answers_what_the_views_say() {
    let Served {
        dir: _dir,
        engine,
        accounts,
        tenant,
        other,
        server,
        page,
    } = served_page().await;
    assert!(accounts.len() >= 2, "generated data has several accounts");
    let admin = basic("analyst", PASSWORD);

    // The page and its library are served, from this server only.
    let (status, head, body) = get(&page, "/", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(
        body.contains("/vendor/chart.umd.min.js") && !body.contains("http"),
        "{body}"
    );
    let (status, _, body) = get(&page, "/vendor/chart.umd.min.js", Some(&admin)).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("/*!\n * Chart.js v4"), "{}", &body[..80]);

    // Who may look: nobody without credentials (the browser is asked for them), nobody with
    // wrong ones; Basic credentials unpadded as well as padded, and the file's tokens.
    for authorization in [
        None,
        Some(basic("analyst", "wrong")),
        Some("Bearer nope".into()),
    ] {
        let (status, head, body) = get(&page, "/api/summary", authorization.as_deref()).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            head.contains("www-authenticate: basic realm=\"dwell\""),
            "{head}"
        );
        assert!(body.contains("\"error\""), "{body}");
    }
    let unpadded = basic("analyst", PASSWORD).trim_end_matches('=').to_owned();
    json(&page, "/api/summary", &unpadded).await;
    json(&page, "/api/summary", &format!("Bearer {TOKEN}")).await;

    let context = json(&page, "/api/context", &admin).await;
    assert_eq!(context["caller"], "analyst");
    assert_eq!(context["account"], Value::Null);
    let span = &rows(&engine, "SELECT min(day) AS a, max(day) AS b FROM sessions").await[0];
    assert_eq!(context["first_day"], span["a"]);
    assert_eq!(context["last_day"], span["b"]);
    let want_accounts: Vec<Value> = accounts.iter().map(|r| r["account_id"].clone()).collect();
    assert_eq!(context["accounts"], Value::Array(want_accounts));
    let apps = rows(&engine, "SELECT DISTINCT app_id FROM sessions ORDER BY 1").await;
    let want_apps: Vec<Value> = apps.iter().map(|r| r["app_id"].clone()).collect();
    assert_eq!(context["applications"], Value::Array(want_apps));
    assert_eq!(
        context["attributes"],
        serde_json::json!(["department", "role", "region"])
    );

    let days = rows(&engine, "SELECT DISTINCT day FROM sessions ORDER BY 1").await;
    let second_day = days[1]["day"].as_str().expect("day").to_owned();
    let last_but_one = days[days.len() - 2]["day"]
        .as_str()
        .expect("day")
        .to_owned();
    let tenant_apps = rows(
        &engine,
        &format!("SELECT DISTINCT app_id FROM sessions WHERE account_id = '{tenant}' ORDER BY 1"),
    )
    .await;
    let app = tenant_apps[0]["app_id"].as_str().expect("app").to_owned();
    for filter in filters(&second_day, &last_but_one, &tenant, &app) {
        let (q, c) = (&filter.query, &filter.condition);
        let what = |endpoint: &str| format!("/api/{endpoint}?{q}");

        // Cards: the sessions view's count and sums; users as (account, user) pairs.
        let summary = json(&page, &what("summary"), &admin).await;
        let want = rows(
            &engine,
            &format!(
                "SELECT count(*) AS sessions, coalesce(sum(duration_seconds), 0.0) AS total_session_seconds,
                        avg(duration_seconds) AS avg_session_seconds,
                        (SELECT count(*) FROM (SELECT DISTINCT account_id, user_id FROM sessions WHERE {c})) AS users
                 FROM sessions WHERE {c}"
            ),
        )
        .await;
        assert_rows(&what("summary"), &Value::Array(vec![summary]), &want);

        // Per day and per application: daily_session_metrics summed over the other key.
        let daily = json(&page, &what("daily"), &admin).await;
        let want = rows(
            &engine,
            &format!(
                "SELECT CAST(m.day AS VARCHAR) AS day, m.sessions, m.total_session_seconds,
                        m.total_session_seconds / m.sessions AS avg_session_seconds, u.users
                 FROM (SELECT day, sum(sessions) AS sessions, sum(total_session_seconds) AS total_session_seconds
                       FROM daily_session_metrics WHERE {c} GROUP BY day) m
                 JOIN (SELECT day, count(*) AS users FROM (SELECT DISTINCT day, account_id, user_id FROM sessions WHERE {c}) GROUP BY day) u
                   ON m.day = u.day
                 ORDER BY 1"
            ),
        )
        .await;
        assert_rows(&what("daily"), &daily["rows"], &want);
        let per_app = json(&page, &what("applications"), &admin).await;
        let want = rows(
            &engine,
            &format!(
                "SELECT m.app_id, m.sessions, m.total_session_seconds, u.users
                 FROM (SELECT app_id, sum(sessions) AS sessions, sum(total_session_seconds) AS total_session_seconds
                       FROM daily_session_metrics WHERE {c} GROUP BY app_id) m
                 JOIN (SELECT app_id, count(*) AS users FROM (SELECT DISTINCT app_id, account_id, user_id FROM sessions WHERE {c}) GROUP BY app_id) u
                   ON m.app_id = u.app_id
                 ORDER BY m.app_id"
            ),
        )
        .await;
        assert_rows(&what("applications"), &per_app["rows"], &want);

        // Durations: every bucket, counted over its bounds.
        let durations = json(&page, &what("durations"), &admin).await;
        let buckets = durations["buckets"].as_array().expect("buckets");
        assert_eq!(buckets.len(), 11);
        for bucket in buckets {
            let lower = f(&bucket["lower_seconds"]);
            let upper = bucket["upper_seconds"].as_f64().unwrap_or(f64::MAX);
            let want = rows(
                &engine,
                &format!(
                    "SELECT count(*) AS n FROM sessions WHERE {c} AND duration_seconds >= {lower:?} \
                     AND duration_seconds < {upper:?}"
                ),
            )
            .await;
            assert_eq!(bucket["sessions"], want[0]["n"], "{bucket} ({q})");
        }
    }

    // Segments without filters are user_segments: the counts, the lists (100 per segment, most
    // sessions first) and the split by a users column.
    let segments = json(&page, "/api/segments?attribute=department", &admin).await;
    let want = rows(
        &engine,
        "SELECT s.segment, coalesce(c.users, 0) AS users, coalesce(c.sessions, 0) AS sessions
         FROM (VALUES ('disengaged'), ('engaged'), ('struggling')) AS s(segment)
         LEFT JOIN (SELECT segment, count(*) AS users, sum(sessions) AS sessions FROM user_segments GROUP BY segment) c
           ON s.segment = c.segment
         ORDER BY s.segment",
    )
    .await;
    assert_rows("segments counts", &segments["counts"], &want);
    let want = rows(
        &engine,
        "SELECT account_id, user_id, segment, sessions, active_days, sessions_per_active_day,
                median_session_seconds, total_session_seconds, apps_used
         FROM (SELECT *, row_number() OVER (PARTITION BY segment ORDER BY sessions DESC, account_id, user_id) AS r
               FROM user_segments)
         WHERE r <= 100 ORDER BY segment, r",
    )
    .await;
    assert_rows("segment users", &segments["users"], &want);
    assert_eq!(segments["by_attribute"]["attribute"], "department");
    let want = rows(
        &engine,
        "SELECT u.department AS value, s.segment, count(*) AS users
         FROM user_segments s JOIN users u ON s.account_id = u.account_id AND s.user_id = u.user_id
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    assert_rows(
        "segments by department",
        &segments["by_attribute"]["rows"],
        &want,
    );
    // One account's segments are that account's rows of user_segments (segments are per user).
    let one = json(&page, &format!("/api/segments?account={tenant}"), &admin).await;
    let want = rows(
        &engine,
        &format!(
            "SELECT s.segment, coalesce(c.users, 0) AS users FROM (VALUES ('disengaged'), ('engaged'), ('struggling')) AS s(segment)
             LEFT JOIN (SELECT segment, count(*) AS users FROM user_segments WHERE account_id = '{tenant}' GROUP BY segment) c
               ON s.segment = c.segment ORDER BY s.segment"
        ),
    )
    .await;
    assert_rows("one account's segments", &one["counts"], &want);
    assert_eq!(one["by_attribute"], Value::Null);

    // The drill-down: the user's rows of `sessions`, in time order, every figure.
    let busiest = rows(
        &engine,
        "SELECT user_id FROM user_session_stats ORDER BY sessions DESC, user_id LIMIT 1",
    )
    .await;
    let user_id = busiest[0]["user_id"].as_str().expect("user").to_owned();
    let drill = json(&page, &format!("/api/user?user_id={user_id}"), &admin).await;
    let want = rows(
        &engine,
        &format!(
            "SELECT session_id, account_id, app_id, tab_id, session_seq, duration_seconds, event_count,
                    page_views, user_actions, content_engagements, end_reason,
                    CAST(arrow_cast(start_time, 'Timestamp(Millisecond, Some(\"UTC\"))') AS BIGINT) AS start_ms
             FROM sessions WHERE user_id = '{user_id}' ORDER BY start_time, account_id, session_seq"
        ),
    )
    .await;
    assert!(want.len() > 3, "the busiest user has sessions");
    assert_rows("drill-down", &drill["sessions"], &want);
    assert_eq!(drill["truncated"], false);
    let filtered = json(
        &page,
        &format!("/api/user?user_id={user_id}&from={last_but_one}"),
        &admin,
    )
    .await;
    let want_later = rows(
        &engine,
        &format!(
            "SELECT session_id, end_reason FROM sessions
             WHERE user_id = '{user_id}' AND day >= DATE '{last_but_one}'
             ORDER BY start_time, account_id, session_seq"
        ),
    )
    .await;
    assert!(
        want_later.len() < want.len(),
        "the filter leaves sessions out"
    );
    assert_rows("drill-down from a day", &filtered["sessions"], &want_later);

    // A tenant sees its own account only, whatever it asks for.
    let viewer = basic("viewer", TENANT_PASSWORD);
    let context = json(&page, "/api/context", &viewer).await;
    assert_eq!(context["caller"], "viewer");
    assert_eq!(context["account"], tenant.as_str());
    assert_eq!(context["accounts"], serde_json::json!([tenant]));
    let mine = json(&page, "/api/summary", &viewer).await;
    let want = rows(
        &engine,
        &format!(
            "SELECT count(*) AS sessions, sum(duration_seconds) AS total_session_seconds
             FROM sessions WHERE account_id = '{tenant}'"
        ),
    )
    .await;
    assert_rows("the tenant's summary", &Value::Array(vec![mine]), &want);
    let (status, _, body) = get(
        &page,
        &format!("/api/summary?account={other}"),
        Some(&viewer),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("may see account \\\"{tenant}\\\" only")),
        "{body}"
    );
    let theirs = rows(
        &engine,
        &format!("SELECT user_id FROM user_session_stats WHERE account_id = '{other}' LIMIT 1"),
    )
    .await;
    let stranger = theirs[0]["user_id"].as_str().expect("user");
    let drill = json(&page, &format!("/api/user?user_id={stranger}"), &viewer).await;
    assert_eq!(
        drill["sessions"],
        serde_json::json!([]),
        "another account's user"
    );

    // Bad requests are named; the server serves on.
    for (path, status, says) in [
        (
            "/api/summary?from=2026-13-01",
            400,
            "from=\\\"2026-13-01\\\" is not a date",
        ),
        (
            "/api/summary?from=2026-11-05&to=2026-11-01",
            400,
            "is after",
        ),
        (
            "/api/summary?sql=DROP",
            400,
            "unknown parameter \\\"sql\\\"",
        ),
        ("/api/summary?app=a&app=b", 400, "given twice"),
        (
            "/api/segments?attribute=password",
            400,
            "not a text column of users",
        ),
        ("/api/user", 400, "give user_id"),
        ("/api/tables", 404, "no endpoint /api/tables"),
        ("/nothing-here", 404, "no such page"),
    ] {
        let (got, _, body) = get(&page, path, Some(&admin)).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    json(&page, "/api/summary", &admin).await;

    // One log line per request, never a credential.
    let mut server = server;
    let exit = server.stop("TERM");
    assert!(exit.success(), "dwell serve exited with {exit}");
    let log = server.log.lock().expect("log").join("\n");
    assert!(
        log.contains("http GET /api/context caller=analyst status=200"),
        "{log}"
    );
    assert!(
        log.contains("http GET /api/summary caller=- status=401"),
        "{log}"
    );
    assert!(
        log.contains("http GET /api/summary caller=viewer status=403"),
        "{log}"
    );
    for secret in [PASSWORD, TENANT_PASSWORD, TOKEN, "Basic "] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

/// The page in a real browser: headless Chromium renders it against a running `dwell serve
/// --http`; the DOM's cards and charts hold the views' figures, the drill-down shows the
/// user's sessions, a tenant sees its account only, an error is a message. Screenshots land
/// in `$CARGO_TARGET_TMPDIR/page-screenshots`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_renders_the_views_in_chromium() {
    let Some(python) = crate::python::python() else {
        return;
    };
    let Served {
        dir,
        engine,
        tenant,
        other,
        mut server,
        page,
        ..
    } = served_page().await;
    let expected = page_figures(&engine, &tenant, &other).await;
    let expected_file = dir.path().join("expected.json");
    std::fs::write(&expected_file, expected.to_string()).expect("expected figures");
    let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots");
    std::fs::create_dir_all(&screenshots).expect("screenshot folder");
    let chromium =
        std::env::var("DWELL_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    crate::python::pytest(
        &python,
        "browser",
        &[
            ("DWELL_PAGE", format!("http://{page}").into()),
            ("DWELL_PAGE_ADMIN", format!("analyst:{PASSWORD}").into()),
            (
                "DWELL_PAGE_TENANT",
                format!("viewer:{TENANT_PASSWORD}").into(),
            ),
            ("DWELL_PAGE_EXPECTED", expected_file.into()),
            ("DWELL_PAGE_SCREENSHOTS", screenshots.clone().into()),
            ("DWELL_TEST_CHROMIUM", chromium.into()),
        ],
    );
    eprintln!("screenshots in {}", screenshots.display());
    for name in ["admin.png", "drill-down.png", "tenant.png", "error.png"] {
        let shot = screenshots.join(name);
        let size = std::fs::metadata(&shot).map_or(0, |m| m.len());
        assert!(
            size > 10_000,
            "{} is a real screenshot ({size} bytes)",
            shot.display()
        );
    }

    let exit = server.stop("TERM");
    assert!(exit.success(), "dwell serve exited with {exit}");
    let log = server.log.lock().expect("log").join("\n");
    assert!(
        log.contains("http GET /api/summary caller=analyst status=200"),
        "{log}"
    );
    assert!(log.contains("caller=viewer"), "{log}");
    for secret in [PASSWORD, TENANT_PASSWORD, "Basic "] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

/// What the page must show, from the views: totals for everyone and for the tenant, the days,
/// applications and segments, and the busiest user's sessions.
async fn page_figures(engine: &Engine, tenant: &str, other: &str) -> Value {
    let totals = |condition: String| async move {
        rows(
            engine,
            &format!(
                "SELECT count(*) AS sessions, sum(duration_seconds) AS total_session_seconds,
                            avg(duration_seconds) AS avg_session_seconds,
                            (SELECT count(*) FROM user_session_stats WHERE {condition}) AS users
                     FROM sessions WHERE {condition}"
            ),
        )
        .await
        .remove(0)
    };
    let daily = rows(
        engine,
        "SELECT CAST(day AS VARCHAR) AS day, sum(sessions) AS sessions FROM daily_session_metrics GROUP BY day ORDER BY day",
    )
    .await;
    let apps = rows(engine, "SELECT app_id, sum(sessions) AS sessions FROM daily_session_metrics GROUP BY app_id ORDER BY app_id").await;
    let segments = rows(
        engine,
        "SELECT segment, count(*) AS users FROM user_segments GROUP BY segment ORDER BY segment",
    )
    .await;
    let busiest = rows(
        engine,
        "SELECT user_id FROM user_session_stats ORDER BY sessions DESC, user_id LIMIT 1",
    )
    .await;
    let user_id = busiest[0]["user_id"].as_str().expect("user").to_owned();
    let user_sessions = rows(
        engine,
        &format!("SELECT session_id, end_reason FROM sessions WHERE user_id = '{user_id}' ORDER BY start_time, account_id, session_seq"),
    )
    .await;
    let tenant_apps = rows(
        engine,
        &format!("SELECT DISTINCT app_id FROM sessions WHERE account_id = '{tenant}' ORDER BY 1"),
    )
    .await;
    let expected = serde_json::json!({
        "all": totals("TRUE".into()).await,
        "tenant": totals(format!("account_id = '{tenant}'")).await,
        "tenant_account": tenant,
        "other_account": other,
        "tenant_apps": tenant_apps.iter().map(|r| r["app_id"].clone()).collect::<Vec<_>>(),
        "daily": daily,
        "apps": apps,
        "segments": segments,
        "user_id": user_id,
        "user_sessions": user_sessions,
    });
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_the_page_serves_loopback_only() {
    let engine = crate::flight::small_engine().await;
    let open = dwell_web::WebOptions::new("0.0.0.0:0".parse().expect("address"));
    let error = dwell_web::WebServer::bind(std::sync::Arc::clone(&engine), open)
        .await
        .expect_err("open to the network without auth");
    assert!(
        error.to_string().contains("--http 0.0.0.0:0") && error.to_string().contains("--auth"),
        "{error}"
    );
    let loopback = dwell_web::WebServer::bind(
        engine,
        dwell_web::WebOptions::new("127.0.0.1:0".parse().expect("address")),
    )
    .await
    .expect("loopback without auth");
    assert!(loopback.local_addr().ip().is_loopback());
}
