//! Arbitrary bytes as a timeline and a rule: the streaming kernel places every event exactly
//! where the reference does.
#![no_main]

use dwell_session::testing::{kernel_disagreement, timeline_from_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (events, rule) = timeline_from_bytes(data);
    if let Some(difference) = kernel_disagreement(&events, &rule) {
        panic!("kernel and reference disagree: {difference}");
    }
});
