//! `dwell.toml`: the settings of a data location (SESSIONS.md §5). Every key has a default, so
//! the file is optional; a bad value is an error that names its key, never a silent fallback.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::location::DataLocation;
use object_store::ObjectStoreExt as _;

/// The file name at the root of a data location.
pub const SETTINGS_FILE: &str = "dwell.toml";

/// Settings of one data location, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Inactivity timeout of applications without their own (`default_timeout`).
    pub default_timeout: Duration,
    /// Per-application timeouts (`[app_timeouts]`).
    pub app_timeouts: BTreeMap<String, Duration>,
    /// Maximum session duration; `None` is off (`max_session_duration`).
    pub max_session_duration: Option<Duration>,
    /// Split sessions at midnight in `time_zone` (`day_boundary`).
    pub day_boundary: bool,
    /// Reporting time zone: the `day` of a session, and rule 8 (`time_zone`).
    pub time_zone: Tz,
    /// A gap exactly equal to the timeout splits (`split_on_equal_gap`).
    pub split_on_equal_gap: bool,
    /// Thresholds of `user_segments` (`[segments]`).
    pub segments: SegmentThresholds,
}

/// The thresholds that decide `user_segments.segment`; see the README for the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentThresholds {
    /// Disengaged: at most this many sessions in the data ...
    pub disengaged_max_sessions: u64,
    /// ... or at most this much session time in all.
    pub disengaged_max_total_session: Duration,
    /// Struggling: at least this many sessions per active day ...
    pub struggling_min_sessions_per_day: f64,
    /// ... with a median session no longer than this ...
    pub struggling_max_median_session: Duration,
    /// ... in at least this many applications.
    pub struggling_min_apps: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_timeout: Duration::from_mins(30),
            app_timeouts: BTreeMap::new(),
            max_session_duration: None,
            day_boundary: false,
            time_zone: Tz::UTC,
            split_on_equal_gap: false,
            segments: SegmentThresholds::default(),
        }
    }
}

