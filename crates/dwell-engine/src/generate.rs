//! Synthetic events that look like the real thing: bursts of activity, pauses around each
//! application's timeout, several tabs with switches, closes, several applications with their
//! own timeouts, accounts, and a `users` table. Deterministic per seed: every user draws from
//! its own generator seeded by (seed, user number), so the output does not depend on chunking.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampNanosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use object_store::{ObjectStoreExt as _, PutPayload};

use crate::Engine;
use crate::error::{Error, Result};
use crate::events;
use crate::ingest::{IngestId, IngestReport};
use crate::settings::SETTINGS_FILE;

/// Generated times are milliseconds; the events table holds nanoseconds.
const NANOS_PER_MILLI: i64 = 1_000_000;

/// Applications of the generated data and their timeouts (`None`: the default, 30 minutes).
pub const APPS: [(&str, Option<Duration>); 5] = [
    ("crm", Some(Duration::from_mins(10))),
    ("hr-portal", None),
    ("erp", Some(Duration::from_mins(15))),
    ("helpdesk", Some(Duration::from_mins(5))),
    ("analytics", Some(Duration::from_hours(1))),
];
const ACCOUNTS: [&str; 8] = [
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
];
const DEPARTMENTS: [&str; 6] = [
    "Sales",
    "Support",
    "Finance",
    "HR",
    "Engineering",
    "Operations",
];
const ROLES: [&str; 4] = ["agent", "manager", "analyst", "admin"];
const REGIONS: [&str; 3] = ["EMEA", "AMER", "APAC"];

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub events: u64,
    pub users: u64,
    pub days: u32,
    pub seed: u64,
    /// The first day of the data.
    pub start: NaiveDate,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            events: 100_000,
            users: 500,
            days: 14,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 11, 2).expect("valid date"),
        }
    }
}

/// How a user behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persona {
    Engaged,
    Struggling,
    Disengaged,
}

impl Persona {
    fn weight(self) -> f64 {
        match self {
            Persona::Engaged => 3.0,
            Persona::Struggling => 2.0,
            Persona::Disengaged => 0.15,
        }
    }
}

/// `SplitMix64`: small, fast and good enough for synthetic data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Exponential with the given mean.
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// One generated user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    index: u64,
    account: &'static str,
    name: String,
    persona: Persona,
}

pub(crate) fn users(options: &GenerateOptions) -> Vec<User> {
    let accounts = (options.users / 40).clamp(1, ACCOUNTS.len() as u64);
    (0..options.users)
        .map(|index| {
            let mut rng = Rng::new(options.seed, index);
            let persona = match rng.below(100) {
                0..60 => Persona::Engaged,
                60..80 => Persona::Struggling,
                _ => Persona::Disengaged,
            };
            let account = ACCOUNTS[(index % accounts) as usize];
            User {
                index,
                account,
                name: format!("{account}-u{index:06}"),
                persona,
            }
        })
        .collect()
}

/// Splits `total` events over users by persona weight, exactly (largest remainder).
pub(crate) fn budgets(users: &[User], total: u64) -> Vec<u64> {
    let weights: Vec<f64> = users.iter().map(|u| u.persona.weight()).collect();
    let sum: f64 = weights.iter().sum();
    let shares: Vec<f64> = weights.iter().map(|w| w / sum * total as f64).collect();
    let mut budgets: Vec<u64> = shares.iter().map(|s| s.floor() as u64).collect();
    let mut left = total - budgets.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..users.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = shares[a] - shares[a].floor();
        let fb = shares[b] - shares[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        budgets[i] += 1;
        left -= 1;
    }
    budgets
}

