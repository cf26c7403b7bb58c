//! The quizgate node. `main` reads the configuration (flags or `QUIZGATE_*`
//! environment variables), validates all of it before binding anything, and
//! hands over to the gateway. Exit codes: 0 after a clean shutdown, 64 for a bad
//! setting, 69 when a listener or the backplane cannot be set up, 1 when a
//! second signal cut the drain short.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use quizgate_gateway::{
    AddressLimits, ApiKey, BackplaneConfig, Config, CreateAccess, Credentials, GatewayError,
    JwtKey, MIN_SECRET_BYTES, Quota, Server, SessionKey, SessionKeys, TlsFiles,
};
use quizgate_telemetry::{LogFormat, TraceConfig};
use tokio_util::sync::CancellationToken;

const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;

/// A clustered WebSocket gateway for live quizzes.
///
/// Every flag can also be set by the environment variable shown with it.
#[derive(Debug, Parser)]
#[command(name = "quizgate", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Public address: WebSocket /ws and POST /v1/quizzes.
    #[arg(long, env = "QUIZGATE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Private admin address: /healthz, /readyz, /metrics.
    #[arg(long, env = "QUIZGATE_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Redis to share quizzes with other nodes: redis://host:port, or
    /// redis-cluster://host:port?node=host:port&... for Redis Cluster. Unset: one
    /// node on its own, everything in memory.
    #[arg(long, env = "QUIZGATE_REDIS_URL")]
    redis_url: Option<String>,
    /// A Redis command that takes longer fails (the client is told to retry).
    #[arg(long, env = "QUIZGATE_REDIS_COMMAND_TIMEOUT", default_value = "2s", value_parser = duration)]
    redis_command_timeout: Duration,
    /// Log filter, RUST_LOG syntax.
    #[arg(long, env = "QUIZGATE_LOG", default_value = "info")]
    log: String,
    /// Log format: json or text.
    #[arg(long, env = "QUIZGATE_LOG_FORMAT", default_value = "json")]
    log_format: LogFormat,
    /// Export traces over OTLP/HTTP (protobuf) to this URL, e.g.
    /// http://collector:4318/v1/traces. Unset: no traces.
    #[arg(long, env = "QUIZGATE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// The share of client commands traced (0 to 1); the events a traced
    /// command causes are traced on every node that fans them out.
    #[arg(long, env = "QUIZGATE_TRACE_SAMPLE_RATIO", default_value_t = 0.01, value_parser = ratio)]
    trace_sample_ratio: f64,
    /// This node's name in traces (`service.instance.id`). Default: the
    /// host name and the process id.
    #[arg(long, env = "QUIZGATE_NODE_ID")]
    node_id: Option<String>,
    /// Least time between two coalesced leaderboards of a quiz.
    #[arg(long, env = "QUIZGATE_LEADERBOARD_INTERVAL", default_value = "250ms", value_parser = duration)]
    leaderboard_interval: Duration,
    /// Server ping interval; a connection silent for two intervals is dropped.
    #[arg(long, env = "QUIZGATE_PING_INTERVAL", default_value = "15s", value_parser = duration)]
    ping_interval: Duration,
    /// Frames queued per connection before it is closed as a slow consumer (4100).
    #[arg(long, env = "QUIZGATE_OUTBOUND_QUEUE", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    outbound_queue: u32,
    /// Largest client frame, in bytes; larger ones close the connection (1009).
    #[arg(long, env = "QUIZGATE_MAX_MESSAGE_BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(256..=1_048_576))]
    max_message_bytes: u32,
    /// WebSocket read buffer per connection, in bytes.
    #[arg(long, env = "QUIZGATE_READ_BUFFER_BYTES", default_value_t = 512, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    read_buffer_bytes: u32,
    /// Most open WebSocket connections; more are closed with 1013.
    #[arg(long, env = "QUIZGATE_MAX_CONNECTIONS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Client frames per second per connection (bursts of twice that).
    #[arg(long, env = "QUIZGATE_FRAMES_PER_SECOND", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    frames_per_second: u32,
    #[arg(long, env = "QUIZGATE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = duration)]
    handshake_timeout: Duration,
    /// Client-driven backplane calls (join, resume, answer, ...) in flight at
    /// once; more wait for a slot.
    #[arg(long, env = "QUIZGATE_MAX_INFLIGHT_CALLS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_inflight_calls: u32,
    /// A call that waited this long for a slot is answered `unavailable`.
    #[arg(long, env = "QUIZGATE_CALL_QUEUE_TIMEOUT", default_value = "5s", value_parser = duration)]
    call_queue_timeout: Duration,
    /// A write to a client that takes longer drops the connection.
    #[arg(long, env = "QUIZGATE_WRITE_TIMEOUT", default_value = "10s", value_parser = duration)]
    write_timeout: Duration,
    /// On SIGTERM, closes (1001) are spread over this window.
    #[arg(long, env = "QUIZGATE_DRAIN_WINDOW", default_value = "5s", value_parser = duration)]
    drain_window: Duration,
    /// Shutdown never takes longer than this.
    #[arg(long, env = "QUIZGATE_SHUTDOWN_GRACE", default_value = "30s", value_parser = duration)]
    shutdown_grace: Duration,
    /// A quiz nobody touched for this long is removed.
    #[arg(long, env = "QUIZGATE_QUIZ_IDLE_TTL", default_value = "2h", value_parser = duration)]
    quiz_idle_ttl: Duration,
    /// How long an ended quiz stays for late readers and resumes.
    #[arg(long, env = "QUIZGATE_QUIZ_ENDED_TTL", default_value = "10m", value_parser = duration)]
    quiz_ended_ttl: Duration,
    /// Browser origins (scheme://host[:port], comma-separated) allowed to open
    /// WebSockets and create quizzes. Empty: any. Clients that send no Origin
    /// (native apps) are always let in.
    #[arg(
        long,
        env = "QUIZGATE_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    allowed_origins: Vec<String>,
    /// Host names (comma-separated, no ports) the public port answers to:
    /// a request with another `Host` gets 421, which defeats DNS rebinding.
    /// Empty: any.
    #[arg(
        long,
        env = "QUIZGATE_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = ""
    )]
    allowed_hosts: Vec<String>,
    /// An HTTP request's body must arrive within this after its headers (408).
    #[arg(long, env = "QUIZGATE_HTTP_BODY_TIMEOUT", default_value = "10s", value_parser = duration)]
    http_body_timeout: Duration,
    /// A WebSocket must join, resume or host within this after its upgrade (4408).
    #[arg(long, env = "QUIZGATE_JOIN_TIMEOUT", default_value = "30s", value_parser = duration)]
    join_timeout: Duration,
    /// Hashed API keys that may create quizzes, comma-separated
    /// `name:sha256-hex` entries (make one with `quizgate keygen api NAME`).
    /// Several at once, so that keys can rotate.
    #[arg(
        long,
        env = "QUIZGATE_API_KEYS",
        value_delimiter = ',',
        default_value = ""
    )]
    api_keys: Vec<String>,
    /// JWTs that may create quizzes: keys that verify them, comma-separated
    /// `hs256:ID:SECRET-HEX`, `rs256:ID:PUBLIC-KEY.pem` or
    /// `eddsa:ID:PUBLIC-KEY.pem`. Tokens need `exp` and `aud`; `nbf` is checked.
    #[arg(
        long,
        env = "QUIZGATE_JWT_KEYS",
        value_delimiter = ',',
        default_value = "",
        hide_env_values = true
    )]
    jwt_keys: Vec<String>,
    /// The `aud` a host's JWT must carry.
    #[arg(long, env = "QUIZGATE_JWT_AUDIENCE", default_value = "quizgate")]
    jwt_audience: String,
    /// Let anyone who reaches the public port create quizzes. Without API keys
    /// an embedded node is open anyway; a Redis-backed one refuses to start
    /// unless this is set.
    #[arg(long, env = "QUIZGATE_OPEN_CREATE", default_value_t = false, action = clap::ArgAction::Set)]
    open_create: bool,
    /// Open client connections (WebSocket and HTTP) from one address (an IPv6
    /// /64 counts as one); more get HTTP 429. Mind NAT: a school is one address.
    #[arg(long, env = "QUIZGATE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_address: u32,
    /// join, resume and host attempts per second from one address (bursts of
    /// ten seconds' worth); a failed lookup (unknown code, bad token) costs ten.
    #[arg(long, env = "QUIZGATE_JOINS_PER_ADDRESS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    joins_per_address: u32,
    /// Quizzes created per minute from one address (bursts of a minute's worth).
    #[arg(long, env = "QUIZGATE_CREATES_PER_ADDRESS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    creates_per_address: u32,
    /// Quizzes one credential (API key, or JWT subject) may have live at once
    /// across the cluster; more get HTTP 403 quota_exceeded. An API key's entry
    /// (`:live_quizzes=N`) or a JWT's `quota` claim may set its own.
    #[arg(long, env = "QUIZGATE_QUOTA_LIVE_QUIZZES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    quota_live_quizzes: u32,
    /// Players one credential's quiz admits (`:players=N` per key or claim).
    #[arg(long, env = "QUIZGATE_QUOTA_PLAYERS", default_value_t = quizgate_gateway::MAX_PLAYERS, value_parser = clap::value_parser!(u32).range(1..=i64::from(quizgate_gateway::MAX_PLAYERS)))]
    quota_players: u32,
    /// Bytes one credential's quiz definition may hold (`:definition_bytes=N`
    /// per key or claim), at most 262144.
    #[arg(long, env = "QUIZGATE_QUOTA_DEFINITION_BYTES", default_value_t = quizgate_gateway::MAX_DEFINITION_BYTES, value_parser = clap::value_parser!(u32).range(1..=i64::from(quizgate_gateway::MAX_DEFINITION_BYTES)))]
    quota_definition_bytes: u32,
    /// Serve /ws/echo: a WebSocket echo with the /ws configuration and limits,
    /// for conformance suites (Autobahn). Never on a node players use.
    #[arg(long, env = "QUIZGATE_ECHO_ENDPOINT", default_value_t = false, action = clap::ArgAction::Set)]
    echo_endpoint: bool,
    /// TLS on the public port: the certificate chain (PEM). With
    /// QUIZGATE_TLS_KEY; unset: clear text (TLS at the balancer).
    #[arg(long, env = "QUIZGATE_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS on the public port: the private key (PEM) of QUIZGATE_TLS_CERT.
    #[arg(long, env = "QUIZGATE_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// How often the TLS files are looked at; a changed pair serves new
    /// connections from then on, live ones keep theirs.
    #[arg(long, env = "QUIZGATE_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = duration)]
    tls_reload_interval: Duration,
    /// Every public connection starts with a PROXY protocol header (v1 or v2,
    /// HAProxy's send-proxy-v2) naming the client; connections without one are
    /// closed. Set it behind a load balancer that sends it, never otherwise.
    #[arg(long, env = "QUIZGATE_PROXY_PROTOCOL", default_value_t = false, action = clap::ArgAction::Set)]
    proxy_protocol: bool,
    /// Keys that sign session tokens, comma-separated `id:secret-hex` entries
    /// (make one with `quizgate keygen session ID`): the first signs, all
    /// verify. Every node of a cluster needs the same. Unset: an embedded node
    /// draws a random key; a Redis-backed one refuses to start.
    #[arg(
        long,
        env = "QUIZGATE_SESSION_KEYS",
        value_delimiter = ',',
        default_value = "",
        hide_env_values = true
    )]
    session_keys: Vec<String>,
    /// How long a session token (player or host) is accepted after it is issued.
    #[arg(long, env = "QUIZGATE_SESSION_TTL", default_value = "24h", value_parser = duration)]
    session_ttl: Duration,
    /// Events kept per quiz for resume.
    #[arg(long, env = "QUIZGATE_EVENT_LOG_CAPACITY", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    event_log_capacity: u32,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Makes a new random key and prints it.
    #[command(subcommand)]
    Keygen(Keygen),
    /// Asks this node's admin port (QUIZGATE_ADMIN_LISTEN) for /healthz, or
    /// /readyz with --ready; exits 0 on 200. For container health checks,
    /// where no HTTP client is installed.
    Probe {
        #[arg(long)]
        ready: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum Keygen {
    /// An API key: prints the key (for the host application, shown once) and
    /// its QUIZGATE_API_KEYS entry (for the nodes: a hash, not the key).
    Api {
        /// A name for the key, shown in logs: 1 to 64 of A-Z a-z 0-9 - _ .
        name: String,
    },
    /// A session key: prints its QUIZGATE_SESSION_KEYS entry (secret: give it
    /// to every node of the cluster, and to nothing else).
    Session {
        /// The key's id, carried in every token it signs: 1 to 16 of A-Z a-z 0-9 - _
        id: String,
    },
}

impl Cli {
    /// Checks what a single value cannot: relations between settings.
    fn into_config(self) -> Result<Config, String> {
        let positive = [
            ("QUIZGATE_LEADERBOARD_INTERVAL", self.leaderboard_interval),
            ("QUIZGATE_PING_INTERVAL", self.ping_interval),
            ("QUIZGATE_HANDSHAKE_TIMEOUT", self.handshake_timeout),
            ("QUIZGATE_CALL_QUEUE_TIMEOUT", self.call_queue_timeout),
            ("QUIZGATE_WRITE_TIMEOUT", self.write_timeout),
            ("QUIZGATE_SHUTDOWN_GRACE", self.shutdown_grace),
            ("QUIZGATE_QUIZ_IDLE_TTL", self.quiz_idle_ttl),
            ("QUIZGATE_QUIZ_ENDED_TTL", self.quiz_ended_ttl),
            ("QUIZGATE_REDIS_COMMAND_TIMEOUT", self.redis_command_timeout),
            ("QUIZGATE_HTTP_BODY_TIMEOUT", self.http_body_timeout),
            ("QUIZGATE_JOIN_TIMEOUT", self.join_timeout),
            ("QUIZGATE_SESSION_TTL", self.session_ttl),
            ("QUIZGATE_TLS_RELOAD_INTERVAL", self.tls_reload_interval),
        ];
        if let Some(bad) = self.allowed_origins.iter().find(|o| !is_origin(o)) {
            return Err(format!(
                "invalid QUIZGATE_ALLOWED_ORIGINS: {bad:?} is not an origin like https://quiz.example.com"
            ));
        }
        if let Some(bad) = self.allowed_hosts.iter().find(|h| !is_host_name(h)) {
            return Err(format!(
                "invalid QUIZGATE_ALLOWED_HOSTS: {bad:?} is not a host name like quiz.example.com (no scheme, no port)"
            ));
        }
        if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("invalid {name}: must be greater than zero"));
        }
        if self.drain_window >= self.shutdown_grace {
            return Err(
                "invalid QUIZGATE_DRAIN_WINDOW: must be shorter than QUIZGATE_SHUTDOWN_GRACE"
                    .into(),
            );
        }
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            return Err("invalid QUIZGATE_ADMIN_LISTEN: must differ from QUIZGATE_LISTEN".into());
        }
        let keys = self
            .api_keys
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| ApiKey::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("invalid QUIZGATE_API_KEYS: {e}"))?;
        let jwt_keys = self
            .jwt_keys
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| JwtKey::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("invalid QUIZGATE_JWT_KEYS: {e}"))?;
        let no_credentials = keys.is_empty() && jwt_keys.is_empty();
        let create_access = match (no_credentials, self.open_create) {
            (false, true) => {
                return Err(
                    "invalid QUIZGATE_OPEN_CREATE: set it or QUIZGATE_API_KEYS / QUIZGATE_JWT_KEYS, not both"
                        .into(),
                );
            }
            (false, false) => CreateAccess::Credentials(Credentials {
                api_keys: keys,
                jwt_keys,
                jwt_audience: self.jwt_audience.clone(),
            }),
            (true, true) => CreateAccess::Open,
            (true, false) if self.redis_url.is_some() => {
                return Err("QUIZGATE_API_KEYS is unset: a Redis-backed node refuses to let anyone create quizzes; \
                     add keys (quizgate keygen api NAME) or JWT keys (QUIZGATE_JWT_KEYS), or set QUIZGATE_OPEN_CREATE=true"
                    .into());
            }
            (true, false) => CreateAccess::Open,
        };
        let session_keys = self
            .session_keys
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| SessionKey::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("invalid QUIZGATE_SESSION_KEYS: {e}"))?;
        if session_keys.is_empty() && self.redis_url.is_some() {
            return Err("QUIZGATE_SESSION_KEYS is unset: every node of a Redis-backed cluster needs the same \
                 session key to check the others' tokens (quizgate keygen session ID)"
                .into());
        }
        let session_keys = SessionKeys::new(session_keys, self.session_ttl);
        let tls = match (self.tls_cert.clone(), self.tls_key.clone()) {
            // Loaded once, by the server as it binds (a bad pair exits 64 there).
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(
                    "invalid QUIZGATE_TLS_CERT / QUIZGATE_TLS_KEY: set both or neither".into(),
                );
            }
        };
        Ok(Config {
            listen: self.listen,
            admin_listen: self.admin_listen,
            backplane: match self.redis_url {
                None => BackplaneConfig::Memory {
                    idle_ttl: self.quiz_idle_ttl,
                    ended_ttl: self.quiz_ended_ttl,
                    log_capacity: self.event_log_capacity as usize,
                },
                Some(url) => {
                    let valid = ["redis://", "redis-cluster://"]
                        .iter()
                        .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len());
                    if !valid {
                        return Err(format!(
                            "invalid QUIZGATE_REDIS_URL {url:?}: use redis://host:port or redis-cluster://host:port?node=host:port"
                        ));
                    }
                    BackplaneConfig::Redis {
                        url,
                        idle_ttl: self.quiz_idle_ttl,
                        ended_ttl: self.quiz_ended_ttl,
                        log_capacity: self.event_log_capacity as usize,
                        command_timeout: self.redis_command_timeout,
                    }
                }
            },
            leaderboard_interval: self.leaderboard_interval,
            ping_interval: self.ping_interval,
            outbound_queue: self.outbound_queue as usize,
            max_message_bytes: self.max_message_bytes as usize,
            read_buffer_bytes: self.read_buffer_bytes as usize,
            max_connections: self.max_connections as usize,
            handshake_timeout: self.handshake_timeout,
            max_inflight_calls: self.max_inflight_calls as usize,
            call_queue_timeout: self.call_queue_timeout,
            write_timeout: self.write_timeout,
            frames_per_second: self.frames_per_second,
            drain_window: self.drain_window,
            shutdown_grace: self.shutdown_grace,
            allowed_origins: self
                .allowed_origins
                .into_iter()
                .filter(|o| !o.trim().is_empty())
                .collect(),
            allowed_hosts: self
                .allowed_hosts
                .into_iter()
                .filter(|h| !h.trim().is_empty())
                .collect(),
            http_body_timeout: self.http_body_timeout,
            join_timeout: self.join_timeout,
            create_access,
            session_keys,
            proxy_protocol: self.proxy_protocol,
            tls,
            tls_reload_interval: self.tls_reload_interval,
            echo_endpoint: self.echo_endpoint,
            quota: Quota {
                live_quizzes: self.quota_live_quizzes,
                players: self.quota_players,
                definition_bytes: self.quota_definition_bytes,
            },
            address_limits: AddressLimits {
                connections: self.max_connections_per_address,
                joins_per_second: self.joins_per_address,
                creates_per_minute: self.creates_per_address,
            },
        })
    }
}

