use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use quizgate_backplane::{
    Backplane, MemoryBackplane, MemoryConfig, RedisBackplane, RedisConfig, SystemClock,
};
use quizgate_telemetry::Metrics;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::registry::Registry;
use crate::{BackplaneConfig, Config, GatewayError};

/// A node with its listeners bound, ready to [`Server::run`].
pub struct Server {
    node: Arc<Node>,
    listener: TcpListener,
    admin: TcpListener,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.local_addr())
            .field("admin", &self.admin_addr())
            .finish()
    }
}

impl Server {
    /// Binds both listeners and connects the backplane. Nothing is served yet.
    pub async fn bind(config: Config) -> Result<Self, GatewayError> {
        let tls = config
            .tls
            .clone()
            .map(crate::tls::Tls::new)
            .transpose()
            .map_err(GatewayError::Tls)?;
        let listener = listen(config.listen)?;
        let admin = listen(config.admin_listen)?;
        let metrics = Metrics::new();
        let registry = Arc::new(Registry::new(metrics.clone()));
        let backplane: Arc<dyn Backplane> = match &config.backplane {
            BackplaneConfig::Memory {
                idle_ttl,
                ended_ttl,
                log_capacity,
            } => Arc::new(MemoryBackplane::new(
                registry.clone(),
                Arc::new(SystemClock),
                MemoryConfig {
                    leaderboard_interval_ms: config.leaderboard_interval.as_millis() as u64,
                    idle_ttl_ms: idle_ttl.as_millis() as u64,
                    ended_ttl_ms: ended_ttl.as_millis() as u64,
                    log_capacity: *log_capacity,
                    max_players: quizgate_domain::MAX_PLAYERS,
                },
            )),
            BackplaneConfig::Redis {
                url,
                idle_ttl,
                ended_ttl,
                log_capacity,
                command_timeout,
            } => {
                let redis = RedisConfig {
                    url: url.clone(),
                    leaderboard_interval_ms: config.leaderboard_interval.as_millis() as u64,
                    idle_ttl_ms: idle_ttl.as_millis() as u64,
                    ended_ttl_ms: ended_ttl.as_millis() as u64,
                    log_capacity: *log_capacity,
                    command_timeout: *command_timeout,
                    max_players: quizgate_domain::MAX_PLAYERS,
                    clock: None,
                };
                let connect = RedisBackplane::connect(redis, registry.clone());
                match tokio::time::timeout(
                    4 * *command_timeout + std::time::Duration::from_secs(5),
                    connect,
                )
                .await
                {
                    Ok(Ok(bp)) => Arc::new(bp),
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => {
                        return Err(GatewayError::Backplane(
                            quizgate_backplane::BackplaneError::Unavailable(format!(
                                "cannot reach {url}"
                            )),
                        ));
                    }
                }
            }
        };
        let node = Arc::new(Node::new(config, backplane, registry, metrics, tls));
        node.preset_metrics();
        Ok(Self {
            node,
            listener,
            admin,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.node.config.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .unwrap_or_else(|_| self.node.config.admin_listen)
    }

    /// Serves until `shutdown`, then drains: `/readyz` turns 503 at once, the
    /// listener stops accepting, connections are closed with 1001 spread over
    /// the drain window, and the whole drain is cut off after the grace period.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let Self {
            node,
            listener,
            admin,
        } = self;
        let stop_accepting = CancellationToken::new();
        let drain = CancellationToken::new();
        // The admin port and the ticker outlive the connections: probes keep
        // answering and deadlines keep firing while the node drains.
        let stop_background = CancellationToken::new();
        let background = tokio_util::task::TaskTracker::new();
        background.spawn(crate::http::serve_admin(
            Arc::clone(&node),
            admin,
            stop_background.clone(),
        ));
        background.spawn(crate::ticker::run(
            Arc::clone(&node),
            stop_background.clone(),
        ));
        if node.tls.is_some() {
            background.spawn(reload_tls(Arc::clone(&node), stop_background.clone()));
        }
        node.tasks.spawn(crate::listener::accept(
            Arc::clone(&node),
            listener,
            stop_accepting.clone(),
            drain.clone(),
        ));
        node.ready.store(true, Ordering::SeqCst);
        tracing::info!("serving");

        shutdown.cancelled().await;
        node.ready.store(false, Ordering::SeqCst);
        node.metrics.draining.set(1);
        let open = node.metrics.connections.get();
        tracing::info!(
            connections = open,
            window_ms = node.config.drain_window.as_millis() as u64,
            "draining"
        );
        stop_accepting.cancel();
        drain.cancel();
        node.tasks.close();
        if tokio::time::timeout(node.config.shutdown_grace, node.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = node.metrics.connections.get(),
                "grace period over: closing the rest"
            );
        }
        stop_background.cancel();
        background.close();
        background.wait().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Looks at the TLS files every `tls_reload_interval`; a changed pair serves
/// new connections from then on.
async fn reload_tls(node: Arc<Node>, stop: CancellationToken) {
    let every = node.config.tls_reload_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(tls) = &node.tls {
            tls.reload_if_changed();
        }
    }
}

fn listen(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    let bind = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        // Reconnect storms arrive all at once; a deep backlog keeps SYNs from being dropped.
        socket.listen(4096)
    };
    bind().map_err(|source| GatewayError::Bind { addr, source })
}
