//! The Flight SQL service over one [`Engine`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt,
    SqlInfo, TableExistsOption, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use bytes::Bytes;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use dwell_engine::Engine;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Caller};
use crate::metadata::{Metadata, MetadataCommand};
use crate::prepared::PreparedStatements;
use crate::statement::{self, plan_read_only, to_wire, wire_schema};
use crate::status::{df_status, engine_status};

/// Rows sent by a `DoGet`, read by the request log when the stream ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowCount(pub(crate) Arc<AtomicU64>);

/// Limits that keep one client from taking the server down.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Most prepared statements open at once, over all clients.
    pub(crate) max_prepared_statements: usize,
    /// Most Arrow bytes one ingest may send.
    pub(crate) max_ingest_bytes: usize,
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

/// The Flight SQL service; [`crate::front::Front`] authenticates, logs and adds `GetSchema`.
pub(crate) struct SqlService {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    prepared: PreparedStatements,
    metadata: Metadata,
    limits: Limits,
}

impl std::fmt::Debug for SqlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlService")
            .field("engine", &self.engine)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    // The front door puts the authenticated caller on every request it lets through.
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

fn rows_of<T>(request: &Request<T>) -> RowCount {
    request
        .extensions()
        .get::<RowCount>()
        .cloned()
        .unwrap_or_default()
}

/// A `FlightInfo` whose one endpoint's ticket is `ticket`.
pub(crate) fn flight_info(
    schema: &Schema,
    ticket: Bytes,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket { ticket }))
        .with_descriptor(descriptor))
}

/// Streams one metadata batch.
fn one_batch(batch: RecordBatch, rows: &RowCount) -> DoGetStream {
    rows.0.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
    let schema = batch.schema();
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(stream::iter([Ok(batch)]))
            .map_err(Status::from),
    )
}

impl SqlService {
    pub(crate) fn new(engine: Arc<Engine>, auth: Arc<Authenticator>, limits: Limits) -> Self {
        let metadata = Metadata::new(engine.context());
        SqlService {
            engine,
            auth,
            prepared: PreparedStatements::new(limits.max_prepared_statements),
            metadata,
            limits,
        }
    }

    /// The context the caller's SQL and metadata calls see: its account's tables only, or all.
    async fn context(&self, caller: &Caller) -> Result<SessionContext, Status> {
        self.engine
            .context_for(&caller.scope)
            .await
            .map_err(|e| engine_status(&e))
    }

    /// Plans SQL read-only in the caller's context, with parameters bound when given.
    pub(crate) async fn plan(
        &self,
        caller: &Caller,
        sql: &str,
        params: Option<&RecordBatch>,
    ) -> Result<(SessionContext, LogicalPlan), Status> {
        let ctx = self.context(caller).await?;
        let plan = plan_read_only(&ctx.state(), sql).await?;
        Ok((ctx, statement::bind(plan, params)?))
    }

    /// The wire schema of a query's results.
    pub(crate) async fn result_schema(
        &self,
        caller: &Caller,
        sql: &str,
        params: Option<&RecordBatch>,
    ) -> Result<SchemaRef, Status> {
        let (_, plan) = self.plan(caller, sql, params).await?;
        Ok(wire_schema(plan.schema().as_arrow()))
    }

    fn metadata_info(
        &self,
        command: MetadataCommand,
        any: Any,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.metadata.schema(&command);
        let info = flight_info(&schema, any.encode_to_vec().into(), descriptor)?;
        Ok(Response::new(info))
    }

    async fn metadata_stream<T>(
        &self,
        command: MetadataCommand,
        request: &Request<T>,
    ) -> Result<Response<DoGetStream>, Status> {
        let ctx = self.context(&caller_of(request)?).await?;
        let batch = self.metadata.answer(command, &ctx).await?;
        Ok(Response::new(one_batch(batch, &rows_of(request))))
    }