/// `quiz.example.com`, `127.0.0.1`, `[::1]`: a name without scheme or port;
/// blank entries are ignored.
fn is_host_name(raw: &str) -> bool {
    let raw = raw.trim();
    raw.is_empty()
        || match raw.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
            None => raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        }
}

/// `http://host`, `https://host:port` (a trailing `/` is tolerated); blank
/// entries are ignored.
fn is_origin(raw: &str) -> bool {
    let raw = raw.trim().trim_end_matches('/');
    if raw.is_empty() {
        return true;
    }
    let Some((_, host)) = raw
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
    else {
        return false;
    };
    !host.is_empty() && !host.contains(['/', '?', '#', ' ', '*'])
}

/// `250ms`, `15s`, `10m`, `2h`.
fn duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (n, unit) = raw.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 250ms, 15s, 10m or 2h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "{raw:?} is not a duration like 250ms, 15s, 10m or 2h"
        )),
    }
}

/// The environment variable behind the flag a clap error is about.
fn setting_of(e: &clap::Error) -> Option<String> {
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split_whitespace().next()?.trim_start_matches('-');
    Some(format!(
        "QUIZGATE_{}",
        flag.to_uppercase().replace('-', "_")
    ))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            if let Some(name) = setting_of(&e) {
                eprintln!("quizgate: invalid setting {name}");
            }
            return ExitCode::from(EX_USAGE);
        }
    };
    match &cli.command {
        Some(Command::Keygen(what)) => return keygen(what),
        Some(Command::Probe { ready }) => return probe(cli.admin_listen, *ready),
        None => {}
    }
    let (log, log_format) = (cli.log.clone(), cli.log_format);
    let traces = cli.otlp_endpoint.clone().map(|endpoint| TraceConfig {
        endpoint,
        sample_ratio: cli.trace_sample_ratio,
        instance: cli.node_id.clone().unwrap_or_else(default_node_id),
    });
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("quizgate: {message}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quizgate: cannot start the runtime: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    // The trace exporter runs on the runtime's tasks.
    let exporter = {
        let _runtime = runtime.enter();
        match quizgate_telemetry::init_logging(log_format, &log, traces.as_ref()) {
            Ok(exporter) => exporter,
            Err(message) => {
                eprintln!("quizgate: invalid QUIZGATE_LOG or QUIZGATE_OTLP_ENDPOINT: {message}");
                return ExitCode::from(EX_USAGE);
            }
        }
    };
    if let Some(t) = &traces {
        tracing::info!(endpoint = %t.endpoint, ratio = t.sample_ratio, node_id = %t.instance, "exporting traces");
    }
    let code = runtime.block_on(serve(config));
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    code
}

