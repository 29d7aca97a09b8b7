//! The commands, one module each, and what they share: opening the engine over the data
//! location and waiting for the signal that stops a server.

mod compact;
mod executor;
mod generate;
mod ingest;
mod rebuild;
mod scheduler;
mod serve;
mod sql;

pub(crate) use compact::compact;
pub(crate) use executor::executor;
pub(crate) use generate::generate;
pub(crate) use ingest::ingest;
pub(crate) use rebuild::rebuild;
pub(crate) use scheduler::scheduler;
pub(crate) use serve::serve;
pub(crate) use sql::sql;

use dwell_engine::{DataLocation, Engine, StoreSettings};

use crate::args::{ClusterArg, DataArg};
use crate::errors::Result;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The storage limits `--store-timeout` and `--store-retries` ask for.
fn store_settings(data: &DataArg) -> StoreSettings {
    StoreSettings {
        timeout: data.store_timeout,
        connect_timeout: data.store_timeout.min(std::time::Duration::from_secs(5)),
        retries: data.store_retries,
        retry_timeout: data.store_timeout.saturating_mul(2),
    }
}

/// The engine over `data`, in this process; `create` makes the location if it is missing.
async fn open(data: &DataArg, create: bool) -> Result<Engine> {
    open_on(data, create, &ClusterArg { cluster: None }).await
}

/// The engine over `data`, its builder adjusted by `adjust`.
async fn open_with(
    data: &DataArg,
    create: bool,
    adjust: impl FnOnce(dwell_engine::EngineBuilder) -> dwell_engine::EngineBuilder,
) -> Result<Engine> {
    let store = store_settings(data);
    let location = DataLocation::parse_with(&data.data, &store)?;
    let builder = Engine::builder(location)
        .create_if_missing(create)
        .with_memory_limit(data.memory_limit)
        .with_store_settings(store);
    Ok(adjust(builder).build().await?)
}

/// The engine over `data`, running its queries on `cluster` if one is given.
async fn open_on(data: &DataArg, create: bool, cluster: &ClusterArg) -> Result<Engine> {
    let store = store_settings(data);
    let location = DataLocation::parse_with(&data.data, &store)?;
    let mut builder = Engine::builder(location.clone())
        .create_if_missing(create)
        .with_memory_limit(data.memory_limit)
        .with_store_settings(store);
    if let Some(url) = &cluster.cluster {
        let url: dwell_cluster::ClusterUrl = url.parse()?;
        builder = builder.with_state_upgrade(dwell_cluster::client_upgrade(&url, &location)?);
    }
    Ok(builder.build().await?)
}
