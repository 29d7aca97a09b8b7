//! One metadata command: which it is, decoded from a descriptor or ticket, the schema of its
//! answer, and the answer.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::{
    Any, CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo,
};
use datafusion::prelude::SessionContext;
use tonic::Status;

use super::catalog::{self, TABLE_TYPES};
use super::keys::{foreign_keys_schema, primary_keys_schema};
use super::sql_info::sql_info;
use super::type_info::xdbc_type_info;
use crate::status::df_status;

/// Which metadata command a ticket or descriptor holds, with its result schema.
pub(crate) enum MetadataCommand {
    Catalogs(CommandGetCatalogs),
    Schemas(CommandGetDbSchemas),
    Tables(CommandGetTables),
    TableTypes(CommandGetTableTypes),
    SqlInfo(CommandGetSqlInfo),
    TypeInfo(CommandGetXdbcTypeInfo),
    PrimaryKeys,
    ForeignKeys,
}

impl MetadataCommand {
    /// Decodes the `Any` of a descriptor or ticket into a metadata command, if it is one.
    pub(crate) fn from_any(any: &Any) -> Result<Option<MetadataCommand>, Status> {
        let bad =
            |e: arrow::error::ArrowError| Status::invalid_argument(format!("bad command: {e}"));
        Ok(
            if let Some(c) = any.unpack::<CommandGetCatalogs>().map_err(bad)? {
                Some(MetadataCommand::Catalogs(c))
            } else if let Some(c) = any.unpack::<CommandGetDbSchemas>().map_err(bad)? {
                Some(MetadataCommand::Schemas(c))
            } else if let Some(c) = any.unpack::<CommandGetTables>().map_err(bad)? {
                Some(MetadataCommand::Tables(c))
            } else if let Some(c) = any.unpack::<CommandGetTableTypes>().map_err(bad)? {
                Some(MetadataCommand::TableTypes(c))
            } else if let Some(c) = any.unpack::<CommandGetSqlInfo>().map_err(bad)? {
                Some(MetadataCommand::SqlInfo(c))
            } else if let Some(c) = any.unpack::<CommandGetXdbcTypeInfo>().map_err(bad)? {
                Some(MetadataCommand::TypeInfo(c))
            } else if any.is::<CommandGetPrimaryKeys>() {
                Some(MetadataCommand::PrimaryKeys)
            } else if any.is::<CommandGetExportedKeys>()
                || any.is::<CommandGetImportedKeys>()
                || any.is::<CommandGetCrossReference>()
            {
                Some(MetadataCommand::ForeignKeys)
            } else {
                None
            },
        )
    }
}

/// The metadata answers that are the same for every caller (SQL info, type info), built once,
/// and the answering of every metadata command.
pub(crate) struct Metadata {
    sql_info: SqlInfoData,
    type_info: XdbcTypeInfoData,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata").finish_non_exhaustive()
    }
}

impl Metadata {
    /// Builds the SQL info from the functions `ctx` knows.
    pub(crate) fn new(ctx: &SessionContext) -> Self {
        Metadata {
            sql_info: sql_info(ctx),
            type_info: xdbc_type_info(),
        }
    }

    /// The schema of a metadata command's results.
    pub(crate) fn schema(&self, command: &MetadataCommand) -> SchemaRef {
        match command {
            MetadataCommand::Catalogs(c) => (*c).into_builder().schema(),
            MetadataCommand::Schemas(c) => c.clone().into_builder().schema(),
            MetadataCommand::Tables(c) => c.clone().into_builder().schema(),
            MetadataCommand::TableTypes(c) => (*c).into_builder().schema(),
            MetadataCommand::SqlInfo(_) => self.sql_info.schema(),
            MetadataCommand::TypeInfo(_) => self.type_info.schema(),
            MetadataCommand::PrimaryKeys => primary_keys_schema(),
            MetadataCommand::ForeignKeys => foreign_keys_schema(),
        }
    }

    /// The one batch answering `command` in the caller's context `ctx`.
    pub(crate) async fn answer(
        &self,
        command: MetadataCommand,
        ctx: &SessionContext,
    ) -> Result<RecordBatch, Status> {
        let built = match command {
            MetadataCommand::Catalogs(c) => {
                let mut b = c.into_builder();
                let mut names = ctx.catalog_names();
                names.sort();
                for name in names {
                    b.append(name);
                }
                b.build()
            }
            MetadataCommand::Schemas(c) => {
                let mut b = c.into_builder();
                for (catalog, schema) in catalog::schemas(ctx) {
                    b.append(catalog, schema);
                }
                b.build()
            }
            MetadataCommand::Tables(c) => {
                let mut b = c.into_builder();
                let tables = catalog::tables(ctx).await.map_err(|e| df_status(&e))?;
                for t in tables {
                    b.append(
                        &t.catalog,
                        &t.schema,
                        &t.name,
                        t.table_type,
                        &t.arrow_schema,
                    )
                    .map_err(|e| Status::internal(format!("cannot list tables: {e}")))?;
                }
                b.build()
            }
            MetadataCommand::TableTypes(c) => {
                let mut b = c.into_builder();
                for t in TABLE_TYPES {
                    b.append(t);
                }
                b.build()
            }
            MetadataCommand::SqlInfo(c) => c.into_builder(&self.sql_info).build(),
            MetadataCommand::TypeInfo(c) => c.into_builder(&self.type_info).build(),
            MetadataCommand::PrimaryKeys => Ok(RecordBatch::new_empty(primary_keys_schema())),
            MetadataCommand::ForeignKeys => Ok(RecordBatch::new_empty(foreign_keys_schema())),
        };
        built.map_err(|e| Status::internal(format!("cannot build the metadata answer: {e}")))
    }
}
