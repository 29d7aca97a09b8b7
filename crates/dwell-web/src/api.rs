//! The JSON API (documented in the crate docs): fixed read-only SQL over the views, request
//! values as parameters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use dwell_engine::Scope;
use serde_json::{Map, Value, json};

use crate::{App, Caller, json};

/// Most users listed per segment.
const USERS_PER_SEGMENT: usize = 100;
/// Most sessions of one user in a drill-down.
const MAX_USER_SESSIONS: usize = 1_000;
/// Lower edges of the duration buckets, in seconds; the last bucket is open.
const DURATION_EDGES: [(f64, &str); 11] = [
    (0.0, "< 10 s"),
    (10.0, "10–30 s"),
    (30.0, "30 s–1 min"),
    (60.0, "1–2 min"),
    (120.0, "2–5 min"),
    (300.0, "5–10 min"),
    (600.0, "10–15 min"),
    (900.0, "15–30 min"),
    (1800.0, "30–60 min"),
    (3600.0, "1–2 h"),
    (7200.0, "≥ 2 h"),
];

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/{endpoint}", get(endpoint))
}

/// An answer that is not the data asked for.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<DataFusionError> for ApiError {
    fn from(e: DataFusionError) -> Self {
        let status = match e.find_root() {
            DataFusionError::ResourcesExhausted(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: format!("the query failed: {}", e.strip_backtrace()),
        }
    }
}

impl From<dwell_engine::Error> for ApiError {
    fn from(e: dwell_engine::Error) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

type Answer = Result<Value, ApiError>;

async fn endpoint(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let answer = async {
        let extra: &[&str] = match name.as_str() {
            "segments" => &["attribute"],
            "user" => &["user_id"],
            "context" | "summary" | "daily" | "applications" | "durations" => &[],
            _ => {
                return Err(ApiError {
                    status: StatusCode::NOT_FOUND,
                    message: format!(
                        "no endpoint /api/{name}: there are context, summary, daily, \
                         applications, durations, segments and user"
                    ),
                });
            }
        };
        let request = Request::parse(&query, extra, &caller)?;
        let ctx = app.engine.context_for(&caller.scope).await?;
        let settings = app.engine.settings();
        match name.as_str() {
            "context" => context(&ctx, &caller, &request).await,
            "summary" => summary(&ctx, &request).await,
            "daily" => daily(&ctx, &request).await,
            "applications" => applications(&ctx, &request).await,
            "durations" => durations(&ctx, &request).await,
            "segments" => segments(&ctx, &settings, &request).await,
            _ => user(&ctx, &request).await,
        }
    };
    match answer.await {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The filters and other parameters of one request.
#[derive(Debug)]
struct Request {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    account: Option<String>,
    app: Option<String>,
    extra: BTreeMap<String, String>,
}

impl Request {
    fn parse(
        query: &[(String, String)],
        extra: &[&str],
        caller: &Caller,
    ) -> Result<Self, ApiError> {
        let mut seen = BTreeMap::new();
        for (key, value) in query {
            let known = ["from", "to", "account", "app"].contains(&key.as_str())
                || extra.contains(&key.as_str());
            if !known {
                let mut allowed = vec!["from", "to", "account", "app"];
                allowed.extend(extra);
                return Err(ApiError::bad(format!(
                    "unknown parameter {key:?}: this endpoint takes {}",
                    allowed.join(", ")
                )));
            }
            if seen.insert(key.clone(), value.clone()).is_some() {
                return Err(ApiError::bad(format!("parameter {key:?} is given twice")));
            }
        }
        // An empty value is the same as no value: a form's "all" choice.
        let mut take = |key: &str| seen.remove(key).filter(|v| !v.is_empty());
        let date = |key: &str, value: Option<String>| {
            value
                .map(|text| {
                    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
                        ApiError::bad(format!("{key}={text:?} is not a date such as 2026-11-02"))
                    })
                })
                .transpose()
        };
        let from = date("from", take("from"))?;
        let to = date("to", take("to"))?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(ApiError::bad(format!("from={from} is after to={to}")));
        }
        let account = take("account");
        if let (Scope::Account(own), Some(asked)) = (&caller.scope, &account)
            && own != asked
        {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!("{} may see account {own:?} only", caller.name),
            });
        }
        let app = take("app");
        Ok(Request {
            from,
            to,
            account,
            app,
            extra: seen.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        })
    }
}

