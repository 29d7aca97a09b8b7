//! Splitting SQL text (`-c`, `-f`, a prompt input) into statements at `;`, with DataFusion's SQL
//! tokenizer deciding what is a string, a quoted identifier or a comment.

use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, dialect_from_str};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer, Whitespace};
use dwell_engine::Engine;

/// Splits SQL text into statements at `;` outside quotes and comments, in DataFusion's default
/// SQL dialect (generic).
///
/// Each statement is its original text from its first token to its last, without the `;` and
/// without the comments before and after it; a statement of nothing but comments is skipped.
/// Text the tokenizer cannot read (an unterminated string or comment) ends the split: from the
/// statement it is in to the end is one last statement, so that running it reports the error
/// with its position.
#[must_use]
pub fn statements(text: &str) -> Vec<String> {
    statements_in(&GenericDialect {}, text)
}

/// [`statements`] in the SQL dialect `engine` parses with (`datafusion.sql_parser.dialect`).
pub(crate) fn engine_statements(engine: &Engine, text: &str) -> Vec<String> {
    let configured = engine
        .context()
        .copied_config()
        .options()
        .sql_parser
        .dialect;
    // An unknown dialect fails when the statement runs, with DataFusion's message.
    let dialect = dialect_from_str(configured).unwrap_or_else(|| Box::new(GenericDialect {}));
    statements_in(dialect.as_ref(), text)
}

/// [`statements`] in `dialect`.
pub(crate) fn statements_in(dialect: &dyn Dialect, text: &str) -> Vec<String> {
    let hints = dialect.supports_multiline_comment_hints();
    // The tokenizer expands a `/*! ... */` hint into the tokens inside it, positioned as if the
    // hint's text started where the comment does; tokenizing it as a plain comment (same length,
    // so the same positions) keeps every position exact, and the hint is kept as statement text.
    let scanned = if hints {
        text.replace("/*!", "/* ")
    } else {
        text.to_owned()
    };
    let mut tokens = Vec::new();
    let readable = Tokenizer::new(dialect, &scanned)
        .with_unescape(false)
        .tokenize_with_location_into_buf(&mut tokens)
        .is_ok();
    let mut offsets = Offsets::new(text);
    let mut statements = Vec::new();
    // The byte range from the current statement's first token to its last.
    let mut current: Option<(usize, usize)> = None;
    // Where the text after the last `;` starts.
    let mut rest = 0;
    for token in &tokens {
        let start = offsets.at(token.span.start);
        let end = offsets.at(token.span.end);
        match &token.token {
            Token::SemiColon => {
                statements.extend(current.take().map(|(from, to)| text[from..to].to_owned()));
                rest = end;
            }
            Token::Whitespace(Whitespace::MultiLineComment(_))
                if hints && text[start..].starts_with("/*!") =>
            {
                current = Some((current.map_or(start, |(from, _)| from), end));
            }
            Token::Whitespace(_) => {}
            _ => current = Some((current.map_or(start, |(from, _)| from), end)),
        }
    }
    if readable {
        statements.extend(current.map(|(from, to)| text[from..to].to_owned()));
    } else {
        let last = text[rest..].trim();
        if !last.is_empty() {
            statements.push(last.to_owned());
        }
    }
    statements
}

/// Byte offsets of the tokenizer's locations (line and column from 1, columns in characters, a
/// new line after each `\n`), asked for in increasing order.
struct Offsets<'a> {
    text: &'a str,
    line: u64,
    column: u64,
    byte: usize,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            line: 1,
            column: 1,
            byte: 0,
        }
    }

    /// The byte offset of `location`; one before the last one asked for stays at the last.
    fn at(&mut self, location: Location) -> usize {
        while (self.line, self.column) < (location.line, location.column) {
            let Some(c) = self.text[self.byte..].chars().next() else {
                break;
            };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.byte
    }
}
