//! Runs the sqllogictest files in `tests/slt/` against a DataFusion context with dwell's
//! functions, the way DataFusion's own `.slt` suite runs.

use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use dwell_engine::{DataLocation, Engine, Settings};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

/// A connection: one `SessionContext` per file, or for `views.slt` an engine over memory whose
/// views are re-created when the file replaces `events`.
struct Dwell {
    ctx: SessionContext,
    engine: Option<Engine>,
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
        if let Some(engine) = &self.engine {
            let words: Vec<String> = sql
                .split_whitespace()
                .take(5)
                .map(str::to_ascii_lowercase)
                .collect();
            if words.starts_with(&[
                "create".into(),
                "or".into(),
                "replace".into(),
                "table".into(),
                "events".into(),
            ]) {
                engine
                    .refresh_views()
                    .await
                    .map_err(|e| SltError(e.to_string()))?;
            }
        }
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

/// The engine of `views.slt`: in memory, app B with a 5-minute timeout.
async fn new_engine() -> Result<Engine, SltError> {
    let mut settings = Settings::default();
    settings
        .app_timeouts
        .insert("B".into(), std::time::Duration::from_mins(5));
    let location = DataLocation::parse("memory://").map_err(|e| SltError(e.to_string()))?;
    Engine::builder(location)
        .with_config(SessionConfig::new().with_target_partitions(4))
        .with_settings(settings)
        .build()
        .await
        .map_err(|e| SltError(e.to_string()))
}

async fn run_file(name: &str) {
    let path = slt_dir().join(name);
    let with_engine = name == "views.slt";
    let mut runner = sqllogictest::Runner::new(|| async move {
        if with_engine {
            let engine = new_engine().await?;
            Ok(Dwell {
                ctx: engine.context().clone(),
                engine: Some(engine),
            })
        } else {
            Ok(Dwell {
                ctx: new_context()?,
                engine: None,
            })
        }
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
    views => "views.slt",
}