/// SQL text with its `$n` parameters.
#[derive(Debug, Default)]
struct Sql {
    params: Vec<ScalarValue>,
}

impl Sql {
    fn param(&mut self, value: ScalarValue) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// The `WHERE` condition of the request's filters over `sessions` columns.
    fn filters(&mut self, request: &Request) -> String {
        let mut conditions = vec!["TRUE".to_owned()];
        let days = |date: NaiveDate| {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
            ScalarValue::Date32(Some((date - epoch).num_days() as i32))
        };
        if let Some(from) = request.from {
            conditions.push(format!("day >= {}", self.param(days(from))));
        }
        if let Some(to) = request.to {
            conditions.push(format!("day <= {}", self.param(days(to))));
        }
        if let Some(account) = &request.account {
            let p = self.param(ScalarValue::Utf8(Some(account.clone())));
            conditions.push(format!("account_id = {p}"));
        }
        if let Some(app) = &request.app {
            let p = self.param(ScalarValue::Utf8(Some(app.clone())));
            conditions.push(format!("CAST(app_id AS VARCHAR) = {p}"));
        }
        conditions.join(" AND ")
    }

    /// `(SELECT * FROM sessions WHERE <filters>)`.
    fn filtered_sessions(&mut self, request: &Request) -> String {
        format!("(SELECT * FROM sessions WHERE {})", self.filters(request))
    }

    async fn rows(
        self,
        ctx: &SessionContext,
        sql: &str,
    ) -> Result<Vec<Map<String, Value>>, ApiError> {
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let mut frame = ctx.sql_with_options(sql, read_only).await?;
        if !self.params.is_empty() {
            frame = frame.with_param_values(self.params)?;
        }
        Ok(json::rows(&frame.collect().await?)?)
    }
}

fn strings(rows: Vec<Map<String, Value>>, column: &str) -> Vec<Value> {
    rows.into_iter()
        .filter_map(|mut row| row.remove(column))
        .collect()
}

async fn context(ctx: &SessionContext, caller: &Caller, request: &Request) -> Answer {
    let accounts = match &caller.scope {
        Scope::Account(own) => vec![Value::String(own.clone())],
        Scope::All => strings(
            Sql::default()
                .rows(
                    ctx,
                    "SELECT DISTINCT account_id FROM sessions WHERE account_id IS NOT NULL \
                     ORDER BY account_id",
                )
                .await?,
            "account_id",
        ),
    };
    let mut sql = Sql::default();
    let only_account = Request {
        from: None,
        to: None,
        account: request.account.clone(),
        app: None,
        extra: BTreeMap::new(),
    };
    let filters = sql.filters(&only_account);
    let applications = strings(
        sql.rows(
            ctx,
            &format!(
                "SELECT DISTINCT CAST(app_id AS VARCHAR) AS app_id FROM sessions \
                 WHERE app_id IS NOT NULL AND {filters} ORDER BY app_id"
            ),
        )
        .await?,
        "app_id",
    );
    let mut sql = Sql::default();
    let filters = sql.filters(&only_account);
    let span = sql
        .rows(
            ctx,
            &format!(
                "SELECT min(day) AS first_day, max(day) AS last_day FROM sessions WHERE {filters}"
            ),
        )
        .await?
        .pop()
        .unwrap_or_default();
    Ok(json!({
        "caller": caller.name,
        "account": match &caller.scope { Scope::All => Value::Null, Scope::Account(a) => Value::String(a.clone()) },
        "accounts": accounts,
        "applications": applications,
        "first_day": span.get("first_day").cloned().unwrap_or(Value::Null),
        "last_day": span.get("last_day").cloned().unwrap_or(Value::Null),
        "attributes": attributes(ctx).await?.into_iter().map(|(name, _)| name).collect::<Vec<_>>(),
    }))
}

/// The text columns of `users` a segment can be split by, and whether `users` has an
/// `account_id` to join on.
async fn attributes(ctx: &SessionContext) -> Result<Vec<(String, bool)>, ApiError> {
    if !ctx.table_exist("users")? {
        return Ok(Vec::new());
    }
    let schema = ctx.table("users").await?.schema().as_arrow().clone();
    if schema.field_with_name("user_id").is_err() {
        return Ok(Vec::new());
    }
    let by_account = schema.field_with_name("account_id").is_ok();
    Ok(schema
        .fields()
        .iter()
        .filter(|f| !["user_id", "account_id"].contains(&f.name().as_str()))
        .filter(|f| {
            use arrow::datatypes::DataType;
            match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
                DataType::Dictionary(_, value) => matches!(
                    **value,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ),
                _ => false,
            }
        })
        .map(|f| (f.name().clone(), by_account))
        .collect())
}

