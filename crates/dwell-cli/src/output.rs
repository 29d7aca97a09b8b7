//! The output formats of `dwell sql` and writing a result in them, to a terminal or a file.

use std::io::Write;
use std::path::Path;

use arrow::array::RecordBatch;
use clap::ValueEnum;

use crate::errors::{CliError, Result, io};

/// Output formats of `dwell sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row and line.
    Json,
    /// Parquet (needs -o).
    Parquet,
}

/// Writes a result to a file: to a temporary name first, renamed when complete.
pub(crate) fn write_file(path: &Path, batches: &[RecordBatch], format: Format) -> Result<()> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(directory)
        .map_err(io(format!("cannot write in {}", directory.display())))?;
    match format {
        Format::Parquet => {
            let schema = batches.first().map_or_else(
                || std::sync::Arc::new(arrow::datatypes::Schema::empty()),
                RecordBatch::schema,
            );
            let mut writer = parquet::arrow::ArrowWriter::try_new(&mut temporary, schema, None)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
        other => print(batches, other, &mut temporary)?,
    }
    // A temporary file is private (0600); a result file is an ordinary one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io(format!("cannot write {}", path.display())))?;
    }
    temporary.persist(path).map_err(|e| CliError::Io {
        context: format!("cannot write {}", path.display()),
        source: e.error,
    })?;
    Ok(())
}

/// Prints batches in a text format.
pub fn print(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{table}").map_err(io("writing the output"))?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Parquet => {
            return Err(CliError::Usage("--format parquet needs -o OUT".into()));
        }
    }
    Ok(())
}
