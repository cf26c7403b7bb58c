use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Semaphore;
use tracing::Instrument;

use quizgate_backplane::{Backplane, BackplaneError};
use quizgate_protocol::ErrorCode;
use quizgate_telemetry::Metrics;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::task::TaskTracker;

use crate::Config;

/// Every backplane call a node makes, as `backplane_errors_total` names them.
pub(crate) const BACKPLANE_CALLS: [&str; 13] = [
    "create",
    "join",
    "resume",
    "host",
    "command",
    "kick",
    "answer",
    "definition",
    "close",
    "leaderboard",
    "progress",
    "scores",
    "expire",
];
use crate::guard::{Addresses, Hosts, Origins};
use crate::session::{SessionKey, SessionKeys};

/// How long a token signed by a node's own random key lives.
const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
use crate::registry::{ConnId, Registry};

/// What every task of a node shares.
pub(crate) struct Node {
    pub(crate) config: Config,
    pub(crate) backplane: Arc<dyn Backplane>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Metrics,
    /// False while starting and once draining: `/readyz` answers 503.
    pub(crate) ready: AtomicBool,
    pub(crate) tasks: TaskTracker,
    pub(crate) ws_config: WebSocketConfig,
    next_conn: AtomicU64,
    /// Slots for client-driven backplane calls: see `Node::call`.
    calls: Semaphore,
    /// One per open WebSocket (`QUIZGATE_MAX_CONNECTIONS`), taken before the
    /// connection task starts: two handshakes finishing at once cannot both
    /// take the last one, as they could by reading the connections gauge.
    pub(crate) connection_slots: Arc<Semaphore>,
    pub(crate) origins: Origins,
    pub(crate) hosts: Hosts,
    pub(crate) addresses: Arc<Addresses>,
    pub(crate) sessions: SessionKeys,
    /// TLS on the public listener, when configured.
    pub(crate) tls: Option<crate::tls::Tls>,
}

