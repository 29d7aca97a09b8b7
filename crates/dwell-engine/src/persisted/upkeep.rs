//! What one commit changes in the persisted sessions: the sessions of the users its events
//! touch, recomputed from the session before their earliest new event, and the end reasons
//! that the accounts' newest events move.
//!
//! Why recomputing from a session start gives what a full recompute gives (SESSIONS.md §2-4):
//! the restart session `S` is the last one of the user starting before the earliest new event,
//! moved back while the session before it ends at `S`'s first instant, so no earlier event
//! shares that instant. Every new event is later than `S`'s first event, so the boundary before
//! `S` (which depends on that event, the one before it and their session's start only) still
//! holds, `S` still starts at the same event, with the same id (no earlier event shares its
//! time), and every session before `S` is unchanged. From `S` on, the walk is the same walk as a
//! full one given the same events, numbered after `S`'s predecessors. The one state that
//! crosses `S` is duplicate detection: an event from `S` on whose `event_id` an earlier event
//! of the user already carries is a duplicate (the earlier comes first in timeline order), so
//! such events are dropped before the walk. The end reason of a user's last session depends on
//! the account's newest event: it is evaluated here against the newest after the commit, and
//! the last sessions of untouched users whose reason that moves are rewritten too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt32Array,
};
use arrow::compute::kernels::boolean::and;
use arrow::compute::kernels::cmp::not_distinct;
use arrow::compute::{cast, concat_batches, filter_record_batch, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampNanosecondType};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::catalog::create_views;
use crate::context::ContextFactory;
use crate::error::{Error, Result};
use crate::events;
use crate::settings::Settings;
use crate::views::literal;

use super::live::{LiveRowFilter, RetractedRows};

/// A user: (account, user id).
pub(crate) type UserKey = (Option<String>, String);

/// The columns of `sessions` (SESSIONS.md §4), in order: what a change log row carries and
/// what two versions of a session are compared on.
pub(crate) const SESSION_COLUMNS: [&str; 16] = [
    "session_id",
    "account_id",
    "user_id",
    "app_id",
    "tab_id",
    "session_seq",
    "start_time",
    "end_time",
    "duration_seconds",
    "event_count",
    "page_views",
    "user_actions",
    "content_engagements",
    "end_reason",
    "timeout_seconds",
    "day",
];

/// The stored form's own columns after the session's: whether the end reason follows the
/// account's newest event, which version of the row this is and its place in it, insert or
/// retract, and the commit that wrote it.
const PENDING: &str = "pending_end";
pub(crate) const ROW_VERSION: &str = "row_version";
/// The row's position among the rows its version wrote: with `row_version`, the row's key
/// (see [`super::live`]).
pub(crate) const ROW_INDEX: &str = "row_index";
const OP: &str = "op";
const COMMIT_SEQ: &str = "commit_seq";
const COMMIT_TIME: &str = "commit_time";
/// The upkeep's own column over live rows: whether the row's user is touched by the commit.
const TOUCHED: &str = "_dwell_is_touched";

/// What is recomputed.
#[derive(Debug)]
pub(crate) enum Scope {
    /// Everything, from all events.
    Full,
    /// These users, each from its session before its earliest new event (ns).
    Users(HashMap<UserKey, i64>),
}

/// A commit's outcome.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// After a full recompute: the live sessions, whole.
    pub base: Option<RecordBatch>,
    /// Retracted and inserted rows (the change log's rows of this commit).
    pub delta: RecordBatch,
    /// Users recomputed.
    pub users: usize,
}

/// The inputs: a context with `events` (every event the commit makes visible) and, when
/// sessions are persisted, `_dwell_session_rows`; the settings; the commit.
pub(crate) struct Upkeep<'a> {
    pub ctx: &'a SessionContext,
    pub contexts: &'a ContextFactory,
    pub settings: &'a Settings,
    pub seq: u64,
    pub time_ns: i64,
    /// Every event file follows dwell's layout (a `date=D` folder holds day D's events, UTC), so
    /// the `date` column may prune.
    pub dated: bool,
    pub has_rows: bool,
    pub retractions: Retractions,
}

/// What retractions the rows hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retractions {
    None,
    /// By key (see [`live_rows`]).
    ByKey,
    /// Rows of the first stored form, whose retractions name rows by session id (see
    /// [`live_rows_by_session_id`]).
    BySessionId,
}

