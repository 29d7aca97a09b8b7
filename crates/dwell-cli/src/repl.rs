//! The interactive prompt of `dwell sql`: collecting lines into statements, running them, and
//! the prompt itself with its history.

use std::io::Write;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use dwell_engine::Engine;

use crate::errors::{CliError, Result, one_line};
use crate::output::{Format, print};
use crate::statements::engine_statements;

/// Collects prompt lines into statements: input is complete when a line ends with `;`.
#[derive(Debug, Default)]
pub struct LineBuffer {
    text: String,
}

/// What a line of the prompt asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// More lines are needed.
    Incomplete,
    /// This text (one or more statements) is ready to run.
    Complete(String),
    /// `\q`, `quit` or `exit` on a line of its own.
    Quit,
}

impl LineBuffer {
    /// Whether a statement has been started.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Adds a line.
    pub fn push(&mut self, line: &str) -> Input {
        let trimmed = line.trim();
        if self.text.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
            return Input::Quit;
        }
        if self.text.is_empty() && trimmed.is_empty() {
            return Input::Incomplete;
        }
        self.text.push_str(line);
        self.text.push('\n');
        if trimmed.ends_with(';') {
            Input::Complete(std::mem::take(&mut self.text))
        } else {
            Input::Incomplete
        }
    }

    /// Drops a half-typed statement (Ctrl-C).
    pub fn clear(&mut self) {
        self.text.clear();
    }
}

/// Runs the statements of one prompt input: results to `out`, an error as one line to `err`;
/// a failed statement does not end the session.
pub async fn run_input(engine: &Engine, text: &str, out: &mut dyn Write, err: &mut dyn Write) {
    for statement in engine_statements(engine, text) {
        let started = std::time::Instant::now();
        let outcome = async {
            let batches = engine.sql(&statement).await?.collect().await?;
            print(&batches, Format::Table, out)?;
            Ok::<usize, CliError>(batches.iter().map(RecordBatch::num_rows).sum())
        }
        .await;
        let _ = match outcome {
            Ok(rows) => writeln!(
                err,
                "{rows} rows in {:.3} s",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => writeln!(err, "error: {}", one_line(&e.to_string())),
        };
    }
}

/// The interactive prompt: statements end with `;`, `\q` quits, history is kept in
/// `~/.dwell_history`.
pub(crate) async fn repl(engine: &Engine) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| CliError::Usage(format!("cannot open the prompt: {e}")))?;
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".dwell_history"));
    if let Some(history) = &history {
        // A first run has no history yet.
        let _ = editor.load_history(history);
    }
    eprintln!(
        "dwell {} on {}: SQL ending with ';', \\q to quit. Tables: SHOW TABLES;",
        env!("CARGO_PKG_VERSION"),
        engine.location()
    );
    let mut buffer = LineBuffer::default();
    loop {
        let prompt = if buffer.is_empty() {
            "dwell> "
        } else {
            "   ..> "
        };
        match editor.readline(prompt) {
            Ok(line) => match buffer.push(&line) {
                Input::Incomplete => {}
                Input::Quit => break,
                Input::Complete(text) => {
                    let _ = editor.add_history_entry(text.trim());
                    run_input(
                        engine,
                        &text,
                        &mut std::io::stdout().lock(),
                        &mut std::io::stderr().lock(),
                    )
                    .await;
                }
            },
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Usage(format!("prompt failed: {e}"))),
        }
    }
    if let Some(history) = &history {
        editor
            .save_history(history)
            .map_err(|e| CliError::Usage(format!("cannot save the history: {e}")))?;
    }
    Ok(())
}
