//! The CLI's statement splitter (`dwell_cli::statements`): scripts and prompt input are cut
//! at `;` tokens of DataFusion's SQL tokenizer, so `;` in comments, strings and quoted names
//! stays inside its statement.

use dwell_cli::statements;

fn split(text: &str) -> Vec<String> {
    statements(text)
}

#[test]
fn semicolons_in_block_comments_do_not_split() {
    assert_eq!(
        split("SELECT 1 /* a; b */ AS a; SELECT 2"),
        ["SELECT 1 /* a; b */ AS a", "SELECT 2"]
    );
    // Nested, as the generic dialect reads them.
    assert_eq!(
        split("SELECT /* x /* y; */ z; */ 1; SELECT 2;"),
        ["SELECT /* x /* y; */ z; */ 1", "SELECT 2"]
    );
    assert_eq!(
        split("/* leading; */ SELECT 1; /* trailing; */"),
        ["SELECT 1"]
    );
}

#[test]
fn semicolons_in_line_comments_do_not_split() {
    assert_eq!(
        split("SELECT ';' AS a; -- a comment; with a semicolon\nSELECT 2;\n\n"),
        ["SELECT ';' AS a", "SELECT 2"]
    );
    assert_eq!(
        split("SELECT 1 -- one; two\n, 2;"),
        ["SELECT 1 -- one; two\n, 2"]
    );
    assert_eq!(split("SELECT 1; -- the end;"), ["SELECT 1"]);
}

#[test]
fn semicolons_in_strings_and_quoted_identifiers_do_not_split() {
    assert_eq!(
        split("SELECT 'a;b', 'it''s; fine' AS \"x;y\"; SELECT \"a\"\"; b\" FROM t"),
        [
            "SELECT 'a;b', 'it''s; fine' AS \"x;y\"",
            "SELECT \"a\"\"; b\" FROM t"
        ]
    );
    assert_eq!(
        split("SELECT '--not a comment;'"),
        ["SELECT '--not a comment;'"]
    );
    assert_eq!(split("SELECT '/*'; SELECT 2"), ["SELECT '/*'", "SELECT 2"]);
    assert_eq!(split("SELECT `a;b` FROM t;"), ["SELECT `a;b` FROM t"]);
}

#[test]
fn semicolons_in_dollar_quoted_strings_do_not_split() {
    assert_eq!(
        split("SELECT $$a; b$$; SELECT $tag$c; $$ d$tag$"),
        ["SELECT $$a; b$$", "SELECT $tag$c; $$ d$tag$"]
    );
}

#[test]
fn a_last_statement_needs_no_semicolon_and_empty_ones_are_skipped() {
    assert_eq!(split("SELECT 1"), ["SELECT 1"]);
    assert_eq!(
        split("  SELECT 1 ;; ;\n SELECT 2  "),
        ["SELECT 1", "SELECT 2"]
    );
    assert!(split("").is_empty());
    assert!(split(" ;\n; -- nothing\n /* at all */ ;").is_empty());
}

#[test]
fn statements_keep_their_text_across_lines_and_characters() {
    assert_eq!(
        split("SELECT 'é日本'\n\t, 2\r\n  AS x; SELECT 'ü';"),
        ["SELECT 'é日本'\n\t, 2\r\n  AS x", "SELECT 'ü'"]
    );
}

#[test]
fn hints_are_statement_text() {
    assert_eq!(
        split("SELECT 1 /*!x; */; SELECT 2 /*! y */"),
        ["SELECT 1 /*!x; */", "SELECT 2 /*! y */"]
    );
}

#[test]
fn unreadable_text_is_the_last_statement() {
    // The engine reports the tokenizer's error when the statement runs.
    assert_eq!(
        split("SELECT 1; SELECT 'open; SELECT 3;"),
        ["SELECT 1", "SELECT 'open; SELECT 3;"]
    );
    assert_eq!(
        split("SELECT 1;\nSELECT 2 /* open; SELECT 3"),
        ["SELECT 1", "SELECT 2 /* open; SELECT 3"]
    );
    assert_eq!(split("SELECT \"open;"), ["SELECT \"open;"]);
}
