//! Tenant isolation: a caller confined to one account never sees another account's rows,
//! counts, sessions or values, through any table, view, SQL trick, metadata call, prepared
//! statement, ticket or ingest.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::CommandGetTables;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::prelude::SessionContext;
use dwell_engine::{Engine, Scope};
use dwell_flight::AuthConfig;
use futures::TryStreamExt;
use tonic::Code;
use tonic::transport::Channel;

use crate::flight::{append, client, events_batch, query, serve};
use crate::support::{ints, texts};
use crate::views::{generated, small};

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn one_int(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = rows(ctx, sql).await;
    ints(&batches, "n")[0].unwrap_or_else(|| panic!("{sql}: NULL"))
}

async fn strings(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = rows(ctx, sql).await;
    let mut out: Vec<String> = texts(&batches, "v").into_iter().flatten().collect();
    out.sort();
    out
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(frame) => frame.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(sql).strip_backtrace()
}

async fn table_names(ctx: &SessionContext) -> Vec<String> {
    strings(
        ctx,
        "SELECT table_schema || '.' || table_name AS v FROM information_schema.tables",
    )
    .await
}

/// Everything one account's context shows, checked against the administrator's.
async fn check_account(
    engine: &Engine,
    admin: &SessionContext,
    account: &String,
    accounts: &[String],
    admin_tables: &[String],
) {
    let ctx = engine
        .context_for(&Scope::Account(account.clone()))
        .await
        .expect("tenant context");
    for (figure, table) in FIGURES {
        let own = one_int(&ctx, &format!("SELECT {figure} AS n FROM {table}")).await;
        let picked = one_int(
            admin,
            &format!("SELECT {figure} AS n FROM {table} WHERE account_id = '{account}'"),
        )
        .await;
        assert_eq!(own, picked, "{account}: {figure} of {table}");
        assert!(own > 0, "{account}: {figure} of {table} is 0");
    }
    // Every way of reaching account ids finds the account's own only.
    for sql in [
        "SELECT DISTINCT account_id AS v FROM events",
        "SELECT account_id AS v FROM events UNION SELECT account_id FROM users \
         UNION SELECT account_id FROM sessions UNION SELECT account_id FROM user_segments",
        "SELECT DISTINCT e.account_id AS v FROM events e JOIN users u ON e.user_id = u.user_id",
        "SELECT DISTINCT account_id AS v FROM (SELECT * FROM events WHERE account_id IN \
         (SELECT account_id FROM users)) sub",
        "SELECT DISTINCT split_part(user_id, '-', 1) AS v FROM sessionized_events",
    ] {
        assert_eq!(strings(&ctx, sql).await, vec![account.clone()], "{sql}");
    }
    // Asking for another account by name finds nothing, and so does asking around it.
    for sql in [
        "SELECT count(*) AS n FROM events WHERE account_id <> '{a}'",
        "SELECT count(*) AS n FROM events WHERE account_id IS NULL OR account_id <> '{a}'",
        "SELECT count(*) AS n FROM sessions WHERE account_id <> '{a}'",
        "SELECT count(*) AS n FROM users WHERE account_id <> '{a}'",
        "SELECT count(*) AS n FROM (SELECT * FROM events LIMIT 1000000) e \
         WHERE e.account_id <> '{a}'",
    ] {
        let sql = sql.replace("{a}", account);
        assert_eq!(one_int(&ctx, &sql).await, 0, "{sql}");
    }
    // Statistics must not answer for the unfiltered table (count, min, max).
    let stats_sql = "SELECT count(*) AS n FROM events";
    let own = one_int(&ctx, stats_sql).await;
    let all = one_int(admin, stats_sql).await;
    assert!(own < all, "{account}: count(*) {own} of {all}");
    let newest = |ctx: SessionContext| async move {
        strings(
            &ctx,
            "SELECT CAST(max(event_time) AS VARCHAR) AS v FROM events",
        )
        .await
    };
    let picked = strings(
        admin,
        &format!(
            "SELECT CAST(max(event_time) AS VARCHAR) AS v FROM events WHERE account_id = '{account}'"
        ),
    )
    .await;
    assert_eq!(
        newest(ctx.clone()).await,
        picked,
        "{account}: max(event_time)"
    );
    // The same table names for everyone: nothing of another account in the catalog.
    assert_eq!(table_names(&ctx).await, admin_tables, "{account}");
    // An error that echoes a value echoes the account's own: the query's failing
    // predicate runs above the account filter, never on other accounts' rows.
    for sql in [
        "SELECT CAST(user_id AS INT) FROM events",
        "SELECT * FROM events WHERE CAST(user_id AS INT) > 0",
        "SELECT * FROM sessions WHERE CAST(user_id AS INT) > 0",
    ] {
        let error = error_of(&ctx, sql).await;
        assert!(error.contains(&format!("{account}-")), "{sql}: {error}");
        for other in accounts.iter().filter(|a| *a != account) {
            assert!(!error.contains(other.as_str()), "{sql}: {error}");
        }
    }
    let plan = texts(
        &rows(&ctx, "EXPLAIN SELECT count(*) FROM sessions").await,
        "plan",
    )
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    assert!(
        plan.contains(&format!("AccountFilterExec: account_id = \"{account}\"")),
        "{plan}"
    );
}

