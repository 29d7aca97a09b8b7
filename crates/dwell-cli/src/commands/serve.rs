//! `dwell serve`: the Arrow Flight SQL server over the data location, until SIGINT or SIGTERM.

use std::io::Write;

use super::{open_on, stop_signal};
use crate::args::ServeArgs;
use crate::errors::{Result, io};

pub(crate) async fn serve(args: ServeArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let auth = args
        .auth
        .as_deref()
        .map(dwell_flight::AuthConfig::read)
        .transpose()?;
    let engine = open_on(&args.data, false, &args.cluster).await?;
    let mut options = dwell_flight::ServerOptions::new(args.listen);
    options.auth = auth;
    options.allow_unauthenticated_remote = args.allow_unauthenticated;
    options.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(dwell_flight::TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if options.tls.is_some() {
        "grpc+tls"
    } else {
        "grpc"
    };
    let server = dwell_flight::FlightServer::bind(std::sync::Arc::new(engine), options).await?;
    writeln!(
        out,
        "dwell serve: listening on {scheme}://{}",
        server.local_addr()
    )
    .and_then(|()| out.flush())
    .map_err(io("standard output"))?;
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        stop_signal().await;
        let _ = stopping_tx.send(());
    };
    let grace = std::time::Duration::from_secs(args.shutdown_grace);
    let serving = server.serve_until(shutdown);
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async {
            // After the signal, calls in progress get the grace period, then the process ends.
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            eprintln!("dwell serve: calls still running after {}s; stopping them", grace.as_secs());
        }
    }
    Ok(())
}
