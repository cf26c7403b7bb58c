use std::net::SocketAddr;

/// Why a node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("backplane: {0}")]
    Backplane(#[from] quizgate_backplane::BackplaneError),
}
