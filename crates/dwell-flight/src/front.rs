//! The front door: every call is authenticated, bounded by its deadline and logged, then
//! handed to the Flight SQL service; `GetSchema` (which arrow-flight's `FlightSqlService` does
//! not route) is answered here.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::Any;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::{FutureExt, Stream};
use prost::Message;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Caller};
use crate::log::{self, CallRecord, Outcome};
use crate::service::{RowCount, SqlService};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Counts result streams open right now (a client that goes away closes its stream).
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenStreams(pub(crate) Arc<AtomicUsize>);

/// The service tonic serves.
#[derive(Debug, Clone)]
pub(crate) struct Front {
    pub(crate) inner: Arc<SqlService>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) open: OpenStreams,
}

/// The deadline a client set (`grpc-timeout`), if any.
fn deadline_of(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The status of a call whose handler panicked; the panic's text goes to the log only.
fn panicked(payload: &(dyn std::any::Any + Send)) -> Status {
    crate::log::detail(
        Code::Internal,
        &format!("a call panicked: {}", dwell_engine::panic_message(payload)),
    );
    Status::internal(
        "internal error in the server (this query only); the server log has the details",
    )
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("the call ran past its deadline; the server stopped its work")
}

/// The short name of the Flight SQL command inside a descriptor or ticket.
fn command_name(bytes: &[u8]) -> String {
    Any::decode(bytes).map_or_else(
        |_| "-".to_owned(),
        |any| any.type_url.rsplit('.').next().unwrap_or("-").to_owned(),
    )
}

/// One call in flight: who, what, since when; logs itself when finished.
struct Call {
    method: &'static str,
    command: String,
    caller: String,
    start: Instant,
    rows: Option<RowCount>,
}

impl Call {
    fn new(method: &'static str, command: String) -> Self {
        Call {
            method,
            command,
            caller: "-".into(),
            start: Instant::now(),
            rows: None,
        }
    }

    fn finish(&self, outcome: Outcome) {
        log::call(&CallRecord {
            method: self.method,
            command: &self.command,
            caller: &self.caller,
            elapsed: self.start.elapsed(),
            rows: self
                .rows
                .as_ref()
                .map(|r| r.0.load(std::sync::atomic::Ordering::Relaxed)),
            outcome,
        });
    }

    fn outcome<T>(&self, result: &Result<T, Status>) {
        self.finish(match result {
            Ok(_) => Outcome::Ok,
            Err(status) => Outcome::Failed(status.code()),
        });
    }
}

/// A response stream that stops at the deadline, counts itself open, and logs its call when
/// it ends or is dropped.
struct Watched<T> {
    inner: Option<BoxStream<T>>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    call: Option<Call>,
    open: OpenStreams,
}

impl<T> Watched<T> {
    fn new(inner: BoxStream<T>, deadline: Option<Duration>, call: Call, open: OpenStreams) -> Self {
        open.0.fetch_add(1, Ordering::SeqCst);
        Watched {
            inner: Some(inner),
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep(d))),
            call: Some(call),
            open,
        }
    }

    fn end(&mut self, outcome: Outcome) {
        // Dropping the inner stream drops the query and every task it spawned.
        self.inner = None;
        if let Some(call) = self.call.take() {
            call.finish(outcome);
            self.open.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<T> Stream for Watched<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
            && this.inner.is_some()
        {
            this.end(Outcome::Failed(Code::DeadlineExceeded));
            return Poll::Ready(Some(Err(deadline_exceeded())));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx)))
            .unwrap_or_else(|panic| Poll::Ready(Some(Err(panicked(panic.as_ref())))));
        match polled {
            Poll::Ready(None) => {
                this.end(Outcome::Ok);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(status))) => {
                // The error ends the call: log it and stop the query now.
                this.end(Outcome::Failed(status.code()));
                Poll::Ready(Some(Err(status)))
            }
            other => other,
        }
    }
}

impl<T> Drop for Watched<T> {
    fn drop(&mut self) {
        self.end(Outcome::Abandoned);
    }
}

impl Front {
    /// Authenticates a request and marks it with its caller.
    fn admit<T>(&self, request: &mut Request<T>, call: &mut Call) -> Result<(), Status> {
        let caller: Caller = self.auth.caller(request.metadata())?;
        call.caller = caller.to_string();
        request.extensions_mut().insert(caller);
        Ok(())
    }

    /// Authenticates the request, then runs the handler within the deadline.
    async fn admit_and_run<T, R, F>(
        &self,
        mut request: Request<T>,
        call: &mut Call,
        deadline: Option<Duration>,
        run: impl FnOnce(Request<T>) -> F,
    ) -> Result<R, Status>
    where
        F: Future<Output = Result<R, Status>>,
    {
        self.admit(&mut request, call)?;
        // A panic in a handler (a decoder's arithmetic on a damaged file, say) ends this call
        // with INTERNAL; the connection and the other calls on it go on.
        let contained = AssertUnwindSafe(run(request))
            .catch_unwind()
            .map(|result| result.unwrap_or_else(|panic| Err(panicked(panic.as_ref()))));
        match deadline {
            Some(d) => tokio::time::timeout(d, contained)
                .await
                .unwrap_or_else(|_| Err(deadline_exceeded())),
            None => contained.await,
        }
    }