/// The generated events' schema: the `events` table's own (strings as `Utf8`) and a
/// `page_url`. Times are drawn at millisecond precision, like browser trackers send them.
pub(crate) fn event_schema() -> Arc<Schema> {
    let mut fields: Vec<Field> = events::events_schema(&DataType::Utf8)
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("page_url", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

#[derive(Debug)]
pub(crate) struct EventColumns {
    time: TimestampNanosecondBuilder,
    account: StringBuilder,
    user: StringBuilder,
    app: StringBuilder,
    tab: StringBuilder,
    kind: StringBuilder,
    id: StringBuilder,
    url: StringBuilder,
}

impl EventColumns {
    pub(crate) fn new() -> Self {
        EventColumns {
            time: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            account: StringBuilder::new(),
            user: StringBuilder::new(),
            app: StringBuilder::new(),
            tab: StringBuilder::new(),
            kind: StringBuilder::new(),
            id: StringBuilder::new(),
            url: StringBuilder::new(),
        }
    }

    pub(crate) fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.account.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.app.finish()),
            Arc::new(self.tab.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.url.finish()),
        ];
        RecordBatch::try_new(event_schema(), columns).expect("columns match the schema")
    }
}

/// Appends one user's events (exactly `budget` rows) to `out`.
#[expect(
    clippy::too_many_lines,
    reason = "one user's day, told in order; splitting it would scatter the story"
)]
pub(crate) fn user_events(
    options: &GenerateOptions,
    user: &User,
    budget: u64,
    out: &mut EventColumns,
) {
    let mut rng = Rng::new(options.seed ^ 0xD3E1_1000, user.index);
    let day_ms = 86_400_000_i64;
    let start_ms = options
        .start
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis();
    let days = u64::from(options.days.max(1));
    // Struggling users hop between applications; others keep to one or two.
    let favourite = rng.below(APPS.len() as u64) as usize;
    let second = rng.below(APPS.len() as u64) as usize;
    let visit_size = match user.persona {
        Persona::Engaged => 14.0,
        Persona::Struggling => 3.0,
        Persona::Disengaged => 4.0,
    };
    let active_days: Vec<u64> = match user.persona {
        Persona::Disengaged => {
            let first = rng.below(days);
            vec![first, (first + 1 + rng.below(days)).min(days - 1)]
        }
        _ => (0..days).filter(|_| rng.chance(0.8)).collect(),
    };
    let active_days = if active_days.is_empty() {
        vec![0]
    } else {
        active_days
    };
    let visits = ((budget as f64 / visit_size).ceil() as u64).max(1);
    let mut starts: Vec<i64> = (0..visits)
        .map(|_| {
            let day = active_days[rng.below(active_days.len() as u64) as usize] as i64;
            // Working hours, 08:00-18:00 UTC, give or take.
            let minute = 8 * 60 + rng.below(10 * 60) as i64;
            start_ms + day * day_ms + minute * 60_000 + rng.below(60_000) as i64
        })
        .collect();
    starts.sort_unstable();

    let mut left = budget;
    let mut now = i64::MIN;
    let mut serial = 0u64;
    let mut tabs = 0u64;
    let mut last: Option<(i64, usize, u64, &'static str, u64)> = None;
    let mut emit = |out: &mut EventColumns,
                    time: i64,
                    app: usize,
                    tab: u64,
                    kind: &'static str,
                    left: &mut u64,
                    serial: &mut u64,
                    rng: &mut Rng| {
        if *left == 0 {
            return;
        }
        // At-least-once delivery: now and then an event arrives twice with its id.
        let (time, app, tab, kind, id) = match last {
            Some(previous) if *left > 1 && rng.chance(0.003) => previous,
            _ => {
                *serial += 1;
                (time, app, tab, kind, *serial)
            }
        };
        out.time.append_value(time * NANOS_PER_MILLI);
        out.account.append_value(user.account);
        out.user.append_value(&user.name);
        out.app.append_value(APPS[app].0);
        out.tab.append_value(format!("tab-{tab}"));
        out.kind.append_value(kind);
        out.id.append_value(format!("{}-{id}", user.name));
        out.url
            .append_value(format!("/{}/page/{}", APPS[app].0, id % 17));
        last = Some((time, app, tab, kind, id));
        *left -= 1;
    };
    for planned in starts {
        if left == 0 {
            break;
        }
        now = now.max(planned);
        let app = match user.persona {
            Persona::Struggling => rng.below(APPS.len() as u64) as usize,
            _ if rng.chance(0.75) => favourite,
            _ => second,
        };
        let timeout_ms = APPS[app].1.unwrap_or(Duration::from_mins(30)).as_millis() as i64;
        tabs += 1;
        let mut tab = tabs;
        let opener = match rng.below(10) {
            0..7 => "tab_open",
            7 => "tab_visible",
            _ => "page_view",
        };
        emit(out, now, app, tab, opener, &mut left, &mut serial, &mut rng);
        let length = (rng.exponential(visit_size) as u64).max(1);
        for _ in 0..length {
            if left == 0 {
                break;
            }
            let gap = if rng.chance(0.06) {
                // A pause around the timeout: some split the session, some do not.
                (timeout_ms as f64 * (0.7 + 0.7 * rng.unit())) as i64
            } else {
                (rng.exponential(35_000.0) as i64).max(200)
            };
            now += gap;
            if rng.chance(0.04) {
                // Switch to another tab and back later.
                emit(
                    out,
                    now,
                    app,
                    tab,
                    "tab_hidden",
                    &mut left,
                    &mut serial,
                    &mut rng,
                );
                tabs += 1;
                let other = tabs;
                now += 1_000 + rng.below(20_000) as i64;
                emit(
                    out,
                    now,
                    app,
                    other,
                    "tab_visible",
                    &mut left,
                    &mut serial,
                    &mut rng,
                );
                now += 1_000 + rng.below(60_000) as i64;
                emit(
                    out,
                    now,
                    app,
                    other,
                    "page_view",
                    &mut left,
                    &mut serial,
                    &mut rng,
                );
                now += 1_000 + rng.below(20_000) as i64;
                emit(
                    out,
                    now,
                    app,
                    tab,
                    "tab_visible",
                    &mut left,
                    &mut serial,
                    &mut rng,
                );
                continue;
            }
            if rng.chance(0.05) {
                tab = {
                    tabs += 1;
                    tabs
                };
            }
            if rng.chance(0.02) {
                // Back from another window that sent no tab_hidden: the tab restarts.
                emit(
                    out,
                    now,
                    app,
                    tab,
                    "tab_visible",
                    &mut left,
                    &mut serial,
                    &mut rng,
                );
                continue;
            }
            let kind = match rng.below(20) {
                0..10 => "page_view",
                10..17 => "user_action",
                _ => "content_engagement",
            };
            emit(out, now, app, tab, kind, &mut left, &mut serial, &mut rng);
        }
        if rng.chance(0.4) {
            now += 500 + rng.below(5_000) as i64;
            emit(
                out,
                now,
                app,
                tab,
                "tab_close",
                &mut left,
                &mut serial,
                &mut rng,
            );
        }
        now += 1_000;
    }
    // A budget larger than the visits drew: the rest continues the last visit.
    while left > 0 {
        now += (rng.exponential(35_000.0) as i64).max(200);
        emit(
            out,
            now,
            favourite,
            tabs,
            "user_action",
            &mut left,
            &mut serial,
            &mut rng,
        );
    }
}

/// The `users` table of the generated users.
pub(crate) fn users_batch(options: &GenerateOptions, users: &[User]) -> RecordBatch {
    let mut account = StringBuilder::new();
    let mut user_id = StringBuilder::new();
    let mut department = StringBuilder::new();
    let mut role = StringBuilder::new();
    let mut region = StringBuilder::new();
    for user in users {
        let mut rng = Rng::new(options.seed ^ 0x05E2_5000, user.index);
        account.append_value(user.account);
        user_id.append_value(&user.name);
        department.append_value(DEPARTMENTS[rng.below(DEPARTMENTS.len() as u64) as usize]);
        role.append_value(ROLES[rng.below(ROLES.len() as u64) as usize]);
        region.append_value(REGIONS[rng.below(REGIONS.len() as u64) as usize]);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("department", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(account.finish()),
        Arc::new(user_id.finish()),
        Arc::new(department.finish()),
        Arc::new(role.finish()),
        Arc::new(region.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("columns match the schema")
}

/// Events per generated chunk: each chunk is one ingest, so memory stays bounded.
const GENERATE_CHUNK_EVENTS: u64 = 1_000_000;

/// Chunks of whole users, about [`GENERATE_CHUNK_EVENTS`] events each: (users, events).
fn chunks(budgets: &[u64]) -> Vec<(std::ops::Range<usize>, u64)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < budgets.len() {
        let mut end = start;
        let mut events = 0;
        while end < budgets.len() && (events < GENERATE_CHUNK_EVENTS || end == start) {
            events += budgets[end];
            end += 1;
        }
        chunks.push((start..end, events));
        start = end;
    }
    chunks
}

impl Engine {
    /// `users/users.parquet`, and a `dwell.toml` with the applications' timeouts when there is
    /// none.
    async fn write_users_and_settings(
        &self,
        options: &GenerateOptions,
        users: &[User],
    ) -> Result<()> {
        let users_file = users_batch(options, users);
        let mut bytes = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, users_file.schema(), None)?;
        writer.write(&users_file)?;
        writer.close()?;
        self.location
            .store()
            .put(
                &self.location.child("users/users.parquet"),
                PutPayload::from(bytes),
            )
            .await?;
        let settings_path = self.location.child(SETTINGS_FILE);
        if matches!(
            self.location.store().head(&settings_path).await,
            Err(object_store::Error::NotFound { .. })
        ) {
            let mut settings = self.settings();
            for (app, timeout) in APPS {
                if let Some(timeout) = timeout {
                    settings.app_timeouts.insert(app.to_owned(), timeout);
                }
            }
            self.location
                .store()
                .put(
                    &settings_path,
                    PutPayload::from(settings.to_toml().into_bytes()),
                )
                .await?;
        }

        Ok(())
    }

    /// Generates synthetic events into the location (see [`crate::generate`]): `users/users.parquet`,
    /// a `dwell.toml` with the applications' timeouts when there is none, and the events through
    /// the ingest path in chunks. `progress` hears the number of events landed so far.
    pub async fn generate(
        &self,
        options: &GenerateOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<IngestReport>> {
        let users = users(options);
        if users.is_empty() && options.events > 0 {
            return Err(Error::InvalidOption {
                option: "users",
                reason: "must be at least 1 to generate events".into(),
            });
        }
        self.write_users_and_settings(options, &users).await?;
        // The sessions are computed under the settings just written.
        if !self.fixed_settings {
            *self
                .settings
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                crate::settings::Settings::read(&self.location).await?;
        }

        let budgets = budgets(&users, options.events);
        let schema = event_schema();
        let chunks = chunks(&budgets);
        let spawn = |range: std::ops::Range<usize>| {
            let (options, users, budgets) = (
                options.clone(),
                users[range.clone()].to_vec(),
                budgets[range].to_vec(),
            );
            tokio::task::spawn_blocking(move || {
                let mut columns = EventColumns::new();
                for (user, budget) in users.iter().zip(&budgets) {
                    user_events(&options, user, *budget, &mut columns);
                }
                columns.finish()
            })
        };
        let mut reports = Vec::new();
        let mut done = 0;
        // All chunks are one commit: their events and sessions become visible together.
        let guard = self.ingest_lock.lock().await;
        let mut pending = crate::persisted::Pending {
            summary: format!("generate {options:?}"),
            ..Default::default()
        };
        // The next chunk is generated while the current one lands: two cores busy.
        let mut next = chunks.first().map(|(range, _)| spawn(range.clone()));
        for (chunk, (_, events)) in chunks.iter().enumerate() {
            let Some(generating) = next.take() else {
                break;
            };
            let batch = generating
                .await
                .map_err(|e| Error::ingest("generate", None, format!("generator failed: {e}")))?;
            next = chunks.get(chunk + 1).map(|(range, _)| spawn(range.clone()));
            let id = IngestId::of_bytes(
                format!(
                    "generate/{}/{}/{}/{}/{}/{chunk}",
                    options.seed, options.events, options.users, options.days, options.start
                )
                .as_bytes(),
            );
            let source = format!("generate chunk {chunk}");
            let report = if crate::ingest::is_committed(&self.location, &id).await? {
                crate::ingest::already_landed(&source, &id)
            } else {
                self.stage(
                    &source,
                    &id,
                    &schema,
                    std::slice::from_ref(&batch),
                    &mut pending,
                )
                .await?
            };
            done += events;
            progress(done);
            reports.push(report);
        }
        if !pending.ingests.is_empty() {
            self.commit(&pending).await?;
        }
        drop(guard);
        self.refresh().await?;
        Ok(reports)
    }
}
