//! What the server says about itself and its tables: `GetSqlInfo`, `GetXdbcTypeInfo`, catalogs,
//! schemas, tables and table types.

use std::collections::BTreeSet;

use arrow::datatypes::Schema;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, SqlSupportedTransaction, SupportedSqlGrammar, XdbcDataType,
    XdbcDatetimeSubcode,
};
use datafusion::catalog::information_schema::{INFORMATION_SCHEMA, INFORMATION_SCHEMA_TABLES};
use datafusion::common::TableReference;
use datafusion::datasource::TableType;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::DocSection;
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;

use crate::statement::wire_schema;

/// The name a Flight SQL client shows for this server.
pub(crate) const SERVER_NAME: &str = "dwell";

/// The table types dwell has, as JDBC names them.
pub(crate) const TABLE_TYPES: [&str; 3] = ["TABLE", "VIEW", "LOCAL TEMPORARY"];

pub(crate) fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => TABLE_TYPES[0],
        TableType::View => TABLE_TYPES[1],
        TableType::Temporary => TABLE_TYPES[2],
    }
}

/// Function names of the context by the section their documentation files them under.
fn functions(ctx: &SessionContext) -> [Vec<String>; 4] {
    let state = ctx.state();
    let mut numeric = BTreeSet::new();
    let mut string = BTreeSet::new();
    let mut datetime = BTreeSet::new();
    let mut system = BTreeSet::new();
    let mut file = |name: &str, section: Option<&DocSection>| {
        let label = section.map_or("", |s| s.label).to_ascii_lowercase();
        let target = if label.contains("math") {
            &mut numeric
        } else if label.contains("string") || label.contains("regular expression") {
            &mut string
        } else if label.contains("time") || label.contains("date") {
            &mut datetime
        } else {
            &mut system
        };
        target.insert(name.to_ascii_uppercase());
    };
    for (name, udf) in state.scalar_functions() {
        file(name, udf.documentation().map(|d| &d.doc_section));
    }
    for (name, udaf) in state.aggregate_functions() {
        file(name, udaf.documentation().map(|d| &d.doc_section));
    }
    for (name, udwf) in state.window_functions() {
        file(name, udwf.documentation().map(|d| &d.doc_section));
    }
    [numeric, string, datetime, system].map(|set| set.into_iter().collect())
}

/// Everything `GetSqlInfo` answers.
pub(crate) fn sql_info(ctx: &SessionContext) -> SqlInfoData {
    let [numeric, string, datetime, system] = functions(ctx);
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, SERVER_NAME);
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, arrow_version());
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    // Unquoted identifiers are folded to lower case; quoted ones keep their case.
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // DataFusion sorts NULLs last ascending and first descending: "high".
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    let keywords: Vec<String> = ALL_KEYWORDS.iter().map(|k| (*k).to_owned()).collect();
    b.append(SqlInfo::SqlKeywords, keywords);
    b.append(SqlInfo::SqlNumericFunctions, numeric);
    b.append(SqlInfo::SqlStringFunctions, string);
    b.append(SqlInfo::SqlDatetimeFunctions, datetime);
    b.append(SqlInfo::SqlSystemFunctions, system);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmask of SqlSupportedGroupBy: unrelated columns and beyond the select list.
    b.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(
        SqlInfo::SqlSupportedGrammar,
        1i32 << SupportedSqlGrammar::SqlCoreGrammar as i32
            | 1i32 << SupportedSqlGrammar::SqlMinimumGrammar as i32,
    );
    b.append(SqlInfo::SqlAnsi92SupportedLevel, 0b1i32);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Subqueries in comparisons, EXISTS and IN.
    b.append(SqlInfo::SqlSupportedSubqueries, 0b111i32);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    append_limits(&mut b);
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
    b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i32);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    // Forward-only result sets.
    b.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32);
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build()
        .expect("the SQL info values have their spec types")
}

/// The `SQL_MAX_*` limits: 0, no limit known.
fn append_limits(b: &mut SqlInfoDataBuilder) {
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        // 0: no limit known.
        b.append(limit, 0i64);
    }
}

/// The Arrow version the server speaks (this crate is built against Arrow 59).
fn arrow_version() -> &'static str {
    "59"
}

fn type_info(
    name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    literal: Option<(&str, &str)>,
    searchable: Searchable,
) -> XdbcTypeInfo {
    XdbcTypeInfo {
        type_name: name.to_owned(),
        data_type,
        column_size,
        literal_prefix: literal.map(|(p, _)| p.to_owned()),
        literal_suffix: literal.map(|(_, s)| s.to_owned()),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar),
        searchable,
        unsigned_attribute: Some(false),
        fixed_prec_scale: false,
        auto_increment: Some(false),
        local_type_name: Some(name.to_owned()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: matches!(
            data_type,
            XdbcDataType::XdbcBigint
                | XdbcDataType::XdbcInteger
                | XdbcDataType::XdbcSmallint
                | XdbcDataType::XdbcTinyint
                | XdbcDataType::XdbcDouble
                | XdbcDataType::XdbcFloat
        )
        .then_some(10),
        interval_precision: None,
    }
}

