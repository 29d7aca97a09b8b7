//! dwell's Arrow Flight SQL server: BI tools (JDBC, ADBC, flightsql-dbapi, Grafana) query the
//! session views of one [`Engine`] over gRPC.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use dwell_engine::{DataLocation, Engine};
//! use dwell_flight::{FlightServer, ServerOptions};
//!
//! let engine = Engine::builder(DataLocation::parse("data")?).build().await?;
//! let options = ServerOptions::new("127.0.0.1:50051".parse()?);
//! let server = FlightServer::bind(Arc::new(engine), options).await?;
//! println!("listening on {}", server.local_addr());
//! server.serve_until(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! What the server does, and where:
//!
//! - `front.rs`: every call is authenticated ([`AuthConfig`]: Basic credentials and bearer
//!   tokens), bounded by the client's deadline, and logged (one line: method, command, caller,
//!   time, rows, outcome; never credentials or SQL). Result streams dropped by a client stop
//!   their query.
//! - `service.rs`: the Flight SQL commands, each routed to the module that owns it; statements
//!   run here, and bulk ingest into `events` goes through the engine's validated, atomic ingest.
//! - `prepared.rs`: prepared statements with parameters: random handles, one owner each, a
//!   limit on how many are open.
//! - `metadata/`: catalogs/schemas/tables/table types, SQL info, type info and the empty key
//!   listings: decoding, result schemas and answers.
//! - `statement.rs`: SQL is planned read-only (DDL, DML, `COPY`, `SET` refused anywhere in the
//!   plan); `?` placeholders are numbered; results go out with plain `Utf8`/`Binary` instead
//!   of view types, in exactly the schema `GetFlightInfo` announced.
//! - `status.rs`: the one mapping from errors to gRPC codes.

mod auth;
mod error;
mod front;
mod log;
mod metadata;
mod prepared;
mod service;
mod statement;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow_flight::flight_service_server::FlightServiceServer;
use dwell_engine::Engine;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use auth::AuthConfig;
pub use error::{Error, Result};

use auth::Authenticator;
use front::{Front, OpenStreams};
use service::{Limits, SqlService};

/// Largest gRPC message the server accepts or sends (a batch of an ingest, a result chunk).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// PEM files of the server's certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// How to serve.
#[derive(Debug)]
pub struct ServerOptions {
    /// Where to listen; port 0 picks a free one (see [`FlightServer::local_addr`]).
    pub listen: SocketAddr,
    /// Who may connect; `None` lets anyone in, which is allowed on loopback only unless
    /// `allow_unauthenticated_remote` is set.
    pub auth: Option<AuthConfig>,
    /// Serve TLS instead of plain gRPC.
    pub tls: Option<TlsFiles>,
    /// Serve without authentication on a non-loopback address.
    pub allow_unauthenticated_remote: bool,
    /// Most prepared statements open at once.
    pub max_prepared_statements: usize,
    /// Most bytes one `DoPut` may send (ingest or parameters).
    pub max_put_bytes: usize,
}

impl ServerOptions {
    /// Defaults: no auth, no TLS, 10,000 prepared statements, 1 GiB per `DoPut`.
    #[must_use]
    pub fn new(listen: SocketAddr) -> Self {
        ServerOptions {
            listen,
            auth: None,
            tls: None,
            allow_unauthenticated_remote: false,
            max_prepared_statements: 10_000,
            max_put_bytes: 1 << 30,
        }
    }
}

/// Binds `listen` for one of dwell's servers (Flight SQL, the page): without authentication
/// only a loopback address, unless `allow_unauthenticated_remote`. The error is the reason, for
/// the caller's own error type to name the address.
pub async fn bind_listener(
    listen: SocketAddr,
    authenticated: bool,
    allow_unauthenticated_remote: bool,
) -> std::result::Result<(tokio::net::TcpListener, SocketAddr), String> {
    if !authenticated && !listen.ip().is_loopback() && !allow_unauthenticated_remote {
        return Err(
            "without --auth dwell serves only loopback addresses; give --auth FILE \
                    (or --allow-unauthenticated to serve the network without it)"
                .into(),
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    let local_addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, local_addr))
}

/// A bound server, ready to serve.
#[derive(Debug)]
pub struct FlightServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    front: Front,
    tls: Option<ServerTlsConfig>,
}

/// Reads a handle to a serving server's counters.
#[derive(Debug, Clone)]
pub struct ServerStats {
    open: OpenStreams,
}

impl ServerStats {
    /// Result streams (query results, metadata, puts) open right now.
    #[must_use]
    pub fn open_streams(&self) -> usize {
        self.open.0.load(Ordering::SeqCst)
    }
}

impl FlightServer {
    /// Checks the options, reads the TLS files and binds the address.
    pub async fn bind(engine: Arc<Engine>, options: ServerOptions) -> Result<FlightServer> {
        let (listener, local_addr) = bind_listener(
            options.listen,
            options.auth.is_some(),
            options.allow_unauthenticated_remote,
        )
        .await
        .map_err(|reason| Error::Listen {
            address: options.listen.to_string(),
            reason,
        })?;
        let tls = match &options.tls {
            None => None,
            Some(files) => {
                let read = |path: &PathBuf| {
                    std::fs::read(path)
                        .map_err(|e| Error::Tls(format!("cannot read {}: {e}", path.display())))
                };
                let identity = Identity::from_pem(read(&files.cert)?, read(&files.key)?);
                Some(ServerTlsConfig::new().identity(identity))
            }
        };
        let auth = Arc::new(Authenticator::new(options.auth));
        let limits = Limits {
            max_prepared_statements: options.max_prepared_statements,
            max_ingest_bytes: options.max_put_bytes,
        };
        let inner = Arc::new(SqlService::new(engine, Arc::clone(&auth), limits));
        Ok(FlightServer {
            listener,
            local_addr,
            front: Front {
                inner,
                auth,
                open: OpenStreams::default(),
            },
            tls,
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters of the server, readable while it serves.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            open: self.front.open.clone(),
        }
    }

    /// Serves until `shutdown` completes, then lets calls in progress finish.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder
                .tls_config(tls)
                .map_err(|e| Error::Tls(e.to_string()))?;
        }
        let service = FlightServiceServer::new(self.front)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        log::info(&format!("dwell serve: listening on {}", self.local_addr));
        builder
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        log::info("dwell serve: stopped");
        Ok(())
    }
}