/// Per table and view: a figure the account's own context gives, and the same figure from the
/// administrator's context with the account's rows picked by hand.
const FIGURES: [(&str, &str); 9] = [
    ("count(*)", "events"),
    ("count(*)", "users"),
    ("count(*)", "sessionized_events"),
    ("count(*)", "sessions"),
    ("CAST(sum(duration_seconds) * 1000 AS BIGINT)", "sessions"),
    ("sum(sessions)", "daily_session_metrics"),
    ("count(*)", "user_session_stats"),
    ("count(*)", "user_segments"),
    ("count(*)", "sessions_with('default_timeout', '15m')"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_sees_only_its_own_rows_through_every_table_and_view() {
    let engine = generated(&small(), None).await;
    let admin = engine.context_for(&Scope::All).await.expect("admin");
    let accounts = strings(
        &admin,
        "SELECT DISTINCT account_id AS v FROM events ORDER BY 1",
    )
    .await;
    assert!(accounts.len() >= 3, "{accounts:?}");
    let admin_tables = table_names(&admin).await;

    for account in &accounts {
        check_account(&engine, &admin, account, &accounts, &admin_tables).await;
    }

    // An account with no events sees empty tables, not an error and not everyone's.
    let nobody = engine
        .context_for(&Scope::Account("nobody".into()))
        .await
        .expect("context");
    for (figure, table) in FIGURES {
        let sql = format!("SELECT {figure} AS n FROM {table}");
        let batches = rows(&nobody, &sql).await;
        assert!(
            matches!(ints(&batches, "n")[..], [None | Some(0)]),
            "{sql}: {batches:?}"
        );
    }
}

fn tenant_auth() -> AuthConfig {
    AuthConfig::parse(
        "[[users]]\nname = \"alice\"\npassword = \"pa\"\naccount = \"acme\"\n\
         [[users]]\nname = \"bob\"\npassword = \"pb\"\naccount = \"globex\"\n\
         [[users]]\nname = \"root\"\npassword = \"pr\"\nadmin = true\n",
        "auth.toml",
    )
    .expect("auth")
}

async fn logged_in(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> FlightSqlServiceClient<Channel> {
    let mut client = client(addr).await;
    client.handshake(user, password).await.expect("login");
    client
}

/// Sessions under other settings, for a tenant over Flight SQL.
const WHAT_IF: &str = "sessions_with('default_timeout', '15m')";

/// A tenant's count of `table` equals the administrator's count of the account's rows in it;
/// returns the count.
async fn assert_own_count(
    tenant: &mut FlightSqlServiceClient<Channel>,
    root: &mut FlightSqlServiceClient<Channel>,
    table: &str,
    account: &str,
) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let own = count(tenant, &sql).await;
    let picked = count(root, &format!("{sql} WHERE account_id = '{account}'")).await;
    assert_eq!(own, picked, "{account}: {sql}");
    own
}

async fn count(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> i64 {
    let batches = query(client, sql).await.expect(sql);
    ints(&batches, "n")[0].expect("count")
}

fn status_code(error: &FlightError) -> Code {
    match error {
        FlightError::Tonic(status) => status.code(),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_flight_sql_each_credential_sees_and_lands_its_own_account() {
    let engine: Arc<Engine> = Arc::new(generated(&small(), None).await);
    let served = serve(Arc::clone(&engine), |o| o.auth = Some(tenant_auth())).await;
    let mut alice = logged_in(served.addr, "alice", "pa").await;
    let mut bob = logged_in(served.addr, "bob", "pb").await;
    let mut root = logged_in(served.addr, "root", "pr").await;

    let acme = assert_own_count(&mut alice, &mut root, "sessions", "acme").await;
    let globex = assert_own_count(&mut bob, &mut root, "sessions", "globex").await;
    assert!(acme > 0 && globex > 0);
    let per_account = "SELECT count(*) AS n FROM sessions";
    assert!(count(&mut root, per_account).await > acme + globex - 1);
    // The what-if table function is confined like every table.
    assert_own_count(&mut alice, &mut root, WHAT_IF, "acme").await;

    // Metadata: the same table list for both; columns described alike.
    let tables = |mut c: FlightSqlServiceClient<Channel>| async move {
        let info = c
            .get_tables(CommandGetTables {
                include_schema: false,
                ..CommandGetTables::default()
            })
            .await
            .expect("tables");
        let mut names = Vec::new();
        for endpoint in info.endpoint {
            let mut stream = c
                .do_get(endpoint.ticket.expect("ticket"))
                .await
                .expect("get");
            while let Some(batch) = stream.try_next().await.expect("batch") {
                names.extend(texts(&[batch], "table_name").into_iter().flatten());
            }
        }
        names.sort();
        names
    };
    assert_eq!(tables(alice.clone()).await, tables(bob.clone()).await);

    // A prepared statement belongs to its creator; a ticket runs as whoever presents it.
    let prepared = alice
        .prepare(per_account.to_owned(), None)
        .await
        .expect("prepare");
    let info = alice
        .execute(per_account.to_owned(), None)
        .await
        .expect("info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = bob.do_get(ticket).await.expect("bob's do_get");
    let mut seen = Vec::new();
    while let Some(batch) = stream.try_next().await.expect("batch") {
        seen.push(batch);
    }
    assert_eq!(
        ints(&seen, "n"),
        vec![Some(globex)],
        "the ticket ran as bob"
    );
    drop(prepared);

    // Ingest: alice lands acme events; bob may not land them, and lands his own.
    let acme_batch = events_batch("tenant-user", 10);
    let landed = alice
        .execute_ingest(
            append("events"),
            futures::stream::iter([Ok(acme_batch.clone())]),
        )
        .await
        .expect("alice lands acme events");
    assert_eq!(landed, 10);
    let error = bob
        .execute_ingest(
            append("events"),
            futures::stream::iter([Ok(acme_batch.clone())]),
        )
        .await
        .expect_err("bob may not land acme events");
    assert_eq!(status_code(&error), Code::PermissionDenied, "{error}");
    assert!(error.to_string().contains("globex"), "{error}");
    let no_account = acme_batch
        .project(&[0, 2, 3, 4, 5, 6])
        .expect("without account_id");
    let landed = bob
        .execute_ingest(
            append("events"),
            futures::stream::iter([Ok(no_account.clone())]),
        )
        .await
        .expect("bob lands events without an account");
    assert_eq!(landed, 10);
    // The same upload by alice is her own ingest (not "already landed" because bob sent it).
    let landed = alice
        .execute_ingest(append("events"), futures::stream::iter([Ok(no_account)]))
        .await
        .expect("alice lands the same rows for acme");
    assert_eq!(landed, 10);
    let tenant_user = "SELECT count(*) AS n FROM events WHERE user_id = 'tenant-user'";
    assert_eq!(count(&mut alice, tenant_user).await, 20);
    assert_eq!(count(&mut bob, tenant_user).await, 10);
    assert_eq!(count(&mut root, tenant_user).await, 30);
}
