//! `dwell serve`: the Arrow Flight SQL server and, with `--http`, the session analytics page,
//! over one engine, until SIGINT or SIGTERM.

use std::io::Write;
use std::sync::Arc;

use super::{open_on, stop_signal};
use crate::args::ServeArgs;
use crate::errors::{CliError, Result, io};

pub(crate) async fn serve(args: ServeArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    // Read once per listener: each keeps its own (the Flight server also issues tokens).
    let auth = || {
        args.auth
            .as_deref()
            .map(dwell_flight::AuthConfig::read)
            .transpose()
    };
    let flight_auth = auth()?;
    let page_auth = auth()?;
    let engine = Arc::new(open_on(&args.data, false, &args.cluster).await?);

    let flight = if args.no_flight {
        None
    } else {
        let mut options = dwell_flight::ServerOptions::new(args.listen);
        options.auth = flight_auth;
        options.allow_unauthenticated_remote = args.allow_unauthenticated;
        options.tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(dwell_flight::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let scheme = if options.tls.is_some() {
            "grpc+tls"
        } else {
            "grpc"
        };
        let server = dwell_flight::FlightServer::bind(Arc::clone(&engine), options).await?;
        writeln!(
            out,
            "dwell serve: listening on {scheme}://{}",
            server.local_addr()
        )
        .map_err(io("standard output"))?;
        Some(server)
    };
    let page = match args.http {
        None => None,
        Some(listen) => {
            let mut options = dwell_web::WebOptions::new(listen);
            options.auth = page_auth;
            options.allow_unauthenticated_remote = args.allow_unauthenticated;
            let server = dwell_web::WebServer::bind(Arc::clone(&engine), options).await?;
            writeln!(
                out,
                "dwell serve: session analytics page on http://{}/",
                server.local_addr()
            )
            .map_err(io("standard output"))?;
            Some(server)
        }
    };
    out.flush().map_err(io("standard output"))?;

    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let flight_serving = {
        let stopping = stopped(stop_rx.clone());
        async move {
            match flight {
                Some(server) => server.serve_until(stopping).await.map_err(CliError::from),
                None => Ok(()),
            }
        }
    };
    let page_serving = {
        let stopping = stopped(stop_rx);
        async move {
            match page {
                Some(server) => server.serve_until(stopping).await.map_err(CliError::from),
                None => Ok(()),
            }
        }
    };
    let serving = async { tokio::try_join!(flight_serving, page_serving).map(|_| ()) };
    let grace = std::time::Duration::from_secs(args.shutdown_grace);
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        () = async {
            stop_signal().await;
            let _ = stop_tx.send(true);
            // After the signal, calls in progress get the grace period, then the process ends.
            tokio::time::sleep(grace).await;
        } => {
            eprintln!("dwell serve: calls still running after {}s; stopping them", grace.as_secs());
        }
    }
    Ok(())
}