/// The stored form of sessions: [`SESSION_COLUMNS`] as `sessions` gives them (strings as
/// `Utf8`), then the stored form's own.
pub(crate) async fn storage_schema(
    contexts: &ContextFactory,
    ctx: &SessionContext,
    settings: &Settings,
) -> Result<SchemaRef> {
    let scratch = contexts.local_sibling_of(ctx)?;
    let empty = MemTable::try_new(
        Arc::new(events::events_schema(&DataType::Utf8)),
        vec![vec![]],
    )?;
    scratch.register_table("events", Arc::new(empty))?;
    create_views(&scratch, settings).await?;
    let sessions = scratch.table("sessions").await?;
    let mut fields: Vec<Field> = SESSION_COLUMNS
        .iter()
        .map(|name| {
            let field = sessions.schema().field_with_unqualified_name(name)?;
            let data_type = match field.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                other => other.clone(),
            };
            Ok(Field::new(*name, data_type, true))
        })
        .collect::<datafusion::error::Result<_>>()?;
    fields.push(Field::new(PENDING, DataType::Boolean, false));
    fields.push(Field::new(ROW_VERSION, DataType::Int64, false));
    fields.push(Field::new(ROW_INDEX, DataType::Int64, false));
    fields.push(Field::new(OP, DataType::Utf8, false));
    fields.push(Field::new(COMMIT_SEQ, DataType::Int64, false));
    fields.push(Field::new(COMMIT_TIME, events::event_time_type(), false));
    Ok(Arc::new(Schema::new(fields)))
}

/// The live rows of `table` (a table of the stored form) given the keys of its retractions:
/// its rows less those whose key a retraction carries, the retractions themselves included.
pub(crate) async fn live_rows(
    ctx: &SessionContext,
    table: &str,
    retracted: RetractedRows,
) -> Result<datafusion::prelude::DataFrame> {
    let rows = ctx.table(table).await?;
    Ok(match LiveRowFilter::predicate(retracted) {
        Some(live) => rows.filter(live)?,
        None => rows,
    })
}

/// The live rows of `table` in the first stored form (before `row_index`), whose retractions
/// name the retracted row by `(row_version, session_id)`: its inserts less the retracted,
/// with `row_index` 0 (only a full recompute reads these rows, to find what it changes). One
/// filter (an `IN` list per version), no join: hash anti joins were seen never to finish in
/// processes that run Ballista.
async fn live_rows_by_session_id(
    ctx: &SessionContext,
    table: &str,
) -> Result<datafusion::prelude::DataFrame> {
    use datafusion::prelude::{col, lit};
    let batches = ctx
        .sql(&format!(
            "SELECT {ROW_VERSION}, session_id FROM {table} WHERE {OP} = 'retract'"
        ))
        .await?
        .collect()
        .await?;
    let mut by_version: BTreeMap<i64, Vec<datafusion::logical_expr::Expr>> = BTreeMap::new();
    for batch in &batches {
        let versions = cast(batch.column(0), &DataType::Int64)?;
        let versions = versions.as_primitive::<arrow::datatypes::Int64Type>();
        let ids = strings(batch.column(1))?;
        for row in 0..batch.num_rows() {
            by_version
                .entry(versions.value(row))
                .or_default()
                .push(lit(ids.value(row)));
        }
    }
    let gone = by_version.into_iter().fold(None, |so_far, (version, ids)| {
        let these = col(ROW_VERSION)
            .eq(lit(version))
            .and(col("session_id").in_list(ids, false));
        Some(match so_far {
            None => these,
            Some(other) => datafusion::logical_expr::Expr::or(other, these),
        })
    });
    let mut keep = col(OP).eq(lit("insert"));
    if let Some(gone) = gone {
        keep = keep.and(std::ops::Not::not(gone));
    }
    let live = ctx.table(table).await?.filter(keep)?;
    if live.schema().has_column_with_unqualified_name(ROW_INDEX) {
        Ok(live)
    } else {
        Ok(live.with_column(ROW_INDEX, lit(0i64))?)
    }
}

/// The retractions `table` holds, as `(account_id, row_version, row_index)`, read in `ctx`
/// (which runs here).
pub(crate) async fn retractions_of(
    ctx: &SessionContext,
    table: &str,
) -> Result<Vec<(Option<String>, i64, i64)>> {
    let batches = ctx
        .sql(&format!(
            "SELECT account_id, {ROW_VERSION}, {ROW_INDEX} FROM {table} WHERE {OP} = 'retract'"
        ))
        .await?
        .collect()
        .await?;
    let mut keys = Vec::new();
    for batch in &batches {
        let accounts = strings(batch.column(0))?;
        let versions = cast(batch.column(1), &DataType::Int64)?;
        let versions = versions.as_primitive::<arrow::datatypes::Int64Type>();
        let indices = cast(batch.column(2), &DataType::Int64)?;
        let indices = indices.as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            keys.push((
                optional(&accounts, row),
                versions.value(row),
                indices.value(row),
            ));
        }
    }
    Ok(keys)
}

/// The keys of the retractions `table` holds, of every account.
pub(crate) async fn retracted_in(ctx: &SessionContext, table: &str) -> Result<RetractedRows> {
    let keys = retractions_of(ctx, table).await?;
    Ok(RetractedRows::from_keys(
        keys.into_iter().map(|(_, version, index)| (version, index)),
    ))
}

