use std::net::SocketAddr;
use std::time::Duration;

use crate::guard::{AddressLimits, CreateAccess, Quota};
use crate::session::SessionKeys;
use crate::tls::TlsFiles;

/// Everything a node can be told. Parsing and validation happen in the binary;
/// these values are already checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Public listener: WebSocket `/ws` and `POST /v1/quizzes`.
    pub listen: SocketAddr,
    /// Private listener: `/healthz`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    pub backplane: BackplaneConfig,
    /// Least time between two coalesced leaderboards of one quiz.
    pub leaderboard_interval: Duration,
    /// The server pings each connection this often; one silent for two
    /// intervals is dropped.
    pub ping_interval: Duration,
    /// Frames queued per connection before it counts as a slow consumer.
    pub outbound_queue: usize,
    /// Largest client frame accepted.
    pub max_message_bytes: usize,
    /// tungstenite's read buffer per connection (its default is 128 KiB).
    pub read_buffer_bytes: usize,
    /// Most open WebSocket connections; more are closed with 1013.
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    /// Client-driven backplane calls (join, resume, host, answer, command,
    /// create) in flight at once; more wait for a slot.
    pub max_inflight_calls: usize,
    /// A call that waited this long for a slot is answered `unavailable`
    /// without touching the backplane.
    pub call_queue_timeout: Duration,
    /// A write that takes longer drops the connection.
    pub write_timeout: Duration,
    /// Client frames per second allowed per connection (burst: twice that).
    pub frames_per_second: u32,
    /// On shutdown, closes are spread over this window.
    pub drain_window: Duration,
    /// Shutdown never takes longer than this.
    pub shutdown_grace: Duration,
    /// Browser origins allowed to open a WebSocket or create a quiz; empty
    /// allows any. Requests without `Origin` (native clients) always pass.
    pub allowed_origins: Vec<String>,
    /// Names the public port answers to (`Host`, any port); empty allows any.
    pub allowed_hosts: Vec<String>,
    /// An HTTP request's body must have arrived this long after its headers.
    pub http_body_timeout: Duration,
    /// After the upgrade, a connection must `join`, `resume` or `host` within this.
    pub join_timeout: Duration,
    /// Who may create quizzes.
    pub create_access: CreateAccess,
    /// What each credential may hold unless its entry or claim says otherwise
    /// (on an open node: the size and players of every quiz; nothing counted).
    pub quota: Quota,
    /// What one client address may hold and do.
    pub address_limits: AddressLimits,
    /// `/ws/echo`: a WebSocket echo with the `/ws` configuration and limits,
    /// for conformance suites (Autobahn). Off by default.
    pub echo_endpoint: bool,
    /// TLS on the public listener (certificate and key files); `None`: clear text.
    pub tls: Option<TlsFiles>,
    /// How often the TLS files are looked at for a new certificate.
    pub tls_reload_interval: Duration,
    /// Every public connection starts with a PROXY protocol header (v1 or v2)
    /// naming the client: set it behind a load balancer that sends one.
    pub proxy_protocol: bool,
    /// The keys that sign and check session tokens; `None`: a random key of
    /// this node's own (one node only: no other node could check its tokens).
    pub session_keys: Option<SessionKeys>,
}

/// Which backplane holds the quizzes.
#[derive(Debug, Clone)]
pub enum BackplaneConfig {
    /// In this process only: one node, nothing else needed.
    Memory {
        idle_ttl: Duration,
        ended_ttl: Duration,
        log_capacity: usize,
    },
    /// Redis holds the quizzes; any number of nodes share it.
    Redis {
        /// `redis://host:port` or `redis-cluster://host:port?node=host:port&…`.
        url: String,
        idle_ttl: Duration,
        ended_ttl: Duration,
        log_capacity: usize,
        command_timeout: Duration,
    },
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            backplane: BackplaneConfig::Memory {
                idle_ttl: Duration::from_secs(2 * 3600),
                ended_ttl: Duration::from_secs(600),
                log_capacity: 10_000,
            },
            leaderboard_interval: Duration::from_millis(250),
            ping_interval: Duration::from_secs(15),
            outbound_queue: 64,
            max_message_bytes: 4096,
            read_buffer_bytes: 512,
            max_connections: 100_000,
            handshake_timeout: Duration::from_secs(10),
            max_inflight_calls: 64,
            call_queue_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            frames_per_second: 10,
            drain_window: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            http_body_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(30),
            create_access: CreateAccess::Open,
            quota: Quota::default(),
            address_limits: AddressLimits::default(),
            proxy_protocol: false,
            echo_endpoint: false,
            tls: None,
            tls_reload_interval: Duration::from_secs(10),
            session_keys: None,
        }
    }
}