/// The host name (a pod's name on Kubernetes) and the process id.
fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "quizgate".into());
    format!("{host}/{}", std::process::id())
}

/// A share from 0 to 1.
fn ratio(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{raw:?} is not a ratio from 0 to 1")),
    }
}

/// `quizgate probe`: GET /healthz (or /readyz) on the admin port, 2 s at most.
fn probe(admin: SocketAddr, ready: bool) -> ExitCode {
    use std::io::{Read, Write};
    let mut addr = admin;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let path = if ready { "/readyz" } else { "/healthz" };
    let limit = Duration::from_secs(2);
    let answer = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, limit)?;
        s.set_read_timeout(Some(limit))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = String::new();
        s.take(4096).read_to_string(&mut out)?;
        Ok(out)
    })();
    match answer {
        Ok(text) if text.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(text) => {
            eprintln!(
                "quizgate probe: {}",
                text.lines().next().unwrap_or("no answer")
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("quizgate probe: {addr}{path}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `quizgate keygen api NAME` / `quizgate keygen session ID`.
fn keygen(what: &Keygen) -> ExitCode {
    use rand::RngCore;
    let mut bytes = [0u8; MIN_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let hex = hex::encode(bytes);
    match what {
        Keygen::Api { name } => {
            let key = format!("qgk_{hex}");
            let entry = ApiKey::entry(name, &key);
            if let Err(e) = ApiKey::parse(&entry) {
                eprintln!("quizgate: {e}");
                return ExitCode::from(EX_USAGE);
            }
            println!("key:   {key}");
            println!("entry: {entry}");
            eprintln!(
                "Give the key to the host application (Authorization: Bearer <key>); it is not stored anywhere.\n\
                 Add the entry to QUIZGATE_API_KEYS (comma-separated) on every node."
            );
        }
        Keygen::Session { id } => {
            let entry = format!("{id}:{hex}");
            if let Err(e) = SessionKey::parse(&entry) {
                eprintln!("quizgate: {e}");
                return ExitCode::from(EX_USAGE);
            }
            println!("entry: {entry}");
            eprintln!(
                "Put the entry first in QUIZGATE_SESSION_KEYS on every node; keep the previous key after it\n\
                 until QUIZGATE_SESSION_TTL has passed, then remove it. Keep it secret."
            );
        }
    }
    ExitCode::SUCCESS
}

async fn serve(config: Config) -> ExitCode {
    if matches!(config.create_access, CreateAccess::Open) {
        tracing::warn!(
            "anyone who reaches the public port can create quizzes: set QUIZGATE_API_KEYS (see docs/security.md)"
        );
    }
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(GatewayError::Tls(e)) => {
            eprintln!("quizgate: invalid QUIZGATE_TLS_CERT / QUIZGATE_TLS_KEY: {e}");
            return ExitCode::from(EX_USAGE);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    tracing::info!(ws_addr = %server.local_addr(), admin_addr = %server.admin_addr(), version = env!("CARGO_PKG_VERSION"), "listening");
    let shutdown = CancellationToken::new();
    // Lives as long as the process: nothing to track or wait for.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(signals(shutdown.clone()));
    match server.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// The first SIGTERM or SIGINT starts the drain; a second one ends the process.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    for n in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if n == 0 {
            tracing::info!("signal received: draining (send another to stop at once)");
            shutdown.cancel();
        }
    }
    tracing::warn!("second signal: stopping now");
    std::process::exit(1);
}