/// `GetXdbcTypeInfo`: every type dwell's tables and views return (after the wire conversion),
/// plus the other scalar types a query can produce.
pub(crate) fn xdbc_type_info() -> XdbcTypeInfoData {
    use XdbcDataType as X;
    let mut b = XdbcTypeInfoDataBuilder::new();
    let full = Searchable::Full;
    let basic = Searchable::Basic;
    b.append(type_info("BOOLEAN", X::XdbcBit, Some(1), None, basic));
    b.append(type_info("TINYINT", X::XdbcTinyint, Some(3), None, basic));
    b.append(type_info("SMALLINT", X::XdbcSmallint, Some(5), None, basic));
    b.append(type_info("INTEGER", X::XdbcInteger, Some(10), None, basic));
    b.append(type_info("BIGINT", X::XdbcBigint, Some(19), None, basic));
    b.append(type_info("REAL", X::XdbcFloat, Some(7), None, basic));
    b.append(type_info("DOUBLE", X::XdbcDouble, Some(15), None, basic));
    let mut decimal = type_info("DECIMAL", X::XdbcDecimal, Some(38), None, basic);
    decimal.create_params = Some(vec!["precision".into(), "scale".into()]);
    decimal.fixed_prec_scale = true;
    decimal.minimum_scale = Some(0);
    decimal.maximum_scale = Some(38);
    decimal.num_prec_radix = Some(10);
    b.append(decimal);
    let mut varchar = type_info("VARCHAR", X::XdbcVarchar, None, Some(("'", "'")), full);
    varchar.unsigned_attribute = None;
    varchar.auto_increment = None;
    b.append(varchar);
    let mut binary = type_info(
        "VARBINARY",
        X::XdbcVarbinary,
        None,
        Some(("X'", "'")),
        basic,
    );
    binary.unsigned_attribute = None;
    binary.auto_increment = None;
    b.append(binary);
    let mut date = type_info("DATE", X::XdbcDate, Some(10), Some(("DATE '", "'")), basic);
    date.sql_data_type = X::XdbcDatetime;
    date.datetime_subcode = Some(XdbcDatetimeSubcode::XdbcSubcodeYear);
    date.unsigned_attribute = None;
    date.auto_increment = None;
    b.append(date);
    let mut timestamp = type_info(
        "TIMESTAMP",
        X::XdbcTimestamp,
        Some(29),
        Some(("TIMESTAMP '", "'")),
        basic,
    );
    timestamp.sql_data_type = X::XdbcDatetime;
    timestamp.datetime_subcode = Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp);
    timestamp.minimum_scale = Some(0);
    timestamp.maximum_scale = Some(9);
    timestamp.unsigned_attribute = None;
    timestamp.auto_increment = None;
    b.append(timestamp);
    let mut interval = type_info(
        "INTERVAL",
        X::XdbcInterval,
        None,
        Some(("INTERVAL '", "'")),
        basic,
    );
    interval.unsigned_attribute = None;
    interval.auto_increment = None;
    b.append(interval);
    b.build()
        .expect("the type info values have their spec types")
}

/// One visible table: catalog, schema, name, type and wire schema.
pub(crate) struct TableEntry {
    pub(crate) catalog: String,
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) table_type: &'static str,
    pub(crate) arrow_schema: Schema,
}

/// Every table and view of the context, in catalog/schema/name order; `information_schema`
/// (which DataFusion answers outside the catalogs) included when it is on.
pub(crate) async fn tables(ctx: &SessionContext) -> datafusion::error::Result<Vec<TableEntry>> {
    let mut out = Vec::new();
    for (catalog_name, schema_name) in schemas(ctx) {
        let mut names = if schema_name == INFORMATION_SCHEMA {
            INFORMATION_SCHEMA_TABLES
                .iter()
                .map(|t| (*t).to_owned())
                .collect()
        } else {
            ctx.catalog(&catalog_name)
                .and_then(|c| c.schema(&schema_name))
                .map(|s| s.table_names())
                .unwrap_or_default()
        };
        names.sort();
        for name in names {
            let reference =
                TableReference::full(catalog_name.as_str(), schema_name.as_str(), name.as_str());
            let table = ctx.table_provider(reference).await?;
            out.push(TableEntry {
                catalog: catalog_name.clone(),
                schema: schema_name.clone(),
                name,
                table_type: table_type_name(table.table_type()),
                arrow_schema: wire_schema(&table.schema()).as_ref().clone(),
            });
        }
    }
    Ok(out)
}

/// `(catalog, schema)` pairs, in order, `information_schema` included when it is on.
pub(crate) fn schemas(ctx: &SessionContext) -> Vec<(String, String)> {
    let information_schema = ctx.state().config().information_schema();
    let mut out = Vec::new();
    for catalog_name in ctx.catalog_names() {
        if let Some(catalog) = ctx.catalog(&catalog_name) {
            for schema in catalog.schema_names() {
                out.push((catalog_name.clone(), schema));
            }
            if information_schema {
                out.push((catalog_name.clone(), INFORMATION_SCHEMA.to_owned()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
