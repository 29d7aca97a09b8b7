//! Prepared statements: the handles the server mints for them, who owns each, how many may be
//! open at once, and what creating, binding parameters to and closing one does.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::sql::ActionCreatePreparedStatementResult;
use arrow_flight::{IpcMessage, SchemaAsIpc};
use bytes::Bytes;
use datafusion::execution::SessionState;
use tonic::Status;

use crate::auth::Caller;
use crate::statement::{self, plan_read_only, wire_schema};

/// A prepared statement: its SQL, its owner and the parameters bound last.
#[derive(Debug)]
struct Prepared {
    sql: String,
    owner: Caller,
    params: Option<RecordBatch>,
}

/// The open prepared statements of the server, by handle.
#[derive(Debug)]
pub(crate) struct PreparedStatements {
    statements: Mutex<HashMap<String, Prepared>>,
    /// Most prepared statements open at once, over all clients.
    max_open: usize,
}

/// The map key of a handle a client sent back; one that is not UTF-8 matches no statement.
fn handle_key(handle: &[u8]) -> &str {
    std::str::from_utf8(handle).unwrap_or_default()
}

/// A new handle: 16 random bytes in hex, so a client cannot guess another's.
fn mint_handle() -> Result<String, Status> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|_| Status::internal("no randomness for a handle"))?;
    Ok(raw.iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

fn schema_bytes(schema: &Schema) -> Result<Bytes, Status> {
    let IpcMessage(bytes) =
        SchemaAsIpc::new(schema, &arrow::ipc::writer::IpcWriteOptions::default())
            .try_into()
            .map_err(|e: arrow::error::ArrowError| {
                Status::internal(format!("cannot encode a schema: {e}"))
            })?;
    Ok(bytes)
}

impl PreparedStatements {
    pub(crate) fn new(max_open: usize) -> Self {
        PreparedStatements {
            statements: Mutex::new(HashMap::new()),
            max_open,
        }
    }

    fn statements(&self) -> MutexGuard<'_, HashMap<String, Prepared>> {
        // The map holds whole entries only; a panic elsewhere does not leave it half-changed.
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The SQL and parameters of a prepared statement the caller owns.
    pub(crate) fn get(
        &self,
        handle: &[u8],
        caller: &Caller,
    ) -> Result<(String, Option<RecordBatch>), Status> {
        match self.statements().get(handle_key(handle)) {
            Some(p) if &p.owner == caller => Ok((p.sql.clone(), p.params.clone())),
            _ => Err(Status::not_found(
                "no such prepared statement (closed, or created on another connection or server)",
            )),
        }
    }

    /// Plans `sql` read-only in the owner's `state` and, if the limit allows, opens a prepared
    /// statement for it.
    pub(crate) async fn create(
        &self,
        state: &SessionState,
        sql: String,
        owner: Caller,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let plan = plan_read_only(state, &sql).await?;
        let dataset_schema = wire_schema(plan.schema().as_arrow());
        let parameter_schema = statement::parameter_schema(&plan)?;
        let handle = mint_handle()?;
        {
            let mut statements = self.statements();
            if statements.len() >= self.max_open {
                return Err(Status::resource_exhausted(
                    "too many open prepared statements: close the ones you no longer need",
                ));
            }
            statements.insert(
                handle.clone(),
                Prepared {
                    sql,
                    owner,
                    params: None,
                },
            );
        }
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: schema_bytes(&dataset_schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        })
    }

    /// Binds the sent batches, as one, as the parameters of a statement the caller owns.
    pub(crate) fn bind(
        &self,
        handle: &[u8],
        caller: &Caller,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), Status> {
        let params = arrow::compute::concat_batches(schema, batches)
            .map_err(|e| Status::invalid_argument(format!("bad parameters: {e}")))?;
        match self.statements().get_mut(handle_key(handle)) {
            Some(p) if &p.owner == caller => p.params = Some(params),
            _ => return Err(Status::not_found("no such prepared statement")),
        }
        Ok(())
    }

    /// Closes a statement the caller owns.
    pub(crate) fn close(&self, handle: &[u8], caller: &Caller) -> Result<(), Status> {
        let key = handle_key(handle);
        let mut statements = self.statements();
        match statements.get(key) {
            Some(p) if &p.owner == caller => {
                statements.remove(key);
                Ok(())
            }
            _ => Err(Status::not_found("no such prepared statement")),
        }
    }
}
