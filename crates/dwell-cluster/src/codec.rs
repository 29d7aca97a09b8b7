//! How dwell's plans travel: Ballista's own codecs, plus what `datafusion-proto` cannot carry by
//! itself. To the scheduler (logical plans): the engine's in-memory tables (the settings tables,
//! and `events` before anything has landed) and a tenant's account-scoped tables. To the
//! executors (physical plans): the account filter under a tenant's scans, and dwell's
//! sessionizing operator (`SessionizeExec`: its mode, its `sessionize` window expression and its
//! sort, as `datafusion-proto` messages; the executor works out the rest from its input).
//! Parquet listing tables (`events`, `users`) and views travel as `datafusion-proto` messages;
//! `sessionize` travels by name and is found in the scheduler's and executors' function
//! registries. The live-row filter over persisted sessions carries its set of retracted rows
//! to both.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::{
    parse_physical_sort_exprs, parse_physical_window_expr,
};
use datafusion_proto::physical_plan::to_proto::{
    serialize_physical_sort_exprs, serialize_physical_window_expr,
};
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use dwell_engine::{AccountFilterExec, AccountScoped, LiveRowFilter};
use dwell_session::{SessionizeExec, SessionizeMode};
use prost::Message;

/// Marks a table encoded by this codec (an Arrow IPC stream follows).
const MEMORY_TABLE: &[u8] = b"dwell-memory-table\n";
/// Marks an account-scoped table: the account, then the scoped table as a logical plan (a scan
/// of it), which `datafusion-proto` encodes as it encodes any table.
const ACCOUNT_SCOPED: &[u8] = b"dwell-account-scoped\n";
/// Marks an account filter of a physical plan.
const ACCOUNT_FILTER: &[u8] = b"dwell-account-filter\n";
/// Marks a `SessionizeExec`: its mode (one byte), the number of partition keys (4 bytes), the
/// window expression (a length-prefixed `PhysicalWindowExprNode`), then the sort (a
/// `PhysicalSortExprNodeCollection`).
const SESSIONIZE: &[u8] = b"dwell-sessionize\n";

/// Marks the live-row filter over persisted sessions (`LiveRowFilter`): the set of retracted
/// rows' keys follows.
const LIVE_ROW_FILTER: &[u8] = b"dwell-live-row-filter\n";

/// Encodes dwell's own scalar functions that carry state (the live-row filter), in both
/// codecs; `false` for any other function, which travels by name.
fn encode_udf(node: &ScalarUDF, buf: &mut Vec<u8>) -> bool {
    let Some(filter) = node.inner().downcast_ref::<LiveRowFilter>() else {
        return false;
    };
    buf.extend_from_slice(LIVE_ROW_FILTER);
    buf.extend_from_slice(&filter.encode());
    true
}

/// The function [`encode_udf`] wrote, if it wrote this one.
fn decode_udf(name: &str, buf: &[u8]) -> Option<Result<Arc<ScalarUDF>>> {
    let set = buf.strip_prefix(LIVE_ROW_FILTER)?;
    Some(
        LiveRowFilter::decode(set)
            .map(Arc::new)
            .map_err(|e| e.context(format!("decoding {name}"))),
    )
}

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
        if let Some(scoped) = buf.strip_prefix(ACCOUNT_SCOPED) {
            let (account, plan) = split_text(scoped)?;
            let plan = logical_plan_from_bytes_with_extension_codec(plan, ctx, self)?;
            let LogicalPlan::TableScan(scan) = plan else {
                return Err(DataFusionError::Internal(format!(
                    "table {table_ref}: an account-scoped table carries a scan, not {}",
                    plan.display()
                )));
            };
            let inner = source_as_provider(&scan.source)?;
            return AccountScoped::new(inner, &account)
                .map(|scoped| Arc::new(scoped) as Arc<dyn TableProvider>)
                .ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "table {table_ref}: the scoped table has no account_id column"
                    ))
                });
        }
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
        if let Some(scoped) = node.downcast_ref::<AccountScoped>() {
            let scan = LogicalPlanBuilder::scan(
                table_ref.clone(),
                provider_as_source(Arc::clone(scoped.inner())),
                None,
            )?
            .build()?;
            buf.extend_from_slice(ACCOUNT_SCOPED);
            push_text(buf, scoped.account());
            buf.extend_from_slice(&logical_plan_to_bytes_with_extension_codec(&scan, self)?);
            return Ok(());
        }
        let Some(table) = node.downcast_ref::<MemTable>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "table {table_ref} cannot be sent to the cluster: only Parquet tables, views, \
                 account-scoped tables and the engine's in-memory tables travel"
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
        decode_udf(name, buf).unwrap_or_else(|| self.ballista.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_udf(node, buf) {
            return Ok(());
        }
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

/// Ballista's physical codec, the account filter under a tenant's scans, and `SessionizeExec`.
#[derive(Debug, Default)]
pub(crate) struct DwellPhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
    /// Decode a `SessionizeExec` that sorts in memory as one that sorts with DataFusion's
    /// spilling `SortExec` inside it (`SortSpilling`: the same operators, which the scheduler
    /// counts): an executor given a memory limit decodes so.
    spilling_sorts: bool,
}

impl DwellPhysicalCodec {
    /// The codec of an executor whose tasks' memory is limited.
    pub(crate) fn spilling_sorts() -> Self {
        Self {
            ballista: BallistaPhysicalExtensionCodec::default(),
            spilling_sorts: true,
        }
    }

