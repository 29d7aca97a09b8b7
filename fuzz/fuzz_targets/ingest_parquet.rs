//! Arbitrary bytes as a .parquet file offered to ingest: an error or events, never a panic.
#![no_main]

use dwell_engine::SourceFormat;
use dwell_engine::ingest::validate_source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = validate_source(
        "fuzz.parquet",
        SourceFormat::Parquet,
        bytes::Bytes::copy_from_slice(data),
    );
});