impl Upkeep<'_> {
    pub(crate) async fn run(&self, scope: Scope) -> Result<Outcome> {
        let schema = storage_schema(self.contexts, self.ctx, self.settings).await?;
        if self.has_rows {
            let live = match self.retractions {
                Retractions::BySessionId => {
                    live_rows_by_session_id(self.ctx, super::ROWS_TABLE).await?
                }
                Retractions::ByKey => {
                    let retracted = retracted_in(self.ctx, super::ROWS_TABLE).await?;
                    live_rows(self.ctx, super::ROWS_TABLE, retracted).await?
                }
                Retractions::None => {
                    live_rows(self.ctx, super::ROWS_TABLE, RetractedRows::default()).await?
                }
            };
            self.ctx.deregister_table("_dwell_live")?;
            self.ctx.register_table("_dwell_live", live.into_view())?;
        }
        match scope {
            Scope::Full => self.full(&schema).await,
            Scope::Users(users) => {
                if self.has_rows {
                    self.users(&schema, users).await
                } else {
                    self.full(&schema).await
                }
            }
        }
    }

    async fn full(&self, schema: &SchemaRef) -> Result<Outcome> {
        let began = std::time::Instant::now();
        let events = self.ctx.table_provider("events").await?;
        let computed = self.sessions_over(events).await?;
        step(
            began,
            format_args!("all {} sessions recomputed", computed.num_rows()),
        );
        // Over all events, the view's end reasons are final.
        let new = self.stored(schema, &computed, &HashMap::new(), None)?;
        let old = if self.has_rows {
            self.collect(schema, "SELECT * FROM _dwell_live").await?
        } else {
            RecordBatch::new_empty(Arc::clone(schema))
        };
        step(began, format_args!("{} live rows read", old.num_rows()));
        let users = distinct_users(&new)?;
        let delta = self.delta(schema, &old, &new)?;
        step(
            began,
            format_args!("{} change rows found", delta.num_rows()),
        );
        Ok(Outcome {
            base: Some(new),
            delta,
            users,
        })
    }

    async fn users(&self, schema: &SchemaRef, users: HashMap<UserKey, i64>) -> Result<Outcome> {
        let began = std::time::Instant::now();
        // The live rows are read twice, each over the whole base: the touched users' rows and
        // the untouched users' pending ones (all columns) in one scan, then the newest end per
        // account (two columns).
        self.ctx.deregister_table("_dwell_touched")?;
        self.ctx
            .register_table("_dwell_touched", touched_table(&users)?)?;
        let (touched_rows, pending) = self.touched_and_pending(schema).await?;
        let touched_keys = user_keys(&touched_rows)?;
        let restarts = restarts(&users, &touched_rows, &touched_keys)?;
        self.ctx.deregister_table("_dwell_restart")?;
        self.ctx
            .register_table("_dwell_restart", restart_table(&restarts)?)?;
        step(
            began,
            format_args!("{} touched users' live rows read", users.len()),
        );
        let window = self.window_events().await?;
        step(began, format_args!("their events read"));
        let computed = self.sessions_over(window).await?;
        step(
            began,
            format_args!("{} sessions recomputed", computed.num_rows()),
        );
        let offsets: HashMap<UserKey, i64> = restarts
            .iter()
            .map(|(user, restart)| (user.clone(), restart.map_or(0, |(_, offset)| offset)))
            .collect();
        let (replaced, touched_ends) = replaced(&touched_rows, &touched_keys, &restarts)?;
        let newest = self.newest(&touched_ends, &computed).await?;
        let new = self.stored(schema, &computed, &offsets, Some(&newest))?;
        // Untouched users' last sessions whose end reason the new newest events move.
        let (moved_old, moved_new) = self.moved(schema, &pending, &newest)?;
        step(began, format_args!("end reasons moved"));
        let old = concat_batches(schema, [&replaced, &moved_old])?;
        let new = numbered(&concat_batches(schema, [&new, &moved_new])?)?;
        let delta = self.delta(schema, &old, &new)?;
        Ok(Outcome {
            base: None,
            delta,
            users: restarts.len(),
        })
    }

    /// The live rows of the touched users, and the pending rows (last sessions whose end
    /// reason follows the account's newest event) of the others: one scan of the base.
    async fn touched_and_pending(&self, schema: &SchemaRef) -> Result<(RecordBatch, RecordBatch)> {
        let sql = format!(
            "SELECT l.*, t.user_id IS NOT NULL AS {TOUCHED} FROM _dwell_live l
             LEFT JOIN _dwell_touched t
               ON (l.account_id IS NOT DISTINCT FROM t.account_id) AND l.user_id = t.user_id
             WHERE t.user_id IS NOT NULL OR l.{PENDING}"
        );
        let (mut touched, mut pending) = (Vec::new(), Vec::new());
        for batch in &self.run_sql(&sql).await? {
            let is_touched = column(batch, TOUCHED)?.as_boolean();
            touched.push(conform(&filter_record_batch(batch, is_touched)?, schema)?);
            let others = arrow::compute::not(is_touched)?;
            pending.push(conform(&filter_record_batch(batch, &others)?, schema)?);
        }
        Ok((
            concat_batches(schema, &touched)?,
            concat_batches(schema, &pending)?,
        ))
    }

    /// Each account's newest event after the commit: the newest end of the sessions that stay
    /// and of the recomputed ones. `touched` holds, per account, the newest end of the touched
    /// users' live rows and of those of them that stay. The newest end `all` of every live row
    /// bounds the untouched users' newest, so when the rows that stay or the recomputed ones
    /// reach `all`, or an untouched user holds it (the touched users' rows end before it), the
    /// answer is known; only otherwise (a recompute that dropped a duplicate which ended the
    /// account's newest session) are the untouched users' rows read again.
    async fn newest(
        &self,
        touched: &HashMap<Option<String>, TouchedEnds>,
        computed: &RecordBatch,
    ) -> Result<HashMap<Option<String>, i64>> {
        let mut recomputed: HashMap<Option<String>, i64> = HashMap::new();
        let accounts = strings(column(computed, "account_id")?)?;
        let ends = nanos(column(computed, "end_time")?)?;
        for row in 0..computed.num_rows() {
            bump(&mut recomputed, optional(&accounts, row), ends.value(row));
        }
        let all = self
            .account_ends("SELECT account_id, max(end_time) FROM _dwell_live GROUP BY account_id")
            .await?;
        let mut newest = HashMap::new();
        let mut unknown = Vec::new();
        let mut accounts: BTreeSet<&Option<String>> = all.keys().collect();
        accounts.extend(recomputed.keys());
        for account in accounts {
            let own = touched.get(account);
            let known = own
                .and_then(|t| t.kept)
                .into_iter()
                .chain(recomputed.get(account).copied())
                .max();
            match (all.get(account).copied(), known) {
                (None, Some(known)) => {
                    newest.insert(account.clone(), known);
                }
                (Some(all), Some(known)) if known >= all => {
                    newest.insert(account.clone(), known);
                }
                (Some(all), _) if own.is_none_or(|t| t.all < all) => {
                    newest.insert(account.clone(), all);
                }
                (Some(_), _) => unknown.push(account.clone()),
                (None, None) => {}
            }
        }
        if !unknown.is_empty() {
            let untouched = self
                .account_ends(
                    "SELECT l.account_id, max(l.end_time) FROM _dwell_live l
                     LEFT JOIN _dwell_touched t
                       ON (l.account_id IS NOT DISTINCT FROM t.account_id) AND l.user_id = t.user_id
                     WHERE t.user_id IS NULL
                     GROUP BY l.account_id",
                )
                .await?;
            for account in unknown {
                let candidates = [
                    untouched.get(&account).copied(),
                    touched.get(&account).and_then(|t| t.kept),
                    recomputed.get(&account).copied(),
                ];
                if let Some(time) = candidates.into_iter().flatten().max() {
                    newest.insert(account, time);
                }
            }
        }
        Ok(newest)
    }

    /// The `(account_id, time)` rows of `sql`, as a map.
    async fn account_ends(&self, sql: &str) -> Result<HashMap<Option<String>, i64>> {
        let mut ends = HashMap::new();
        for batch in &self.run_sql(sql).await? {
            let accounts = strings(batch.column(0))?;
            let times = nanos(batch.column(1))?;
            for row in 0..batch.num_rows() {
                if times.is_valid(row) {
                    bump(&mut ends, optional(&accounts, row), times.value(row));
                }
            }
        }
        Ok(ends)
    }

    /// The touched users' events from their restarts on, less those whose `event_id` an
    /// earlier event of the user carries.
    async fn window_events(&self) -> Result<Arc<dyn TableProvider>> {
        let events = self.ctx.table_provider("events").await?;
        let schema = events.schema();
        let has = |c: &str| schema.field_with_name(c).is_ok();
        let account = crate::views::optional_column(&schema, "account_id");
        let event_id = crate::views::optional_column(&schema, "event_id");
        let same_user =
            format!("({account} IS NOT DISTINCT FROM r.account_id) AND e.user_id = r.user_id");
        // Day folders hold their UTC day's events only where dwell wrote every file.
        let (mut from_day, mut to_day) = (String::new(), String::new());
        if self.dated && has(crate::ingest::PARTITION_COLUMN) {
            let bounds = self
                .run_sql(
                    "SELECT bool_and(restart_time IS NOT NULL) AS all_restart,
                            CAST(min(restart_time) AS DATE) AS first_day,
                            CAST(max(restart_time) AS DATE) AS last_day
                     FROM _dwell_restart",
                )
                .await?;
            if let Some(batch) = bounds.first()
                && batch.num_rows() == 1
            {
                let all = batch.column(0).as_boolean();
                let days = cast(batch.column(1), &DataType::Utf8)?;
                let last = cast(batch.column(2), &DataType::Utf8)?;
                if all.is_valid(0) && all.value(0) && days.is_valid(0) {
                    from_day = format!(
                        " AND e.date >= DATE {}",
                        literal(days.as_string::<i32>().value(0))
                    );
                }
                if last.is_valid(0) {
                    to_day = format!(
                        " AND e.date <= DATE {}",
                        literal(last.as_string::<i32>().value(0))
                    );
                }
            }
        }
        let mut sql = format!(
            "WITH w AS (
  SELECT e.event_time, e.user_id, e.app_id, e.tab_id, e.event_type,
         {account} AS account_id, {event_id} AS event_id
  FROM events e JOIN _dwell_restart r ON {same_user}
  WHERE (r.restart_time IS NULL OR e.event_time >= r.restart_time){from_day}
)"
        );
        if has("event_id") {
            write!(
                sql,
                ",
earlier AS (
  SELECT {account} AS account_id, e.user_id, e.event_id
  FROM events e JOIN _dwell_restart r ON {same_user}
  WHERE r.restart_time IS NOT NULL AND e.event_time < r.restart_time
    AND e.event_id IS NOT NULL{to_day}
)
SELECT w.* FROM w LEFT JOIN earlier x
  ON (x.account_id IS NOT DISTINCT FROM w.account_id) AND x.user_id = w.user_id
     AND x.event_id = w.event_id
WHERE x.user_id IS NULL"
            )
            .expect("string");
        } else {
            sql.push_str("\nSELECT * FROM w");
        }
        let frame = self.ctx.sql(&sql).await.map_err(|e| in_upkeep(e, &sql))?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    /// The sessions of `events` by the views' own SQL, each with whether it is its user's last.
    async fn sessions_over(&self, events: Arc<dyn TableProvider>) -> Result<RecordBatch> {
        let scratch = self.contexts.local_sibling_of(self.ctx)?;
        scratch.register_table("events", events)?;
        create_views(&scratch, self.settings).await?;
        let frame = scratch
            .sql(
                "SELECT s.*, s.session_seq = max(s.session_seq)
                   OVER (PARTITION BY s.account_id, s.user_id) AS is_last
                 FROM sessions s",
            )
            .await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = in_order(frame).await?;
        Ok(concat_batches(&schema, &batches)?)
    }

    /// Computed sessions in the stored form: numbered after `offsets`, and with the end reason
    /// of a user's last session evaluated against `newest` when given.
    fn stored(
        &self,
        schema: &SchemaRef,
        computed: &RecordBatch,
        offsets: &HashMap<UserKey, i64>,
        newest: Option<&HashMap<Option<String>, i64>>,
    ) -> Result<RecordBatch> {
        let rows = computed.num_rows();
        let accounts = strings(column(computed, "account_id")?)?;
        let user_ids = strings(column(computed, "user_id")?)?;
        let seqs = cast(column(computed, "session_seq")?, &DataType::Int64)?;
        let seqs = seqs.as_primitive::<arrow::datatypes::Int64Type>();
        let last = column(computed, "is_last")?.as_boolean();
        let reasons = strings(column(computed, "end_reason")?)?;
        let ends = nanos(column(computed, "end_time")?)?;
        let timeouts = cast(column(computed, "timeout_seconds")?, &DataType::Float64)?;
        let timeouts = timeouts.as_primitive::<arrow::datatypes::Float64Type>();
        let mut seq_out = Vec::with_capacity(rows);
        let mut pending = Vec::with_capacity(rows);
        let mut reason_out = Vec::with_capacity(rows);
        for row in 0..rows {
            // A full recompute (no offsets, final reasons) needs no key per row: 2.3M string
            // copies at 10M events.
            let offset = if offsets.is_empty() {
                0
            } else {
                let user = (optional(&accounts, row), user_ids.value(row).to_owned());
                offsets.get(&user).copied().unwrap_or(0)
            };
            seq_out.push(seqs.value(row) + offset);
            let reason = reasons.value(row);
            let is_pending = last.value(row) && matches!(reason, "open" | "timeout");
            pending.push(is_pending);
            reason_out.push(match newest {
                Some(newest) if is_pending => self.reason(
                    newest[&optional(&accounts, row)],
                    ends.value(row),
                    timeouts.value(row),
                ),
                _ => reason,
            });
        }
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let values: ArrayRef = match field.name().as_str() {
                "session_seq" => cast(&Int64Array::from(seq_out.clone()), field.data_type())?,
                "end_reason" => Arc::new(StringArray::from(reason_out.clone())),
                PENDING => Arc::new(BooleanArray::from(pending.clone())),
                ROW_VERSION | COMMIT_SEQ => Arc::new(Int64Array::from(vec![self.seq_i64(); rows])),
                ROW_INDEX => positions(rows),
                OP => Arc::new(StringArray::from(vec!["insert"; rows])),
                COMMIT_TIME => commit_time(self.time_ns, rows),
                name => cast(column(computed, name)?, field.data_type())?,
            };
            columns.push(values);
        }
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }

    /// The end reason of a user's last session without a closing event (SESSIONS.md §3), as
    /// the `sessions` view computes it.
    fn reason(&self, newest: i64, end: i64, timeout_seconds: f64) -> &'static str {
        #[expect(
            clippy::cast_precision_loss,
            reason = "the view compares the gap as a DOUBLE too"
        )]
        let gap = newest.saturating_sub(end) as f64;
        let limit = timeout_seconds * 1e9;
        let splits = if self.settings.split_on_equal_gap {
            gap >= limit
        } else {
            gap > limit
        };
        if splits { "timeout" } else { "open" }
    }

    /// Of `pending` rows (last sessions of untouched users), those whose end reason differs
    /// under `newest`: as they are, and as they become.
    fn moved(
        &self,
        schema: &SchemaRef,
        pending: &RecordBatch,
        newest: &HashMap<Option<String>, i64>,
    ) -> Result<(RecordBatch, RecordBatch)> {
        let accounts = strings(column(pending, "account_id")?)?;
        let reasons = strings(column(pending, "end_reason")?)?;
        let ends = nanos(column(pending, "end_time")?)?;
        let timeouts = cast(column(pending, "timeout_seconds")?, &DataType::Float64)?;
        let timeouts = timeouts.as_primitive::<arrow::datatypes::Float64Type>();
        let mut keep = Vec::with_capacity(pending.num_rows());
        let mut reason_out = Vec::new();
        for row in 0..pending.num_rows() {
            let account = optional(&accounts, row);
            let now = newest
                .get(&account)
                .map(|newest| self.reason(*newest, ends.value(row), timeouts.value(row)));
            let moves = now.is_some_and(|now| now != reasons.value(row));
            keep.push(moves);
            if let (true, Some(now)) = (moves, now) {
                reason_out.push(now);
            }
        }
        let old = filter_record_batch(pending, &BooleanArray::from(keep))?;
        let rows = old.num_rows();
        let mut columns = old.columns().to_vec();
        for (i, field) in schema.fields().iter().enumerate() {
            match field.name().as_str() {
                "end_reason" => columns[i] = Arc::new(StringArray::from(reason_out.clone())),
                ROW_VERSION | COMMIT_SEQ => {
                    columns[i] = Arc::new(Int64Array::from(vec![self.seq_i64(); rows]));
                }
                COMMIT_TIME => columns[i] = commit_time(self.time_ns, rows),
                _ => {}
            }
        }
        let new = RecordBatch::try_new(Arc::clone(schema), columns)?;
        Ok((old, new))
    }

    /// The change rows from `old` to `new` (each keyed by session id): a retraction of every
    /// old row that is gone or differs, an insertion of every new row that is new or differs.
    fn delta(
        &self,
        schema: &SchemaRef,
        old: &RecordBatch,
        new: &RecordBatch,
    ) -> Result<RecordBatch> {
        // Rows at the same position with the same id pair without hashing: a recompute
        // writes sessions in the order it computed them, so a rebuild that changes little
        // finds nearly every row where it was. The rest pair by id.
        let common = old.num_rows().min(new.num_rows());
        let (old_head, new_head) = (old.slice(0, common), new.slice(0, common));
        let in_place = not_distinct(old_head.column(0), new_head.column(0))?;
        let mut same_in_place = in_place.clone();
        for i in 1..SESSION_COLUMNS.len() {
            same_in_place = and(
                &same_in_place,
                &not_distinct(old_head.column(i), new_head.column(i))?,
            )?;
        }
        let moved_row = |row: usize| row >= common || !in_place.value(row);
        let old_ids = strings(old.column(0))?;
        let new_ids = strings(new.column(0))?;
        let mut by_id: HashMap<&str, u32, Xxh3DefaultBuilder> =
            HashMap::with_hasher(Xxh3DefaultBuilder);
        for row in (0..old.num_rows()).filter(|&row| moved_row(row)) {
            by_id.insert(old_ids.value(row), index(row)?);
        }
        // The moved rows of the same id, paired, then compared column by column (a full
        // recompute pairs every row: row-encoding all of them cost more than the rest of the
        // delta).
        let (mut old_at, mut new_at) = (Vec::new(), Vec::new());
        for row in (0..new.num_rows()).filter(|&row| moved_row(row)) {
            if let Some(&at) = by_id.get(new_ids.value(row)) {
                old_at.push(at);
                new_at.push(index(row)?);
            }
        }
        let (old_at, new_at) = (UInt32Array::from(old_at), UInt32Array::from(new_at));
        let mut same = BooleanArray::from(vec![true; old_at.len()]);
        for i in 0..SESSION_COLUMNS.len() {
            let before = take(old.column(i), &old_at, None)?;
            let after = take(new.column(i), &new_at, None)?;
            same = and(&same, &not_distinct(&before, &after)?)?;
        }
        let mut unchanged_old = vec![false; old.num_rows()];
        let mut insert = vec![true; new.num_rows()];
        for (row, equal) in same_in_place.values().iter().enumerate() {
            if equal {
                unchanged_old[row] = true;
                insert[row] = false;
            }
        }
        for (pair, equal) in same.values().iter().enumerate() {
            if equal {
                unchanged_old[old_at.value(pair) as usize] = true;
                insert[new_at.value(pair) as usize] = false;
            }
        }
        let retract: BooleanArray = unchanged_old.iter().map(|u| Some(!u)).collect();
        let retracted = filter_record_batch(old, &retract)?;
        let rows = retracted.num_rows();
        let mut columns = retracted.columns().to_vec();
        for (i, field) in schema.fields().iter().enumerate() {
            match field.name().as_str() {
                OP => columns[i] = Arc::new(StringArray::from(vec!["retract"; rows])),
                COMMIT_SEQ => columns[i] = Arc::new(Int64Array::from(vec![self.seq_i64(); rows])),
                COMMIT_TIME => columns[i] = commit_time(self.time_ns, rows),
                _ => {}
            }
        }
        let retracted = RecordBatch::try_new(Arc::clone(schema), columns)?;
        let inserted = filter_record_batch(new, &BooleanArray::from(insert))?;
        Ok(concat_batches(schema, [&retracted, &inserted])?)
    }

    async fn collect(&self, schema: &SchemaRef, sql: &str) -> Result<RecordBatch> {
        let batches = self.run_sql(sql).await?;
        let batches = batches
            .iter()
            .map(|batch| conform(batch, schema))
            .collect::<Result<Vec<_>>>()?;
        Ok(concat_batches(schema, &batches)?)
    }

    /// Runs one of the upkeep's statements; its errors say which.
    async fn run_sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let frame = self.ctx.sql(sql).await.map_err(|e| in_upkeep(e, sql))?;
        in_order(frame).await.map_err(|e| in_upkeep(e, sql))
    }

    fn seq_i64(&self) -> i64 {
        i64::try_from(self.seq).unwrap_or(i64::MAX)
    }
}

