//! How dwell's plans travel to the scheduler: Ballista's own logical codec, plus the engine's
//! in-memory tables (the settings tables, and `events` before anything has landed), which
//! `datafusion-proto` cannot carry by itself. Parquet listing tables (`events`, `users`) and
//! views travel as `datafusion-proto` messages; `sessionize` travels by name and is found in the
//! scheduler's and executors' function registries.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

/// Marks a table encoded by this codec (an Arrow IPC stream follows).
const MEMORY_TABLE: &[u8] = b"dwell-memory-table\n";

/// Ballista's logical codec, and in-memory tables as Arrow IPC streams.
#[derive(Debug, Default)]
pub(crate) struct DwellLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for DwellLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(ipc) = buf.strip_prefix(MEMORY_TABLE) else {
            return self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let reader = StreamReader::try_new(ipc, None)?;
        let batches = reader.collect::<Result<Vec<RecordBatch>, _>>()?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let Some(table) = node.downcast_ref::<MemTable>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "table {table_ref} cannot be sent to the cluster: only Parquet tables, views \
                 and the engine's in-memory tables travel (account-scoped tables do not yet)"
            )));
        };
        buf.extend_from_slice(MEMORY_TABLE);
        let mut writer = StreamWriter::try_new(&mut *buf, &table.schema())?;
        for partition in &table.batches {
            // The engine's in-memory tables are written once, when registered; nothing holds
            // them for writing while a query is planned.
            let batches = partition.try_read().map_err(|_| {
                DataFusionError::Execution(format!(
                    "table {table_ref} is being written to; try the query again"
                ))
            })?;
            for batch in batches.iter() {
                writer.write(batch)?;
            }
        }
        writer.finish()?;
        Ok(())
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.ballista.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.ballista.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.ballista.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udwf(node, buf)
    }
}