/// Per-user counts of the filtered sessions, grouped again by `key` (empty: one row).
fn per_user_grouped(sql: &mut Sql, request: &Request, key: &str) -> String {
    let filters = sql.filters(request);
    let (select, group, order) = if key.is_empty() {
        (String::new(), String::new(), String::new())
    } else {
        (
            format!("{key}, "),
            format!(" GROUP BY {key}"),
            format!(" ORDER BY {key}"),
        )
    };
    let inner_key = if key.is_empty() {
        String::new()
    } else if key == "app_id" {
        "CAST(app_id AS VARCHAR) AS app_id, ".to_owned()
    } else {
        format!("{key}, ")
    };
    let inner_group = if key.is_empty() {
        String::new()
    } else {
        format!("{key}, ")
    };
    format!(
        "SELECT {select}coalesce(sum(n), 0) AS sessions, count(*) AS users,
       coalesce(sum(t), 0.0) AS total_session_seconds,
       sum(t) / sum(n) AS avg_session_seconds
FROM (SELECT {inner_key}account_id, user_id, count(*) AS n, sum(duration_seconds) AS t
      FROM sessions WHERE {filters}
      GROUP BY {inner_group}account_id, user_id){group}{order}"
    )
}

async fn summary(ctx: &SessionContext, request: &Request) -> Answer {
    let mut sql = Sql::default();
    let text = per_user_grouped(&mut sql, request, "");
    let row = sql.rows(ctx, &text).await?.pop().unwrap_or_default();
    Ok(Value::Object(row))
}

async fn daily(ctx: &SessionContext, request: &Request) -> Answer {
    let mut sql = Sql::default();
    let text = per_user_grouped(&mut sql, request, "day");
    Ok(json!({ "rows": sql.rows(ctx, &text).await? }))
}

async fn applications(ctx: &SessionContext, request: &Request) -> Answer {
    let mut sql = Sql::default();
    let text = per_user_grouped(&mut sql, request, "app_id");
    Ok(json!({ "rows": sql.rows(ctx, &text).await? }))
}

async fn durations(ctx: &SessionContext, request: &Request) -> Answer {
    let mut sql = Sql::default();
    let filters = sql.filters(request);
    let mut case = "CASE".to_owned();
    for (i, (lower, _)) in DURATION_EDGES.iter().enumerate().skip(1) {
        write!(case, " WHEN duration_seconds < {lower:?} THEN {}", i - 1).expect("string");
    }
    write!(case, " ELSE {} END", DURATION_EDGES.len() - 1).expect("string");
    let counts = sql
        .rows(
            ctx,
            &format!(
                "SELECT {case} AS bucket, count(*) AS sessions FROM sessions WHERE {filters} \
                 GROUP BY 1"
            ),
        )
        .await?;
    let mut sessions = [0u64; DURATION_EDGES.len()];
    for row in counts {
        let bucket = row.get("bucket").and_then(Value::as_u64);
        let count = row.get("sessions").and_then(Value::as_u64);
        if let (Some(bucket), Some(count)) = (bucket, count) {
            sessions[bucket as usize] = count;
        }
    }
    let buckets: Vec<Value> = DURATION_EDGES
        .iter()
        .enumerate()
        .map(|(i, (lower, label))| {
            json!({
                "label": label,
                "lower_seconds": lower,
                "upper_seconds": DURATION_EDGES.get(i + 1).map(|(upper, _)| upper),
                "sessions": sessions[i],
            })
        })
        .collect();
    Ok(json!({ "buckets": buckets }))
}

