//! The streaming kernel agrees with the reference on random timelines.

use proptest::prelude::*;

use crate::kernel::Placement;
use crate::reference::{self, RefEvent};
use crate::testing;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn kernel_matches_reference(events in testing::events(80), rule in testing::rule()) {
        prop_assert_eq!(testing::kernel_disagreement(&events, &rule), None);
    }

    /// The fuzz target's decoding (`fuzz/fuzz_targets/session_kernel.rs`), far jumps included.
    #[test]
    fn kernel_matches_reference_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (events, rule) = testing::timeline_from_bytes(&data);
        prop_assert_eq!(testing::kernel_disagreement(&events, &rule), None);
    }

    #[test]
    fn session_ids_are_unique_and_sequences_count_up(events in testing::events(80), rule in testing::rule()) {
        let sessions = reference::sessions(&events, &rule);
        let mut ids: Vec<_> = sessions.iter().map(|s| s.session_id.clone()).collect();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), sessions.len());
        for pair in sessions.windows(2) {
            if (&pair[0].account_id, &pair[0].user_id) == (&pair[1].account_id, &pair[1].user_id) {
                prop_assert_eq!(pair[1].session_seq, pair[0].session_seq + 1);
                prop_assert!(pair[1].start_time >= pair[0].end_time);
            } else {
                prop_assert_eq!(pair[1].session_seq, 1);
            }
        }
    }

    /// Adding events after a user's last one never renames an earlier session.
    #[test]
    fn later_events_never_rename_earlier_sessions(events in testing::events(60), more in testing::events(20), rule in testing::rule()) {
        let newest = events.iter().filter_map(|e| e.time).max().unwrap_or(0);
        let later: Vec<RefEvent> = more
            .into_iter()
            .map(|mut e| {
                e.time = e.time.map(|t| t + newest + 1);
                e
            })
            .collect();
        let before = reference::place(&events, &rule);
        let all: Vec<RefEvent> = events.iter().cloned().chain(later).collect();
        let after = reference::place(&all, &rule);
        for (i, placement) in before.iter().enumerate() {
            if let (Some(Placement::InSession(a)), Some(Placement::InSession(b))) = (placement, &after[i]) {
                prop_assert_eq!(a.session_id, b.session_id);
            }
        }
    }
}

/// Found by `cargo fuzz run session_kernel`: far jumps past year 262143 with a day boundary
/// set. The kernel counted such times in UTC days; the reference panicked ("time in range").
#[test]
fn times_beyond_chronos_range_count_in_utc_days_in_both() {
    let data: [u8; 33] = [
        0xff, 0x11, 0x41, 0x41, 0xff, 0xfb, 0xbe, 0x41, 0xfe, 0xff, 0xfe, 0xfb, 0xff, 0xfb, 0x00,
        0xbe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x11, 0x41, 0x41, 0xff, 0xfb, 0xbe, 0xfe, 0xff, 0x08,
        0xff, 0xff, 0xff,
    ];
    let (events, rule) = testing::timeline_from_bytes(&data);
    assert!(rule.day_boundary.is_some());
    assert_eq!(testing::kernel_disagreement(&events, &rule), None);
}