    fn decode_sessionize(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let malformed = || DataFusionError::Internal("a malformed SessionizeExec message".into());
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "SessionizeExec has one input, not {}",
                inputs.len()
            )));
        };
        let (&mode, rest) = buf.split_first().ok_or_else(malformed)?;
        let mode = match mode {
            0 if self.spilling_sorts => SessionizeMode::SortSpilling,
            0 => SessionizeMode::SortInMemory,
            1 => SessionizeMode::Presorted,
            2 => SessionizeMode::SortSpilling,
            _ => return Err(malformed()),
        };
        let (partition_keys, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let partition_keys = u32::from_le_bytes(*partition_keys) as usize;
        let (window_length, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
        let window_length = u32::from_le_bytes(*window_length) as usize;
        if rest.len() < window_length {
            return Err(malformed());
        }
        let (window, sort) = rest.split_at(window_length);
        let window = protobuf::PhysicalWindowExprNode::decode(window)
            .map_err(|e| DataFusionError::Internal(format!("SessionizeExec's window: {e}")))?;
        let sort = protobuf::PhysicalSortExprNodeCollection::decode(sort)
            .map_err(|e| DataFusionError::Internal(format!("SessionizeExec's sort: {e}")))?;
        let decoding = PhysicalPlanDecodeContext::new(ctx, self);
        let schema = input.schema();
        let window = parse_physical_window_expr(&window, &decoding, &schema, proto_converter)?;
        let sort = parse_physical_sort_exprs(
            &sort.physical_sort_expr_nodes,
            &decoding,
            &schema,
            proto_converter,
        )?;
        let sort = LexOrdering::new(sort)
            .ok_or_else(|| DataFusionError::Internal("SessionizeExec without a sort".into()))?;
        Ok(Arc::new(SessionizeExec::try_new(
            mode,
            Arc::clone(input),
            window,
            sort,
            partition_keys,
        )?))
    }

    fn encode_sessionize(
        &self,
        node: &SessionizeExec,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let window = serialize_physical_window_expr(node.window_expr(), self, proto_converter)?
            .encode_to_vec();
        let sort = protobuf::PhysicalSortExprNodeCollection {
            physical_sort_expr_nodes: serialize_physical_sort_exprs(
                node.sort().iter().cloned(),
                self,
                proto_converter,
            )?,
        };
        let length = |n: usize, what: &str| {
            u32::try_from(n)
                .map_err(|_| DataFusionError::Internal(format!("SessionizeExec's {what}: {n}")))
        };
        buf.extend_from_slice(SESSIONIZE);
        buf.push(match node.mode() {
            SessionizeMode::SortInMemory => 0,
            SessionizeMode::Presorted => 1,
            SessionizeMode::SortSpilling => 2,
        });
        buf.extend_from_slice(&length(node.partition_keys(), "partition keys")?.to_le_bytes());
        buf.extend_from_slice(&length(window.len(), "window")?.to_le_bytes());
        buf.extend_from_slice(&window);
        sort.encode(buf)
            .map_err(|e| DataFusionError::Internal(format!("SessionizeExec's sort: {e}")))
    }
}

impl PhysicalExtensionCodec for DwellPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(sessionize) = buf.strip_prefix(SESSIONIZE) {
            return self.decode_sessionize(sessionize, inputs, ctx, proto_converter);
        }
        let Some(filter) = buf.strip_prefix(ACCOUNT_FILTER) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "an account filter has one input, not {}",
                inputs.len()
            )));
        };
        let (account, rest) = split_text(filter)?;
        let mut numbers = rest
            .chunks_exact(4)
            .map(|n| u32::from_le_bytes(n.try_into().expect("chunks of 4")) as usize);
        let account_at = numbers
            .next()
            .ok_or_else(|| DataFusionError::Internal("an account filter without columns".into()))?;
        let output: Vec<usize> = numbers.collect();
        Ok(Arc::new(AccountFilterExec::new(
            Arc::clone(input),
            account_at,
            account,
            output,
        )?))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(sessionize) = node.downcast_ref::<SessionizeExec>() {
            return self.encode_sessionize(sessionize, buf, proto_converter);
        }
        let Some(filter) = node.downcast_ref::<AccountFilterExec>() else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        buf.extend_from_slice(ACCOUNT_FILTER);
        push_text(buf, filter.account());
        for column in std::iter::once(filter.account_at()).chain(filter.output().iter().copied()) {
            let column = u32::try_from(column).map_err(|_| {
                DataFusionError::Internal(format!("column {column} of an account filter"))
            })?;
            buf.extend_from_slice(&column.to_le_bytes());
        }
        Ok(())
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf).unwrap_or_else(|| self.ballista.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_udf(node, buf) {
            return Ok(());
        }
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

/// Appends `text` with its length (4 bytes, little-endian) before it.
fn push_text(buf: &mut Vec<u8>, text: &str) {
    let length = u32::try_from(text.len()).expect("an account name shorter than 4 GiB");
    buf.extend_from_slice(&length.to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
}

/// The text [`push_text`] wrote at the start of `buf`, and the bytes after it.
fn split_text(buf: &[u8]) -> Result<(String, &[u8])> {
    let malformed = || DataFusionError::Internal("a malformed dwell plan message".into());
    let (length, rest) = buf.split_first_chunk::<4>().ok_or_else(malformed)?;
    let length = u32::from_le_bytes(*length) as usize;
    if rest.len() < length {
        return Err(malformed());
    }
    let (text, rest) = rest.split_at(length);
    let text = std::str::from_utf8(text).map_err(|_| malformed())?;
    Ok((text.to_owned(), rest))
}
