//! Errors of starting a server (the RPCs answer with gRPC statuses, see `status.rs`).

/// What can stop `dwell serve` from starting, each naming the file or address at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--auth` file is unreadable or holds a bad entry; `key` names it.
    #[error("{file}: {key}: {reason}")]
    Auth {
        file: String,
        key: String,
        reason: String,
    },
    /// `--tls-cert`/`--tls-key` cannot be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listen address cannot be used.
    #[error("listen address {address}: {reason}")]
    Listen { address: String, reason: String },
    /// The gRPC transport failed while serving.
    #[error("serving failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The server's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
