//! dwell's session analytics page: a few static files embedded in the binary and a small JSON
//! API over the session views of one [`Engine`], served over HTTP/1.1 by `dwell serve --http`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use dwell_engine::{DataLocation, Engine};
//! use dwell_web::{WebOptions, WebServer};
//!
//! let engine = Engine::builder(DataLocation::parse("data")?).build().await?;
//! let server = WebServer::bind(Arc::new(engine), WebOptions::new("127.0.0.1:8080".parse()?)).await?;
//! println!("open http://{}/", server.local_addr());
//! server.serve_until(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! # Who sees what
//!
//! The same `--auth` file as the Flight SQL server ([`AuthConfig`]): a browser logs in with
//! Basic credentials (the server answers `401` with `WWW-Authenticate: Basic`, so the browser
//! asks), scripts may send `authorization: Bearer <token>` with one of the file's tokens. A
//! user or token with `account = "..."` sees that account only, whatever the request asks
//! (the queries run in the engine's context for that account, filtered at the scan); asking
//! for another account is `403`. Without `--auth` the page is served on loopback addresses
//! only, unless `--allow-unauthenticated`. Every query is fixed SQL planned read-only; request
//! values reach it as parameters, never as SQL text.
//!
//! # The JSON API
//!
//! Every endpoint is `GET`, answers `application/json`, and takes the same filters as query
//! parameters, each optional:
//!
//! | parameter | meaning |
//! |---|---|
//! | `from`, `to` | first and last day (`YYYY-MM-DD`, inclusive) of the sessions' `day` (start date in the reporting time zone) |
//! | `account` | one `account_id` (administrators; a tenant may give only its own) |
//! | `app` | one `app_id` |
//!
//! | endpoint | answer |
//! |---|---|
//! | `/api/context` | `{caller, account, accounts[], applications[], first_day, last_day, attributes[]}`: who is asking, whose data (`account` is `null` for every account), the values the filters offer, and the `users` columns segments can be split by |
//! | `/api/summary` | `{sessions, users, total_session_seconds, avg_session_seconds}` |
//! | `/api/daily` | `{rows: [{day, sessions, users, total_session_seconds, avg_session_seconds}]}`, one per day with sessions |
//! | `/api/applications` | `{rows: [{app_id, sessions, users, total_session_seconds, avg_session_seconds}]}` |
//! | `/api/durations` | `{buckets: [{label, lower_seconds, upper_seconds, sessions}]}`: sessions by duration, every bucket present, `upper_seconds` `null` on the last |
//! | `/api/segments?attribute=department` | `{counts: [{segment, users, sessions}], users: [{account_id, user_id, segment, sessions, active_days, sessions_per_active_day, median_session_seconds, total_session_seconds, apps_used}], by_attribute: {attribute, rows: [{value, segment, users}]} or null}`: the segment rule of `user_segments` applied to the filtered sessions; `users` holds at most 100 per segment, most sessions first |
//! | `/api/user?user_id=U` | `{user_id, sessions: [{session_id, account_id, app_id, tab_id, session_seq, start_time, end_time, start_ms, end_ms, duration_seconds, event_count, page_views, user_actions, content_engagements, end_reason}], truncated}`: the user's sessions in time order, at most 1,000 |
//!
//! `users` counts distinct `(account_id, user_id)` pairs. Errors are `{"error": "..."}` with
//! `400` (a bad parameter, named), `401`, `403` or `500` (the query failed; the message says
//! why). Without filters the figures are those of `sessions`, `daily_session_metrics` and
//! `user_segments`.

mod api;
mod assets;
mod json;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use dwell_engine::{Engine, Scope};
pub use dwell_flight::AuthConfig;

/// What can stop the page's server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address cannot be used.
    #[error("--http {address}: {reason}")]
    Listen { address: String, reason: String },
    /// Serving failed.
    #[error("serving the page failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// The page server's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to serve the page.
#[derive(Debug)]
pub struct WebOptions {
    /// Where to listen; port 0 picks a free one (see [`WebServer::local_addr`]).
    pub listen: SocketAddr,
    /// Who may look; `None` lets anyone in, which is allowed on loopback only unless
    /// `allow_unauthenticated_remote` is set.
    pub auth: Option<AuthConfig>,
    /// Serve without authentication on a non-loopback address.
    pub allow_unauthenticated_remote: bool,
}

impl WebOptions {
    /// No authentication (so loopback only).
    #[must_use]
    pub fn new(listen: SocketAddr) -> Self {
        WebOptions {
            listen,
            auth: None,
            allow_unauthenticated_remote: false,
        }
    }
}

/// Who is asking, and whose data they may see.
#[derive(Debug, Clone)]
struct Caller {
    name: String,
    scope: Scope,
}

#[derive(Debug)]
struct App {
    engine: Arc<Engine>,
    auth: Option<AuthConfig>,
}

/// A bound page server, ready to serve.
#[derive(Debug)]
pub struct WebServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    app: Arc<App>,
}

impl WebServer {
    /// Checks the options and binds the address.
    pub async fn bind(engine: Arc<Engine>, options: WebOptions) -> Result<WebServer> {
        let (listener, local_addr) = dwell_flight::bind_listener(
            options.listen,
            options.auth.is_some(),
            options.allow_unauthenticated_remote,
        )
        .await
        .map_err(|reason| Error::Listen {
            address: options.listen.to_string(),
            reason,
        })?;
        Ok(WebServer {
            listener,
            local_addr,
            app: Arc::new(App {
                engine,
                auth: options.auth,
            }),
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets requests in progress finish.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let router = Router::new()
            .merge(assets::routes())
            .merge(api::routes())
            .layer(middleware::from_fn_with_state(Arc::clone(&self.app), front))
            .with_state(self.app);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// Every request: authenticated (`401` asks the browser for Basic credentials), given the
/// headers that keep the page self-contained, and logged in one line (method, path, caller,
/// status, time; never credentials or query values).
async fn front(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let caller = match &app.auth {
        None => Some(Caller {
            name: "anonymous".into(),
            scope: Scope::All,
        }),
        Some(auth) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| auth.check_header(value))
            .map(|(name, scope)| Caller { name, scope }),
    };
    let name = caller
        .as_ref()
        .map_or_else(|| "-".to_owned(), |c| c.name.clone());
    let mut response = if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
        next.run(request).await
    } else {
        let mut response = api::error(
            StatusCode::UNAUTHORIZED,
            "log in with a user or token of the server's --auth file",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"dwell\", charset=\"UTF-8\""),
        );
        response
    };
    let headers = response.headers_mut();
    // Nothing is fetched from anywhere but this server; no caching of tenant data.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    eprintln!(
        "dwell serve: http {method} {path} caller={name} status={} {}ms",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// A response for a request the page cannot answer.
fn not_found() -> Response {
    api::error(StatusCode::NOT_FOUND, "no such page or endpoint").into_response()
}