impl Default for SegmentThresholds {
    fn default() -> Self {
        SegmentThresholds {
            disengaged_max_sessions: 2,
            disengaged_max_total_session: Duration::from_mins(5),
            struggling_min_sessions_per_day: 4.0,
            struggling_max_median_session: Duration::from_mins(2),
            struggling_min_apps: 2,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    default_timeout: Option<String>,
    #[serde(default)]
    app_timeouts: BTreeMap<String, String>,
    max_session_duration: Option<String>,
    day_boundary: Option<bool>,
    time_zone: Option<String>,
    split_on_equal_gap: Option<bool>,
    segments: Option<RawSegments>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegments {
    disengaged_max_sessions: Option<u64>,
    disengaged_max_total_session: Option<String>,
    struggling_min_sessions_per_day: Option<f64>,
    struggling_max_median_session: Option<String>,
    struggling_min_apps: Option<u64>,
}

impl Settings {
    /// Parses the text of a `dwell.toml`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Settings> {
        let setting_error = |key: &str, reason: String| Error::Setting {
            file: file.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let raw: RawSettings = toml::from_str(text).map_err(|e| {
            // toml's message names the key (unknown field `x`, or the line of a wrong type).
            let key = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map_or_else(String::new, |before| {
                    format!("line {}", before.matches('\n').count() + 1)
                });
            setting_error(&key, e.message().to_owned())
        })?;
        let mut settings = Settings::default();
        let positive = |key: &str, value: &str| -> Result<Duration> {
            let duration = humantime::parse_duration(value).map_err(|e| {
                setting_error(
                    key,
                    format!("'{value}' is not a duration such as '30m' or '1h 30m': {e}"),
                )
            })?;
            if duration.is_zero() {
                return Err(setting_error(key, "must be longer than zero".into()));
            }
            if duration.subsec_nanos() % 1_000_000 != 0 {
                return Err(setting_error(
                    key,
                    format!("'{value}' is finer than a millisecond"),
                ));
            }
            if duration.as_nanos() > i64::MAX as u128 {
                return Err(setting_error(key, format!("'{value}' is too long")));
            }
            Ok(duration)
        };
        if let Some(v) = &raw.default_timeout {
            settings.default_timeout = positive("default_timeout", v)?;
        }
        for (app, v) in &raw.app_timeouts {
            let timeout = positive(&format!("app_timeouts.{app}"), v)?;
            settings.app_timeouts.insert(app.clone(), timeout);
        }
        if let Some(v) = &raw.max_session_duration {
            settings.max_session_duration = Some(positive("max_session_duration", v)?);
        }
        if let Some(v) = raw.day_boundary {
            settings.day_boundary = v;
        }
        if let Some(v) = &raw.time_zone {
            settings.time_zone = v.parse().map_err(|_| {
                setting_error(
                    "time_zone",
                    format!("'{v}' is not an IANA time zone such as 'UTC' or 'Europe/Berlin'"),
                )
            })?;
        }
        if let Some(v) = raw.split_on_equal_gap {
            settings.split_on_equal_gap = v;
        }
        if let Some(s) = raw.segments {
            let t = &mut settings.segments;
            if let Some(v) = s.disengaged_max_sessions {
                t.disengaged_max_sessions = v;
            }
            if let Some(v) = &s.disengaged_max_total_session {
                t.disengaged_max_total_session =
                    positive("segments.disengaged_max_total_session", v)?;
            }
            if let Some(v) = s.struggling_min_sessions_per_day {
                if !(v.is_finite() && v > 0.0) {
                    return Err(setting_error(
                        "segments.struggling_min_sessions_per_day",
                        format!("{v} must be a positive number"),
                    ));
                }
                t.struggling_min_sessions_per_day = v;
            }
            if let Some(v) = &s.struggling_max_median_session {
                t.struggling_max_median_session =
                    positive("segments.struggling_max_median_session", v)?;
            }
            if let Some(v) = s.struggling_min_apps {
                t.struggling_min_apps = v;
            }
        }
        Ok(settings)
    }

    /// The timeout of an application.
    #[must_use]
    pub fn timeout_of(&self, app_id: &str) -> Duration {
        self.app_timeouts
            .get(app_id)
            .copied()
            .unwrap_or(self.default_timeout)
    }

    /// Every setting with its value, in `dwell.toml`'s order: `(section, key, value)`, the
    /// section `""` for top-level keys. `dwell.toml` text and the `dwell_settings` table are
    /// both written from this.
    pub(crate) fn entries(&self) -> Vec<(&'static str, String, SettingValue)> {
        use SettingValue::{Bare, Text};
        let d = |d: Duration| Text(humantime::format_duration(d).to_string());
        let mut entries = vec![
            ("", "default_timeout".to_owned(), d(self.default_timeout)),
            (
                "",
                "time_zone".to_owned(),
                Text(self.time_zone.name().to_owned()),
            ),
            (
                "",
                "day_boundary".to_owned(),
                Bare(self.day_boundary.to_string()),
            ),
            (
                "",
                "split_on_equal_gap".to_owned(),
                Bare(self.split_on_equal_gap.to_string()),
            ),
        ];
        if let Some(max) = self.max_session_duration {
            entries.push(("", "max_session_duration".to_owned(), d(max)));
        }
        for (app, timeout) in &self.app_timeouts {
            entries.push(("app_timeouts", toml_key(app), d(*timeout)));
        }
        let s = &self.segments;
        entries.extend([
            (
                "segments",
                "disengaged_max_sessions".to_owned(),
                Bare(s.disengaged_max_sessions.to_string()),
            ),
            (
                "segments",
                "disengaged_max_total_session".to_owned(),
                d(s.disengaged_max_total_session),
            ),
            (
                "segments",
                "struggling_min_sessions_per_day".to_owned(),
                Bare(format!("{:?}", s.struggling_min_sessions_per_day)),
            ),
            (
                "segments",
                "struggling_max_median_session".to_owned(),
                d(s.struggling_max_median_session),
            ),
            (
                "segments",
                "struggling_min_apps".to_owned(),
                Bare(s.struggling_min_apps.to_string()),
            ),
        ]);
        entries
    }

    /// These settings as `dwell.toml` text, every key written out.
    #[must_use]
    pub fn to_toml(&self) -> String {
        render(&self.entries())
    }

    /// These settings with some replaced, each given by its key as `dwell_settings` spells it
    /// (`default_timeout`, `app_timeouts.crm`, `segments.struggling_min_apps`) and its value in
    /// `dwell.toml`'s syntax without quotes. Checked as `dwell.toml` is; `source` names the
    /// caller in errors.
    pub(crate) fn with_overrides(
        &self,
        overrides: &[(String, String)],
        source: &str,
    ) -> Result<Settings> {
        let error = |key: &str, reason: String| Error::Setting {
            file: source.to_owned(),
            key: key.to_owned(),
            reason,
        };
        // What each key holds, from a full set of settings (max_session_duration included).
        let known = Settings {
            max_session_duration: Some(Duration::from_hours(1)),
            ..Settings::default()
        }
        .entries();
        let mut entries = self.entries();
        for (key, value) in overrides {
            let (section, name): (&'static str, &str) = match key.split_once('.') {
                Some(("app_timeouts", name)) => ("app_timeouts", name),
                Some(("segments", name)) => ("segments", name),
                _ => ("", key.as_str()),
            };
            let name = if section == "app_timeouts" {
                // `app_timeouts."my app"`, as dwell_settings shows it, or `app_timeouts.my app`.
                let bare = name
                    .strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .unwrap_or(name);
                toml_key(bare)
            } else {
                name.to_owned()
            };
            let kind = known
                .iter()
                .find(|(s, k, _)| *s == section && *k == name)
                .map(|(_, _, kind)| kind);
            let text = match (kind, section) {
                (Some(SettingValue::Bare(_)), _) => {
                    // A boolean or a number: nothing that could end the TOML value.
                    if value.is_empty()
                        || !value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
                    {
                        return Err(error(key, format!("'{value}' is not a number or boolean")));
                    }
                    SettingValue::Bare(value.clone())
                }
                (Some(SettingValue::Text(_)), _) | (None, "app_timeouts") => {
                    if value
                        .chars()
                        .any(|c| c == '"' || c == '\\' || c.is_control())
                    {
                        return Err(error(
                            key,
                            format!("'{value}' holds a quote, backslash or control character"),
                        ));
                    }
                    SettingValue::Text(value.clone())
                }
                (None, _) => {
                    return Err(error(
                        key,
                        "is not a setting; the keys are those of the dwell_settings table".into(),
                    ));
                }
            };
            match entries
                .iter_mut()
                .find(|(s, k, _)| *s == section && *k == name)
            {
                Some(entry) => entry.2 = text,
                None => entries.push((section, name, text)),
            }
        }
        Settings::parse(&render(&entries), source)
    }

    /// The settings in `location`'s `dwell.toml`; the defaults when there is none.
    pub(crate) async fn read(location: &DataLocation) -> Result<Settings> {
        let file = format!(
            "{}/{SETTINGS_FILE}",
            location.to_string().trim_end_matches('/')
        );
        match location.store().get(&location.child(SETTINGS_FILE)).await {
            Ok(found) => {
                let bytes = found.bytes().await?;
                let text = std::str::from_utf8(&bytes).map_err(|e| Error::Setting {
                    file: file.clone(),
                    key: "(file)".into(),
                    reason: format!("not UTF-8 text: {e}"),
                })?;
                Settings::parse(text, &file)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Settings::default()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `dwell.toml` text of settings' entries, section by section.
fn render(entries: &[(&'static str, String, SettingValue)]) -> String {
    let mut text = String::new();
    for section in SECTIONS {
        if !section.is_empty() {
            writeln!(text, "\n[{section}]").expect("writing to a String");
        }
        for (_, key, value) in entries.iter().filter(|(s, _, _)| *s == section) {
            match value {
                SettingValue::Text(v) => writeln!(text, "{key} = \"{v}\""),
                SettingValue::Bare(v) => writeln!(text, "{key} = {v}"),
            }
            .expect("writing to a String");
        }
    }
    text
}

/// The sections of `dwell.toml`, in order; `""` is the top level.
const SECTIONS: [&str; 3] = ["", "app_timeouts", "segments"];

/// A setting's value as written in `dwell.toml`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SettingValue {
    /// A TOML string (durations, the time zone).
    Text(String),
    /// A TOML boolean or number, written as is.
    Bare(String),
}

impl SettingValue {
    /// The value without TOML's quotes.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            SettingValue::Text(v) | SettingValue::Bare(v) => v,
        }
    }
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}
