//! What the fuzz targets (`fuzz/`) check, run in CI on inputs proptest makes: valid files and
//! the bad-input corpus with bytes flipped, cut short or spliced. The ingest readers return an
//! error or events for any bytes; they never panic, whatever the decoder inside does.

use std::path::Path;

use bytes::Bytes;
use dwell_engine::SourceFormat;
use dwell_engine::ingest::validate_source;
use proptest::prelude::*;

use crate::flight::events_batch;

/// A valid file of each format, then every corpus file: the seeds the mutations start from.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let batch = events_batch("fuzz-user", 20);
    let mut parquet = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut parquet, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let mut csv = Vec::new();
    arrow::csv::Writer::new(&mut csv)
        .write(&batch)
        .expect("csv");
    let mut json = Vec::new();
    {
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut json);
        writer.write(&batch).expect("json");
        writer.finish().expect("json");
    }
    let mut seeds = vec![
        ("valid.parquet".to_owned(), parquet),
        ("valid.csv".to_owned(), csv),
        ("valid.jsonl".to_owned(), json),
    ];
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ingest");
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .expect("corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| SourceFormat::of(name).is_some())
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(folder.join(&name)).expect("read");
        seeds.push((name, bytes));
    }
    seeds
}

/// One way of damaging a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at (position mod length) with a value.
    Flip(usize, u8),
    /// Keep only the first (position mod length) bytes.
    Cut(usize),
    /// Insert bytes at (position mod length).
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::Flip(at, x)),
        any::<usize>().prop_map(Mutation::Cut),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, b)| Mutation::Splice(at, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(at, x) => {
                if !bytes.is_empty() {
                    bytes[at % len] ^= x;
                }
            }
            Mutation::Cut(at) => bytes.truncate(at % len),
            Mutation::Splice(at, insert) => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, insert.iter().copied());
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn ingest_readers_never_panic_on_damaged_files(
        seed in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let (name, bytes) = &seeds[seed.index(seeds.len())];
        let damaged = apply(bytes.clone(), &mutations);
        let format = SourceFormat::of(name).expect("a known extension");
        let outcome = std::panic::catch_unwind(|| {
            validate_source(name, format, Bytes::from(damaged)).map(|b| b.num_rows())
        });
        prop_assert!(outcome.is_ok(), "{name} with {mutations:?}: the reader panicked");
        if let Ok(Err(error)) = outcome {
            // Whatever went wrong, the error names the file.
            prop_assert!(error.to_string().contains(name.as_str()), "{error}");
        }
    }
}
