//! Read-only planning of SQL, parameters, the wire schema and tickets.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use datafusion::common::config::Dialect;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
use tonic::Status;

use crate::status::df_status;

/// Plans one SQL statement for reading: `?` placeholders numbered, DDL, DML, `COPY` and `SET`
/// (anywhere in the plan, subqueries and `EXPLAIN` included) refused with `PERMISSION_DENIED`.
pub(crate) async fn plan_read_only(state: &SessionState, sql: &str) -> Result<LogicalPlan, Status> {
    let dialect = state.config().options().sql_parser.dialect;
    check_operator_chains(sql, dialect)?;
    let mut statement = state
        .sql_to_statement(sql, &dialect)
        .map_err(|e| df_status(&e))?;
    number_question_marks(&mut statement)?;
    let plan = state
        .statement_to_plan(statement)
        .await
        .map_err(|e| df_status(&e))?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| {
            let reason = e.strip_backtrace();
            let reason = reason
                .strip_prefix("Error during planning: ")
                .unwrap_or(&reason);
            Status::permission_denied(format!(
                "dwell serves read-only SQL (queries, EXPLAIN, SHOW): {reason}"
            ))
        })?;
    Ok(plan)
}

/// Most binary operators in a row within one expression (one parenthesis level, between
/// commas and clauses). The parser builds `a + b + c ...` without recursing, so its recursion
/// limit does not stop a chain; but planning, optimizing and dropping the tree recurse once per
/// operator, and a chain of a few thousand overflows a 2 MiB thread's stack (measured: 1,500
/// plan and run in a debug build, 2,000 overflow), which would kill the server. 1,000 leaves
/// room: an `OR` of 500 comparisons; longer lists belong in `IN (...)`.
const MAX_OPERATOR_CHAIN: usize = 1_000;

/// Refuses a statement with a longer operator chain than [`MAX_OPERATOR_CHAIN`], before it is
/// parsed (the tokenizer does not recurse).
fn check_operator_chains(sql: &str, dialect: Dialect) -> Result<(), Status> {
    use datafusion::sql::sqlparser::dialect::dialect_from_str;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

    let parser_dialect = dialect_from_str(dialect)
        .unwrap_or_else(|| Box::new(datafusion::sql::sqlparser::dialect::GenericDialect {}));
    let Ok(tokens) = Tokenizer::new(parser_dialect.as_ref(), sql).tokenize() else {
        // The parser reports the tokenizer's error with its position.
        return Ok(());
    };
    // One counter per open parenthesis level.
    let mut chains = vec![0usize];
    let mut longest = 0;
    for token in &tokens {
        let current = chains.last_mut().expect("the outermost level stays");
        match token {
            Token::LParen | Token::LBracket => chains.push(0),
            Token::RParen | Token::RBracket => {
                if chains.len() > 1 {
                    chains.pop();
                }
            }
            Token::Comma | Token::SemiColon => *current = 0,
            Token::Word(word) => match word.keyword {
                Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::COLLATE => *current += 1,
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::UNION
                | Keyword::JOIN
                | Keyword::ON
                | Keyword::CASE
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::END => *current = 0,
                _ => {}
            },
            Token::Whitespace(_)
            | Token::Period
            | Token::Number(..)
            | Token::Char(_)
            | Token::EOF => {}
            token if is_literal(token) => {}
            _ => *current += 1,
        }
        longest = longest.max(*chains.last().expect("the outermost level stays"));
    }
    if longest > MAX_OPERATOR_CHAIN {
        return Err(Status::invalid_argument(format!(
            "the statement nests too deeply: {longest} operators in a row in one expression \
             (at most {MAX_OPERATOR_CHAIN}); write long lists of alternatives as IN (...)"
        )));
    }
    Ok(())
}

