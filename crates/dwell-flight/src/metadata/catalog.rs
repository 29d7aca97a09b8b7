//! The catalogs, schemas, tables and table types a caller's context holds.

use arrow::datatypes::Schema;
use datafusion::catalog::information_schema::{INFORMATION_SCHEMA, INFORMATION_SCHEMA_TABLES};
use datafusion::common::TableReference;
use datafusion::datasource::TableType;
use datafusion::execution::context::SessionContext;

use crate::statement::wire_schema;

/// The table types dwell has, as JDBC names them.
pub(crate) const TABLE_TYPES: [&str; 3] = ["TABLE", "VIEW", "LOCAL TEMPORARY"];

fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => TABLE_TYPES[0],
        TableType::View => TABLE_TYPES[1],
        TableType::Temporary => TABLE_TYPES[2],
    }
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