/// The batches of `frame`, partition after partition: the same order on every run (`collect`
/// interleaves the partitions as they finish). A recompute then lists the sessions in the
/// order the last one wrote them, and `Upkeep::delta` pairs them by position.
async fn in_order(
    frame: datafusion::dataframe::DataFrame,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    Ok(frame
        .collect_partitioned()
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// An upkeep statement's error: internal (the statements are the engine's), with the SQL.
fn in_upkeep(e: datafusion::error::DataFusionError, sql: &str) -> Error {
    Error::DataFusion(e.context(format!("keeping the persisted sessions up to date: {sql}")))
}

/// `batch` with `schema`'s columns, by name, cast to its types.
pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| Ok(cast(column(batch, field.name())?, field.data_type())?))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("sessions upkeep: no column {name}")))
}

fn strings(values: &ArrayRef) -> Result<StringArray> {
    Ok(cast(values, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn nanos(values: &ArrayRef) -> Result<TimestampNanosecondArray> {
    Ok(cast(values, &events::event_time_type())?
        .as_primitive::<TimestampNanosecondType>()
        .clone())
}

fn optional(values: &StringArray, row: usize) -> Option<String> {
    values.is_valid(row).then(|| values.value(row).to_owned())
}

fn bump(newest: &mut HashMap<Option<String>, i64>, account: Option<String>, time: i64) {
    let entry = newest.entry(account).or_insert(time);
    *entry = (*entry).max(time);
}

/// A row number as a `take` index.
fn index(row: usize) -> Result<u32> {
    u32::try_from(row).map_err(|_| Error::Internal(format!("sessions upkeep: row {row} past u32")))
}

/// `0, 1, ...`: the `row_index` of a version's rows.
fn positions(rows: usize) -> ArrayRef {
    Arc::new((0..rows).map(|row| row as i64).collect::<Int64Array>())
}

/// `rows` (one version's new rows) with `row_index` their positions.
fn numbered(rows: &RecordBatch) -> Result<RecordBatch> {
    let at = rows.schema().index_of(ROW_INDEX)?;
    let mut columns = rows.columns().to_vec();
    columns[at] = positions(rows.num_rows());
    Ok(RecordBatch::try_new(rows.schema(), columns)?)
}

/// `rows` without `row_index`: the change log's form, which names rows by session id.
pub(crate) fn without_row_index(rows: &RecordBatch) -> RecordBatch {
    let mut rows = rows.clone();
    if let Ok(at) = rows.schema().index_of(ROW_INDEX) {
        rows.remove_column(at);
    }
    rows
}

fn commit_time(time_ns: i64, rows: usize) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(vec![time_ns; rows]).with_timezone("UTC"))
}

fn distinct_users(rows: &RecordBatch) -> Result<usize> {
    let accounts = strings(column(rows, "account_id")?)?;
    let users = strings(column(rows, "user_id")?)?;
    let mut seen = std::collections::HashSet::new();
    for row in 0..rows.num_rows() {
        seen.insert((optional(&accounts, row), users.value(row)));
    }
    Ok(seen.len())
}

/// Logs (at debug level, `DWELL_LOG=debug` in the CLI) how long an upkeep took to get here.
fn step(began: std::time::Instant, what: std::fmt::Arguments<'_>) {
    log::debug!(target: "dwell::upkeep", "{what}: {:?}", began.elapsed());
}

/// The newest end of a touched account's live rows: of all the touched users' rows, and of
/// those that stay (`None` when none does).
#[derive(Debug, Clone, Copy)]
struct TouchedEnds {
    all: i64,
    kept: Option<i64>,
}

/// Each touched user's restart, from its live rows: `None` to recompute all its sessions, else
/// the start of the restart session and the number of sessions before it.
fn restarts(
    users: &HashMap<UserKey, i64>,
    touched_rows: &RecordBatch,
    keys: &[UserKey],
) -> Result<BTreeMap<UserKey, Option<(i64, i64)>>> {
    let seqs = cast(column(touched_rows, "session_seq")?, &DataType::Int64)?;
    let seqs = seqs.as_primitive::<arrow::datatypes::Int64Type>();
    let starts = nanos(column(touched_rows, "start_time")?)?;
    let ends = nanos(column(touched_rows, "end_time")?)?;
    let mut sessions: HashMap<UserKey, Vec<(i64, i64, i64)>> = HashMap::new();
    for (row, user) in keys.iter().enumerate() {
        sessions.entry(user.clone()).or_default().push((
            seqs.value(row),
            starts.value(row),
            ends.value(row),
        ));
    }
    let mut restarts = BTreeMap::new();
    for (user, first_new) in users {
        let mut own = sessions.remove(user).unwrap_or_default();
        own.sort_unstable();
        // The last session starting before the first new event ...
        let mut at = own.iter().rposition(|&(_, start, _)| start < *first_new);
        // ... moved back while the session before it ends at its first instant.
        while let Some(i) = at {
            if i > 0 && own[i - 1].2 >= own[i].1 {
                at = Some(i - 1);
            } else {
                break;
            }
        }
        let restart = at.map(|i| (own[i].1, own[i].0 - 1));
        restarts.insert(user.clone(), restart);
    }
    Ok(restarts)
}

/// Of the touched users' live rows, those the recompute replaces (from the restart session
/// on), and per account the newest end of all of them and of those that stay.
fn replaced(
    touched_rows: &RecordBatch,
    keys: &[UserKey],
    restarts: &BTreeMap<UserKey, Option<(i64, i64)>>,
) -> Result<(RecordBatch, HashMap<Option<String>, TouchedEnds>)> {
    let seqs = cast(column(touched_rows, "session_seq")?, &DataType::Int64)?;
    let seqs = seqs.as_primitive::<arrow::datatypes::Int64Type>();
    let ends = nanos(column(touched_rows, "end_time")?)?;
    let mut is_replaced = Vec::with_capacity(touched_rows.num_rows());
    let mut by_account: HashMap<Option<String>, TouchedEnds> = HashMap::new();
    for (row, user) in keys.iter().enumerate() {
        let replaced = match restarts.get(user) {
            Some(Some((_, offset))) => seqs.value(row) > *offset,
            Some(None) | None => true,
        };
        is_replaced.push(replaced);
        let end = ends.value(row);
        let ends = by_account.entry(user.0.clone()).or_insert(TouchedEnds {
            all: end,
            kept: None,
        });
        ends.all = ends.all.max(end);
        if !replaced {
            ends.kept = Some(ends.kept.map_or(end, |kept| kept.max(end)));
        }
    }
    let rows = filter_record_batch(touched_rows, &BooleanArray::from(is_replaced))?;
    Ok((rows, by_account))
}

/// The rows of `rows` whose user is not in `users`.
/// The user of each of `rows` (rows of the stored form).
fn user_keys(rows: &RecordBatch) -> Result<Vec<UserKey>> {
    let accounts = strings(column(rows, "account_id")?)?;
    let user_ids = strings(column(rows, "user_id")?)?;
    Ok((0..rows.num_rows())
        .map(|row| (optional(&accounts, row), user_ids.value(row).to_owned()))
        .collect())
}

fn touched_table(users: &HashMap<UserKey, i64>) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, false),
    ]));
    let accounts: StringArray = users.keys().map(|(a, _)| a.as_deref()).collect();
    let ids: StringArray = users.keys().map(|(_, u)| Some(u.as_str())).collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(accounts), Arc::new(ids)])?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn restart_table(
    restarts: &BTreeMap<UserKey, Option<(i64, i64)>>,
) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("restart_time", events::event_time_type(), true),
        Field::new("seq_offset", DataType::Int64, false),
    ]));
    let accounts: StringArray = restarts.keys().map(|(a, _)| a.as_deref()).collect();
    let ids: StringArray = restarts.keys().map(|(_, u)| Some(u.as_str())).collect();
    let times = TimestampNanosecondArray::from(
        restarts
            .values()
            .map(|r| r.map(|(t, _)| t))
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    let offsets = Int64Array::from(
        restarts
            .values()
            .map(|r| r.map_or(0, |(_, o)| o))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(accounts),
            Arc::new(ids),
            Arc::new(times),
            Arc::new(offsets),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