/// Whether a token is a literal (text of any quoting).
fn is_literal(token: &datafusion::sql::sqlparser::tokenizer::Token) -> bool {
    use datafusion::sql::sqlparser::tokenizer::Token as T;
    matches!(
        token,
        T::SingleQuotedString(_)
            | T::DoubleQuotedString(_)
            | T::TripleSingleQuotedString(_)
            | T::TripleDoubleQuotedString(_)
            | T::DollarQuotedString(_)
            | T::SingleQuotedByteStringLiteral(_)
            | T::DoubleQuotedByteStringLiteral(_)
            | T::TripleSingleQuotedByteStringLiteral(_)
            | T::TripleDoubleQuotedByteStringLiteral(_)
            | T::SingleQuotedRawStringLiteral(_)
            | T::DoubleQuotedRawStringLiteral(_)
            | T::TripleSingleQuotedRawStringLiteral(_)
            | T::TripleDoubleQuotedRawStringLiteral(_)
            | T::NationalStringLiteral(_)
            | T::QuoteDelimitedStringLiteral(_)
            | T::NationalQuoteDelimitedStringLiteral(_)
            | T::EscapedStringLiteral(_)
            | T::UnicodeStringLiteral(_)
            | T::HexStringLiteral(_)
            | T::Placeholder(_)
    )
}

/// Rewrites JDBC/ADBC-style `?` placeholders to DataFusion's `$1`, `$2`, ... in the order they
/// appear; mixing the two styles is refused.
fn number_question_marks(statement: &mut DfStatement) -> Result<(), Status> {
    let DfStatement::Statement(statement) = statement else {
        return Ok(());
    };
    let mut next = 0usize;
    let mut numbered_seen = false;
    let _ = visit_expressions_mut(statement.as_mut(), |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &mut value.value
        {
            if name == "?" {
                next += 1;
                *name = format!("${next}");
            } else {
                numbered_seen = true;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if next > 0 && numbered_seen {
        return Err(Status::invalid_argument(
            "use either ? or $1-style placeholders in one statement, not both",
        ));
    }
    Ok(())
}

/// The plan with bound parameter values: one row, one column per placeholder in order.
pub(crate) fn bind(plan: LogicalPlan, params: Option<&RecordBatch>) -> Result<LogicalPlan, Status> {
    let expected = plan.get_parameter_types().map_err(|e| df_status(&e))?.len();
    let Some(params) = params else {
        if expected > 0 {
            return Err(Status::invalid_argument(format!(
                "the statement has {expected} parameter(s) and none were bound"
            )));
        }
        return Ok(plan);
    };
    if params.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "bind exactly one row of parameters to a query (got {})",
            params.num_rows()
        )));
    }
    if params.num_columns() != expected {
        return Err(Status::invalid_argument(format!(
            "the statement has {expected} parameter(s) but {} were bound",
            params.num_columns()
        )));
    }
    let expected_types = parameter_schema_raw(&plan)?;
    let values = params
        .columns()
        .iter()
        .zip(expected_types.fields())
        .map(|(column, field)| {
            // Clients bind what the parameter schema said (plain Utf8 for a Utf8View column);
            // DataFusion wants its own type.
            let column = match field.data_type() {
                DataType::Null => Arc::clone(column),
                wanted if wanted != column.data_type() => arrow::compute::cast(column, wanted)
                    .map_err(|e| {
                        Status::invalid_argument(format!(
                            "parameter {}: cannot use a {} as {wanted}: {e}",
                            field.name(),
                            column.data_type()
                        ))
                    })?,
                _ => Arc::clone(column),
            };
            ScalarValue::try_from_array(&column, 0).map_err(|e| df_status(&e))
        })
        .collect::<Result<Vec<_>, Status>>()?;
    plan.with_param_values(ParamValues::from(values))
        .map_err(|e| df_status(&e))
}

/// The schema of the parameters as clients see it (wire types).
pub(crate) fn parameter_schema(plan: &LogicalPlan) -> Result<Schema, Status> {
    Ok(wire_schema(&parameter_schema_raw(plan)?).as_ref().clone())
}