    /// Executes a query and streams it in its wire schema.
    async fn execute(
        &self,
        caller: &Caller,
        ticket: statement::Ticket,
        rows: RowCount,
    ) -> Result<Response<DoGetStream>, Status> {
        let (ctx, plan) = self
            .plan(caller, &ticket.sql, ticket.params.as_ref())
            .await?;
        let schema = wire_schema(plan.schema().as_arrow());
        let frame = DataFrame::new(ctx.state(), plan);
        let batches = frame.execute_stream().await.map_err(|e| df_status(&e))?;
        let out_schema = Arc::clone(&schema);
        let batches = batches.map(move |batch| {
            let batch = batch.map_err(|e| FlightError::Tonic(Box::new(df_status(&e))))?;
            let batch =
                to_wire(&batch, &out_schema).map_err(|s| FlightError::Tonic(Box::new(s)))?;
            rows.0.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            Ok(batch)
        });
        // Dropping this stream (client gone, deadline) drops the DataFusion stream and with it
        // every task the query spawned.
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(flight)))
    }

    /// The batches a `DoPut` carries, up to the ingest limit.
    async fn collect_put(
        &self,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let flight = request.into_inner().map_err(FlightError::from);
        let mut decoded = FlightRecordBatchStream::new_from_flight_data(flight);
        let mut batches = Vec::new();
        let mut bytes = 0usize;
        while let Some(batch) = decoded.next().await {
            let batch = batch.map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => {
                    Status::invalid_argument(format!("cannot decode the sent batches: {other}"))
                }
            })?;
            bytes += batch.get_array_memory_size();
            if bytes > self.limits.max_ingest_bytes {
                return Err(Status::resource_exhausted(format!(
                    "one DoPut may send at most {} MiB; split the data into several calls",
                    self.limits.max_ingest_bytes >> 20
                )));
            }
            batches.push(batch);
        }
        let schema = decoded
            .schema()
            .cloned()
            .or_else(|| batches.first().map(RecordBatch::schema))
            .ok_or_else(|| Status::invalid_argument("the DoPut stream carried no schema"))?;
        Ok((schema, batches))
    }
}

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let issued = self.auth.handshake(request.metadata())?;
        let payload = issued
            .as_ref()
            .map(|(_, token)| Bytes::from(token.clone()))
            .unwrap_or_default();
        let output = stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload,
        })]);
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(output));
        if let Some((_, token)) = issued {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("cannot encode the token"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        if query.transaction_id.is_some() {
            return Err(Status::unimplemented("dwell has no transactions"));
        }
        let schema = self
            .result_schema(&caller_of(&request)?, &query.query, None)
            .await?;
        let ticket = statement::Ticket {
            sql: query.query,
            params: None,
        };
        let handle = TicketStatementQuery {
            statement_handle: ticket.encode()?,
        };
        let info = flight_info(
            &schema,
            handle.as_any().encode_to_vec().into(),
            request.into_inner(),
        )?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = caller_of(&request)?;
        let (sql, params) = self
            .prepared
            .get(&query.prepared_statement_handle, &caller)?;
        let schema = self.result_schema(&caller, &sql, params.as_ref()).await?;
        let ticket = statement::Ticket { sql, params };
        let handle = TicketStatementQuery {
            statement_handle: ticket.encode()?,
        };
        let info = flight_info(
            &schema,
            handle.as_any().encode_to_vec().into(),
            request.into_inner(),
        )?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any();
        self.metadata_info(MetadataCommand::Catalogs(query), any, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any();
        self.metadata_info(MetadataCommand::Schemas(query), any, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any();
        self.metadata_info(MetadataCommand::Tables(query), any, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any();
        self.metadata_info(
            MetadataCommand::TableTypes(query),
            any,
            request.into_inner(),
        )
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any();
        self.metadata_info(MetadataCommand::SqlInfo(query), any, request.into_inner())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            MetadataCommand::PrimaryKeys,
            query.as_any(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            MetadataCommand::ForeignKeys,
            query.as_any(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            MetadataCommand::ForeignKeys,
            query.as_any(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            MetadataCommand::ForeignKeys,
            query.as_any(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any();
        self.metadata_info(MetadataCommand::TypeInfo(query), any, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        // The ticket holds SQL, not data: it runs in the context of whoever presents it.
        let ticket = statement::Ticket::decode(&ticket.statement_handle)?;
        self.execute(&caller_of(&request)?, ticket, rows_of(&request))
            .await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = caller_of(&request)?;
        let (sql, params) = self
            .prepared
            .get(&query.prepared_statement_handle, &caller)?;
        self.execute(
            &caller,
            statement::Ticket { sql, params },
            rows_of(&request),
        )
        .await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::Catalogs(query), &request)
            .await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::Schemas(query), &request)
            .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::Tables(query), &request)
            .await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::TableTypes(query), &request)
            .await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::SqlInfo(query), &request)
            .await
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::PrimaryKeys, &request)
            .await
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::ForeignKeys, &request)
            .await
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::ForeignKeys, &request)
            .await
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::ForeignKeys, &request)
            .await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.metadata_stream(MetadataCommand::TypeInfo(query), &request)
            .await
    }

    async fn do_put_statement_update(
        &self,
        query: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        // Anything that would change data is refused by the read-only planner; a query is not
        // an update.
        self.plan(&caller_of(&request)?, &query.query, None).await?;
        Err(Status::invalid_argument(
            "this statement returns rows: run it as a query, not an update",
        ))
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = caller_of(&request)?;
        let (sql, _) = self
            .prepared
            .get(&query.prepared_statement_handle, &caller)?;
        self.plan(&caller, &sql, None).await?;
        Err(Status::invalid_argument(
            "this statement returns rows: run it as a query, not an update",
        ))
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = caller_of(&request)?;
        let rows = rows_of(&request);
        check_ingest_target(&command)?;
        let (schema, batches) = self.collect_put(request).await?;
        let source = format!("ingest into events by {caller}");
        let report = self
            .engine
            .ingest_batches_for(&caller.scope, &source, &schema, &batches)
            .await
            .map_err(|e| engine_status(&e))?;
        rows.0.fetch_add(report.rows as u64, Ordering::Relaxed);
        Ok(report.rows as i64)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = caller_of(&request)?;
        let handle = query.prepared_statement_handle;
        // Owner check before reading the (possibly large) parameter stream.
        self.prepared.get(&handle, &caller)?;
        let (schema, batches) = self.collect_put(request).await?;
        self.prepared.bind(&handle, &caller, &schema, &batches)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle),
        })
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = caller_of(&request)?;
        if query.transaction_id.is_some() {
            return Err(Status::unimplemented("dwell has no transactions"));
        }
        let state = self.context(&caller).await?.state();
        self.prepared.create(&state, query.query, caller).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        let caller = caller_of(&request)?;
        self.prepared
            .close(&query.prepared_statement_handle, &caller)
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Only `events` takes ingest, appended to, never replaced.
fn check_ingest_target(command: &CommandStatementIngest) -> Result<(), Status> {
    if command.transaction_id.is_some() {
        return Err(Status::unimplemented("dwell has no transactions"));
    }
    if command.temporary {
        return Err(Status::invalid_argument("dwell has no temporary tables"));
    }
    let catalog_ok = command
        .catalog
        .as_deref()
        .is_none_or(|c| c.is_empty() || c == "datafusion");
    let schema_ok = command
        .schema
        .as_deref()
        .is_none_or(|s| s.is_empty() || s == "public");
    if !catalog_ok || !schema_ok || command.table != "events" {
        return Err(Status::permission_denied(format!(
            "only the table events (datafusion.public.events) takes ingest, not {}",
            [
                command.catalog.as_deref(),
                command.schema.as_deref(),
                Some(command.table.as_str())
            ]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(".")
        )));
    }
    let options = command.table_definition_options.unwrap_or_default();
    match TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified) {
        TableExistsOption::Append => {}
        TableExistsOption::Replace => {
            return Err(Status::permission_denied(
                "dwell never replaces stored events: ingest with mode append",
            ));
        }
        TableExistsOption::Fail | TableExistsOption::Unspecified => {
            return Err(Status::already_exists(
                "events exists: ingest with mode append (or create_append)",
            ));
        }
    }
    // `if_not_exist` does not matter: events always exists.
    Ok(())
}

impl SqlService {
    /// `GetSchema`: the schema a descriptor's command would return.
    pub(crate) async fn schema_of(
        &self,
        descriptor: &FlightDescriptor,
        caller: &Caller,
    ) -> Result<SchemaRef, Status> {
        let any = Any::decode(&*descriptor.cmd)
            .map_err(|_| Status::invalid_argument("the descriptor holds no Flight SQL command"))?;
        if let Some(query) = any
            .unpack::<CommandStatementQuery>()
            .map_err(|e| Status::invalid_argument(format!("bad command: {e}")))?
        {
            return self.result_schema(caller, &query.query, None).await;
        }
        if let Some(query) = any
            .unpack::<CommandPreparedStatementQuery>()
            .map_err(|e| Status::invalid_argument(format!("bad command: {e}")))?
        {
            let (sql, params) = self
                .prepared
                .get(&query.prepared_statement_handle, caller)?;
            return self.result_schema(caller, &sql, params.as_ref()).await;
        }
        match MetadataCommand::from_any(&any)? {
            Some(command) => Ok(self.metadata.schema(&command)),
            None => Err(Status::unimplemented(format!(
                "GetSchema does not know the command {}",
                any.type_url
            ))),
        }
    }
}
