//! Runs the sqllogictest files in `tests/slt/` against a DataFusion context with dwell's
//! functions, the way DataFusion's own `.slt` suite runs.

use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

/// A connection: one `SessionContext` per file.
struct Dwell {
    ctx: SessionContext,
}

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

impl From<DataFusionError> for SltError {
    fn from(e: DataFusionError) -> Self {
        // The message a user sees, without DataFusion's backtrace noise.
        Self(e.strip_backtrace())
    }
}

fn new_context() -> Result<SessionContext, SltError> {
    Ok(dwell_engine::session_context(
        SessionConfig::new().with_target_partitions(4),
    )?)
}

fn cell(array: &dyn Array, row: usize) -> Result<String, SltError> {
    if array.is_null(row) {
        return Ok("NULL".into());
    }
    let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())
        .map_err(|e| SltError(e.to_string()))?;
    let shown = formatter.value(row).to_string();
    Ok(if shown.is_empty() {
        "(empty)".into()
    } else {
        shown
    })
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| cell(c.as_ref(), row))
                    .collect::<Result<_, _>>()?,
            );
        }
    }
    Ok(out)
}

#[async_trait::async_trait]
impl AsyncDB for Dwell {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let df = self.ctx.sql(sql).await?;
        let width = df.schema().fields().len();
        let batches = df.collect().await?;
        let rows = rows(&batches)?;
        if width == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

fn slt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("slt")
}

async fn run_file(name: &str) {
    let path = slt_dir().join(name);
    let mut runner = sqllogictest::Runner::new(|| async {
        Ok(Dwell {
            ctx: new_context()?,
        })
    });
    if let Err(e) = runner.run_file_async(&path).await {
        panic!("{}: {}", path.display(), e.display(true));
    }
}

macro_rules! slt_tests {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                run_file($file).await;
            }
        )*

        #[test]
        fn every_slt_file_has_a_test() {
            let listed = [$($file),*];
            for entry in std::fs::read_dir(slt_dir()).expect("tests/slt") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                assert!(
                    !name.ends_with(".slt") || listed.contains(&name.as_str()),
                    "{name} is not run: add it to slt_tests! in tests/it/slt.rs"
                );
            }
        }
    };
}

slt_tests! {
    worked_examples => "examples.slt",
    arguments => "arguments.slt",
    errors => "errors.slt",
    documentation => "documentation.slt",
}