impl Node {
    pub(crate) fn new(
        config: Config,
        backplane: Arc<dyn Backplane>,
        registry: Arc<Registry>,
        metrics: Metrics,
        tls: Option<crate::tls::Tls>,
    ) -> Self {
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(config.read_buffer_bytes)
            // Only control frames (pings, pongs, closes) are written through
            // tungstenite, each flushed at once; data frames go straight into
            // the connection's `Wire` as complete frames (`crate::wire`).
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024)
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes));
        Self {
            calls: Semaphore::new(config.max_inflight_calls),
            connection_slots: Arc::new(Semaphore::new(config.max_connections)),
            tls,
            origins: Origins::new(&config.allowed_origins),
            hosts: Hosts::new(&config.allowed_hosts),
            addresses: Arc::new(Addresses::new(config.address_limits)),
            sessions: config.session_keys.clone().unwrap_or_else(|| {
                SessionKeys::new(vec![SessionKey::random("local")], SESSION_TTL).expect("one key")
            }),
            config,
            backplane,
            registry,
            metrics,
            ready: AtomicBool::new(false),
            tasks: TaskTracker::new(),
            ws_config,
            next_conn: AtomicU64::new(1),
        }
    }

    /// Shows every labelled series from the start, at zero: a series that
    /// appears only once something happened leaves dashboards and `rate()`
    /// blind until then. Every label set here is bounded.
    pub(crate) fn preset_metrics(&self) {
        let m = &self.metrics;
        let closes = quizgate_protocol::CloseCode::ALL.map(|c| c.code().to_string());
        for code in closes.iter().map(String::as_str).chain(["timeout"]) {
            m.closes.with_label_values(&[code]);
        }
        for code in quizgate_protocol::ErrorCode::ALL {
            m.errors.with_label_values(&[code.as_str()]);
        }
        let sets: [(&prometheus::IntCounterVec, &[&str]); 4] = [
            (
                &m.answers,
                &[
                    "accepted",
                    "duplicate",
                    "late",
                    "wrong_phase",
                    "invalid_choice",
                ],
            ),
            (&m.handshakes, &["ok", "rejected", "timeout", "full"]),
            (
                &m.refused,
                &[
                    "origin",
                    "host",
                    "content_type",
                    "body_timeout",
                    "join_timeout",
                    "unauthorized",
                    "token",
                    "address_connections",
                    "address_joins",
                    "address_creations",
                    "live_quizzes",
                    "definition_bytes",
                    "proxy_header",
                    "tls",
                ],
            ),
            (&m.definition_reads, &["cached", "fetched"]),
        ];
        for (vec, values) in sets {
            for v in values {
                vec.with_label_values(&[v]);
            }
        }
        for kind in quizgate_protocol::ClientFrame::KINDS
            .iter()
            .chain(&["invalid"])
        {
            m.frames_in.with_label_values(&[kind]);
        }
        for call in ["create", "join", "resume", "host", "command", "kick"] {
            m.backplane_call_seconds.with_label_values(&[call]);
        }
        for call in BACKPLANE_CALLS {
            for kind in ["unavailable", "busy", "corrupt"] {
                m.backplane_errors.with_label_values(&[call, kind]);
            }
        }
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts one refusal (see `quizgate_telemetry::Metrics::refused`).
    pub(crate) fn refuse(&self, reason: &str) {
        self.metrics.refused.with_label_values(&[reason]).inc();
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.backplane.is_ready()
    }

    /// Runs one client-driven backplane call once a slot is free.
    ///
    /// Under a join storm this keeps the backplane's queue short: calls wait
    /// here, where waiting is free, rather than in Redis's queue, where they
    /// would time out after being sent (a join that timed out may still have
    /// happened, and its retry would then find its own nickname taken).
    pub(crate) async fn call<T>(
        &self,
        kind: &'static str,
        call: impl Future<Output = Result<T, BackplaneError>>,
    ) -> Result<T, BackplaneError> {
        let waited = std::time::Instant::now();
        let _slot = match tokio::time::timeout(self.config.call_queue_timeout, self.calls.acquire())
            .await
        {
            Ok(Ok(slot)) => slot,
            _ => {
                return Err(BackplaneError::Busy(format!(
                    "no free slot among {} in-flight calls",
                    self.config.max_inflight_calls
                )));
            }
        };
        self.metrics
            .admission_wait_seconds
            .observe(waited.elapsed().as_secs_f64());
        let started = std::time::Instant::now();
        let result = traced(kind, call).await;
        self.metrics
            .backplane_call_seconds
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// The error frame for a failed backplane call, counted by `call`.
    pub(crate) fn backplane_error(
        &self,
        call: &'static str,
        e: &BackplaneError,
    ) -> (ErrorCode, &'static str) {
        match e {
            BackplaneError::Unavailable(reason) => {
                self.metrics
                    .backplane_errors
                    .with_label_values(&[call, "unavailable"])
                    .inc();
                tracing::warn!(%reason, "backplane unavailable");
                (ErrorCode::Unavailable, "temporarily unavailable, retry")
            }
            BackplaneError::Busy(reason) => {
                self.metrics
                    .backplane_errors
                    .with_label_values(&[call, "busy"])
                    .inc();
                tracing::debug!(%reason, "node busy");
                (ErrorCode::Unavailable, "node busy, retry")
            }
            BackplaneError::Corrupt(reason) => {
                self.metrics
                    .backplane_errors
                    .with_label_values(&[call, "corrupt"])
                    .inc();
                tracing::error!(%reason, "backplane data corrupt");
                (ErrorCode::Internal, "internal error")
            }
        }
    }
}

/// Runs a backplane call; when its command is sampled, in a span of its own
/// (a child of the command's), whose context the events the call causes
/// carry to every node that fans them out.
pub(crate) async fn traced<T>(kind: &'static str, call: impl Future<Output = T>) -> T {
    if !quizgate_telemetry::tracing_on() || !quizgate_telemetry::current_is_sampled() {
        return call.await;
    }
    let span = tracing::info_span!("backplane", otel.name = %format_args!("backplane {kind}"), call = kind);
    let traceparent = span.in_scope(quizgate_telemetry::current_traceparent);
    quizgate_backplane::traced(traceparent, call)
        .instrument(span)
        .await
}