/// The parameters `$1`.. in order with DataFusion's types; an unknown type is `Null`.
fn parameter_schema_raw(plan: &LogicalPlan) -> Result<Schema, Status> {
    let types = plan.get_parameter_types().map_err(|e| df_status(&e))?;
    let mut names: Vec<_> = types.into_iter().collect();
    // `$10` after `$9`: order by the number, not the text.
    names.sort_by_key(|(name, _)| {
        name.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    Ok(Schema::new(
        names
            .into_iter()
            .map(|(name, data_type)| Field::new(name, data_type.unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    ))
}

/// A type as it goes out: view types become their plain forms, which every Flight SQL client
/// reads (older JDBC drivers cannot read `Utf8View`), and dictionaries their value type.
fn wire_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::ListView(f) | DataType::List(f) => DataType::List(wire_field(f)),
        DataType::LargeListView(f) | DataType::LargeList(f) => DataType::LargeList(wire_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(wire_field(f), *n),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(wire_field).collect::<Fields>())
        }
        DataType::Map(f, sorted) => DataType::Map(wire_field(f), *sorted),
        // arrow-flight's encoder sends dictionaries as their values; say so up front.
        DataType::Dictionary(_, value) => wire_type(value),
        other => other.clone(),
    }
}

fn wire_field(field: &FieldRef) -> FieldRef {
    Arc::new(
        field
            .as_ref()
            .clone()
            .with_data_type(wire_type(field.data_type())),
    )
}

/// The schema a plan's results have on the wire (see [`wire_type`]).
pub(crate) fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(wire_field).collect::<Fields>(),
        schema.metadata().clone(),
    ))
}

/// A batch in exactly `schema` (from [`wire_schema`] of the plan), so the stream carries the
/// schema `GetFlightInfo` promised.
pub(crate) fn to_wire(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, Status> {
    if batch.num_columns() != schema.fields().len() {
        return Err(Status::internal(format!(
            "the query produced {} columns where its plan has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()
        .map_err(|e| Status::internal(format!("cannot convert a result column: {e}")))?;
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| Status::internal(format!("a result batch does not fit its schema: {e}")))
}

/// What a ticket carries: the SQL and the parameter values bound at `GetFlightInfo` time, so
/// `DoGet` needs no server state (and a prepared statement closed in between still streams).
#[derive(Debug)]
pub(crate) struct Ticket {
    pub(crate) sql: String,
    pub(crate) params: Option<RecordBatch>,
}

const TICKET_VERSION: u8 = 1;

impl Ticket {
    /// `version, u32 SQL length, SQL, Arrow IPC stream of the parameters (may be absent)`.
    pub(crate) fn encode(&self) -> Result<Bytes, Status> {
        let mut out = vec![TICKET_VERSION];
        let sql_len = u32::try_from(self.sql.len())
            .map_err(|_| Status::invalid_argument("the statement is too long"))?;
        out.extend_from_slice(&sql_len.to_le_bytes());
        out.extend_from_slice(self.sql.as_bytes());
        if let Some(params) = &self.params {
            let failed = |e: arrow::error::ArrowError| {
                Status::internal(format!("cannot encode parameters: {e}"))
            };
            let mut writer = StreamWriter::try_new(&mut out, &params.schema()).map_err(failed)?;
            writer.write(params).map_err(failed)?;
            writer.finish().map_err(failed)?;
        }
        Ok(Bytes::from(out))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Ticket, Status> {
        let bad = || Status::invalid_argument("the ticket is not one this server issued");
        let (&version, rest) = bytes.split_first().ok_or_else(bad)?;
        if version != TICKET_VERSION || rest.len() < 4 {
            return Err(bad());
        }
        let (len, rest) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let (sql, params) = rest.split_at(len);
        let sql = std::str::from_utf8(sql).map_err(|_| bad())?.to_owned();
        let params = if params.is_empty() {
            None
        } else {
            let reader = StreamReader::try_new(params, None).map_err(|_| bad())?;
            let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|_| bad())?;
            match batches.as_slice() {
                [batch] => Some(batch.clone()),
                _ => return Err(bad()),
            }
        };
        Ok(Ticket { sql, params })
    }
}