/// Double quotes for an identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn segments(
    ctx: &SessionContext,
    settings: &dwell_engine::Settings,
    request: &Request,
) -> Answer {
    let attribute = match request.extra.get("attribute") {
        None => None,
        Some(name) => {
            let known = attributes(ctx).await?;
            let Some(found) = known.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ApiError::bad(format!(
                    "attribute={name:?} is not a text column of users (there are: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )));
            };
            Some(found.clone())
        }
    };
    let mut sql = Sql::default();
    let filtered = sql.filtered_sessions(request);
    let segments = dwell_engine::segments_over(settings, &filtered);
    // One pass: every user's segment (and attribute); counts, lists and the split come from
    // it, so the three always agree.
    let text = match &attribute {
        None => format!("SELECT *, CAST(NULL AS VARCHAR) AS attribute FROM ({segments})"),
        Some((name, by_account)) => {
            let column = quoted(name);
            let (keys, join) = if *by_account {
                (
                    "account_id, user_id",
                    "u.user_id = s.user_id AND u.account_id IS NOT DISTINCT FROM s.account_id",
                )
            } else {
                ("user_id", "u.user_id = s.user_id")
            };
            format!(
                "SELECT s.*, u.attribute FROM ({segments}) s
LEFT JOIN (SELECT {keys}, max(CAST({column} AS VARCHAR)) AS attribute FROM users
           GROUP BY {keys}) u ON {join}"
            )
        }
    };
    let mut users = sql.rows(ctx, &text).await?;
    let number =
        |row: &Map<String, Value>, key: &str| row.get(key).and_then(Value::as_u64).unwrap_or(0);
    let text_of = |row: &Map<String, Value>, key: &str| {
        row.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut counts: BTreeMap<String, (u64, u64)> = ["disengaged", "engaged", "struggling"]
        .into_iter()
        .map(|s| (s.to_owned(), (0, 0)))
        .collect();
    let mut split: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in &users {
        let segment = text_of(row, "segment");
        let count = counts.entry(segment.clone()).or_default();
        count.0 += 1;
        count.1 += number(row, "sessions");
        if attribute.is_some() {
            let value = row
                .get("attribute")
                .and_then(Value::as_str)
                .unwrap_or("(not in users)")
                .to_owned();
            *split.entry((value, segment)).or_default() += 1;
        }
    }
    users.sort_by(|a, b| {
        text_of(a, "segment")
            .cmp(&text_of(b, "segment"))
            .then(number(b, "sessions").cmp(&number(a, "sessions")))
            .then(text_of(a, "account_id").cmp(&text_of(b, "account_id")))
            .then(text_of(a, "user_id").cmp(&text_of(b, "user_id")))
    });
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    users.retain_mut(|row| {
        row.remove("attribute");
        let n = listed.entry(text_of(row, "segment")).or_default();
        *n += 1;
        *n <= USERS_PER_SEGMENT
    });
    let by_attribute = attribute.map(|(name, _)| {
        json!({
            "attribute": name,
            "rows": split.into_iter().map(|((value, segment), users)| {
                json!({ "value": value, "segment": segment, "users": users })
            }).collect::<Vec<_>>(),
        })
    });
    Ok(json!({
        "counts": counts.into_iter().map(|(segment, (users, sessions))| {
            json!({ "segment": segment, "users": users, "sessions": sessions })
        }).collect::<Vec<_>>(),
        "users": users,
        "by_attribute": by_attribute,
    }))
}

async fn user(ctx: &SessionContext, request: &Request) -> Answer {
    let Some(user_id) = request.extra.get("user_id") else {
        return Err(ApiError::bad("give user_id=..."));
    };
    let mut sql = Sql::default();
    let filters = sql.filters(request);
    let p = sql.param(ScalarValue::Utf8(Some(user_id.clone())));
    let mut sessions = sql
        .rows(
            ctx,
            &format!(
                "SELECT session_id, account_id, CAST(app_id AS VARCHAR) AS app_id,
       CAST(tab_id AS VARCHAR) AS tab_id, session_seq, start_time, end_time,
       CAST(arrow_cast(start_time, 'Timestamp(Millisecond, Some(\"UTC\"))') AS BIGINT) AS start_ms,
       CAST(arrow_cast(end_time, 'Timestamp(Millisecond, Some(\"UTC\"))') AS BIGINT) AS end_ms,
       duration_seconds, event_count, page_views, user_actions, content_engagements, end_reason
FROM sessions WHERE user_id = {p} AND {filters}
ORDER BY start_time, account_id, session_seq
LIMIT {}",
                MAX_USER_SESSIONS + 1
            ),
        )
        .await?;
    let truncated = sessions.len() > MAX_USER_SESSIONS;
    sessions.truncate(MAX_USER_SESSIONS);
    Ok(json!({ "user_id": user_id, "sessions": sessions, "truncated": truncated }))
}
