//! Deterministic session ids (SESSIONS.md §4).
//!
//! A session's id is a 128-bit XXH3 hash of its first event (`account_id`, `user_id`, `app_id`,
//! `tab_id`, `event_time` as nanoseconds since the epoch, `event_id`, `event_type`) and of how
//! many of the user's earlier events share that `event_time`. Within one user those last two
//! already tell sessions apart; the rest makes ids unique across users and tenants (a collision
//! needs about 2^64 sessions). Fields are length-prefixed with a NULL marker, so
//! `("ab", "c")` and `("a", "bc")`, or NULL and `""`, hash differently. The time is hashed as an
//! instant, so the same event read in milliseconds or microseconds gets the same id.

use std::fmt;

use xxhash_rust::xxh3::xxh3_128;

use crate::kernel::{Event, TimeScale};

/// Bumped if the encoding ever changes, so old and new ids never meet.
const SCHEME: &[u8] = b"dwell.session_id.v1";

/// A session id; shown as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u128);

impl SessionId {
    /// The 32 hex digits.
    #[must_use]
    pub fn to_hex(self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, byte) in self.0.to_be_bytes().iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        out
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

/// Computes session ids, reusing one buffer.
#[derive(Debug, Default)]
pub(crate) struct SessionIdHasher {
    buffer: Vec<u8>,
}

impl SessionIdHasher {
    pub(crate) fn session_id(
        &mut self,
        first: &Event<'_>,
        scale: TimeScale,
        earlier_at_same_time: u64,
    ) -> SessionId {
        let buf = &mut self.buffer;
        buf.clear();
        buf.extend_from_slice(SCHEME);
        for field in [first.account_id, first.user_id, first.app_id, first.tab_id] {
            put_str(buf, field);
        }
        buf.extend_from_slice(&scale.nanos(first.time).to_le_bytes());
        put_str(buf, first.event_id);
        put_str(buf, first.event_type);
        buf.extend_from_slice(&earlier_at_same_time.to_le_bytes());
        SessionId(xxh3_128(buf))
    }
}

fn put_str(buf: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::TimeUnit;

    use super::*;
    use crate::kernel::DEFAULT_TIMEOUT_NANOS;

    fn event(time: i64) -> Event<'static> {
        Event {
            time,
            account_id: Some("acme"),
            user_id: Some("u1"),
            app_id: Some("crm"),
            tab_id: Some("t1"),
            event_type: Some("page_view"),
            event_id: Some("e1"),
            timeout_nanos: DEFAULT_TIMEOUT_NANOS,
        }
    }

    fn id(e: &Event<'_>, unit: TimeUnit, earlier: u64) -> SessionId {
        SessionIdHasher::default().session_id(e, TimeScale::new(unit), earlier)
    }

    #[test]
    fn same_instant_in_any_unit_gives_same_id() {
        let ms = id(&event(1_700_000_000_123), TimeUnit::Millisecond, 0);
        let us = id(&event(1_700_000_000_123_000), TimeUnit::Microsecond, 0);
        assert_eq!(ms, us);
    }

    #[test]
    fn id_is_stable_across_releases() {
        // Changing this value renames every stored session: bump SCHEME instead.
        let got = id(&event(1_700_000_000_123), TimeUnit::Millisecond, 0).to_string();
        assert_eq!(got, "1182785cde4a69191ca2656eda4f1067");
    }

    #[test]
    fn null_and_empty_and_shifted_fields_differ() {
        let base = event(0);
        let ids = [
            id(&base, TimeUnit::Second, 0),
            id(
                &Event {
                    tab_id: None,
                    ..base
                },
                TimeUnit::Second,
                0,
            ),
            id(
                &Event {
                    tab_id: Some(""),
                    ..base
                },
                TimeUnit::Second,
                0,
            ),
            id(
                &Event {
                    app_id: Some("crmt"),
                    tab_id: Some("1"),
                    ..base
                },
                TimeUnit::Second,
                0,
            ),
            id(&base, TimeUnit::Second, 1),
            id(
                &Event {
                    user_id: Some("u2"),
                    ..base
                },
                TimeUnit::Second,
                0,
            ),
            id(
                &Event {
                    account_id: None,
                    ..base
                },
                TimeUnit::Second,
                0,
            ),
        ];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