    /// Runs a unary call within its deadline and logs it.
    async fn unary<T, R, F>(
        &self,
        request: Request<T>,
        mut call: Call,
        run: impl FnOnce(Request<T>) -> F,
    ) -> Result<R, Status>
    where
        F: Future<Output = Result<R, Status>>,
    {
        let deadline = deadline_of(request.metadata());
        let result = self.admit_and_run(request, &mut call, deadline, run).await;
        call.outcome(&result);
        result
    }

    /// Runs a streaming call: admission and the first response within the deadline, then the
    /// stream watched (deadline, open count, log).
    async fn streaming<T, R, F>(
        &self,
        mut request: Request<T>,
        mut call: Call,
        run: impl FnOnce(Request<T>) -> F,
    ) -> Result<Response<BoxStream<R>>, Status>
    where
        F: Future<Output = Result<Response<BoxStream<R>>, Status>>,
        R: 'static,
    {
        let deadline = deadline_of(request.metadata());
        let started = Instant::now();
        // Calls that move rows (DoGet, DoPut) count them for the log.
        if matches!(call.method, "DoGet" | "DoPut") {
            let rows = RowCount::default();
            request.extensions_mut().insert(rows.clone());
            call.rows = Some(rows);
        }
        let result = self.admit_and_run(request, &mut call, deadline, run).await;
        match result {
            Err(status) => {
                call.finish(Outcome::Failed(status.code()));
                Err(status)
            }
            Ok(response) => {
                let left = deadline.map(|d| d.saturating_sub(started.elapsed()));
                let (metadata, stream, extensions) = response.into_parts();
                let watched: BoxStream<R> =
                    Box::pin(Watched::new(stream, left, call, self.open.clone()));
                Ok(Response::from_parts(metadata, watched, extensions))
            }
        }
    }
}

#[tonic::async_trait]
impl FlightService for Front {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;
    type DoExchangeStream = BoxStream<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        // The handshake authenticates itself (Basic in, token out).
        let call = Call::new("Handshake", "-".into());
        let result = FlightService::handshake(self.inner.as_ref(), request).await;
        call.outcome(&result);
        result
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.unary(request, Call::new("ListFlights", "-".into()), |_| async {
            Err(Status::unimplemented(
                "ListFlights: dwell has no stored flights; browse with GetTables",
            ))
        })
        .await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let call = Call::new("GetFlightInfo", command_name(&request.get_ref().cmd));
        let inner = Arc::clone(&self.inner);
        self.unary(request, call, |r| async move {
            FlightService::get_flight_info(inner.as_ref(), r).await
        })
        .await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.unary(
            request,
            Call::new("PollFlightInfo", "-".into()),
            |_| async {
                Err(Status::unimplemented(
                    "PollFlightInfo: use GetFlightInfo (queries stream as they run)",
                ))
            },
        )
        .await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let call = Call::new("GetSchema", command_name(&request.get_ref().cmd));
        let inner = Arc::clone(&self.inner);
        self.unary(request, call, |r| async move {
            let caller = r
                .extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| Status::unauthenticated("no authenticated caller"))?;
            let schema = inner.schema_of(r.get_ref(), &caller).await?;
            let result =
                SchemaResult::try_from(SchemaAsIpc::new(&schema, &IpcWriteOptions::default()))
                    .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))?;
            Ok(Response::new(result))
        })
        .await
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let call = Call::new("DoGet", command_name(&request.get_ref().ticket));
        let inner = Arc::clone(&self.inner);
        self.streaming(request, call, |r| async move {
            FlightService::do_get(inner.as_ref(), r).await
        })
        .await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let inner = Arc::clone(&self.inner);
        self.streaming(request, Call::new("DoPut", "-".into()), |r| async move {
            FlightService::do_put(inner.as_ref(), r).await
        })
        .await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.unary(request, Call::new("DoExchange", "-".into()), |_| async {
            Err(Status::unimplemented(
                "DoExchange is not part of Flight SQL",
            ))
        })
        .await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let call = Call::new("DoAction", request.get_ref().r#type.clone());
        let inner = Arc::clone(&self.inner);
        self.streaming(request, call, |r| async move {
            FlightService::do_action(inner.as_ref(), r).await
        })
        .await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let inner = Arc::clone(&self.inner);
        self.streaming(
            request,
            Call::new("ListActions", "-".into()),
            |r| async move { FlightService::list_actions(inner.as_ref(), r).await },
        )
        .await
    }
}
