use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric a node exports, registered once at start-up.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: IntGauge,
    /// Client connections holding a slot of `QUIZGATE_MAX_CONNECTIONS`:
    /// WebSockets, HTTP connections, and handshakes in progress.
    pub client_connections: IntGauge,
    /// Client addresses tracked for the per-address limits.
    pub addresses: IntGauge,
    /// Accepted connections by how the handshake ended (`ok`, `rejected`, `timeout`, `full`).
    pub handshakes: IntCounterVec,
    /// Closes sent, by close code.
    pub closes: IntCounterVec,
    /// Client frames read, by `t` (`invalid` for undecodable ones).
    pub frames_in: IntCounterVec,
    /// Frames written to clients.
    pub frames_out: IntCounter,
    /// Error frames sent, by error code.
    pub errors: IntCounterVec,
    /// Quiz events received from the backplane.
    pub events: IntCounter,
    /// Time to hand one event to every local member's queue.
    pub fanout_seconds: Histogram,
    /// Answers by outcome (`accepted`, `duplicate`, `late`, `wrong_phase`, `invalid_choice`).
    pub answers: IntCounterVec,
    /// Time from reading an answer frame to queueing its acknowledgement.
    pub answer_seconds: Histogram,
    /// Quizzes with at least one member on this node.
    pub rooms: IntGauge,
    /// Backplane calls that failed, by call (`join`, `answer`, `close`, …:
    /// the Redis script) and kind (`unavailable`, `busy`, `corrupt`).
    pub backplane_errors: IntCounterVec,
    /// Requests and connections refused by a check or a limit before any quiz
    /// rule ran, by reason (docs/security.md lists them).
    pub refused: IntCounterVec,
    /// WebSocket connections opened since start (closes: `closes_total`).
    pub connections_opened: IntCounter,
    /// Players seated on this node (joined or resumed, not yet gone).
    pub players: IntGauge,
    /// From an event's publication (its `ts`) to its write into local sockets.
    pub event_delivery_seconds: Histogram,
    /// Client-driven backplane calls by kind (`create`, `join`, `resume`,
    /// `host`, `command`, `kick`), from the slot taken to the answer.
    pub backplane_call_seconds: HistogramVec,
    /// Time a client-driven call waited for one of the node's call slots.
    pub admission_wait_seconds: Histogram,
    /// 1 while the node drains (SIGTERM), else 0.
    pub draining: IntGauge,
    /// 1 while `/readyz` would answer 200, else 0 (set when scraped).
    pub ready: IntGauge,
    /// 1 while the backplane (Redis) is reachable, else 0 (set when scraped).
    pub backplane_up: IntGauge,
    /// Always 1, labelled with the running version.
    pub build_info: IntGaugeVec,
    /// Bytes handed to client sockets (WebSocket frames and HTTP replies
    /// through the wire, before TLS).
    pub bytes_out: IntCounter,
    /// Messages read from the backplane's Pub/Sub (events and seat claims).
    pub pubsub_messages: IntCounter,
    /// Gaps in a quiz's event sequence filled from its log.
    pub gap_fills: IntCounter,
    /// Times every subscribed quiz was read again from its log (after a
    /// Redis reconnect or a lagging subscriber).
    pub resyncs: IntCounter,
    /// A quiz's definition wanted by a room: `cached` (a room here had it) or
    /// `fetched` (read from the backplane).
    pub definition_reads: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("quizgate".into()), None).expect("static prefix is valid");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        let counter_vec = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        Self {
            connections: gauge("connections", "Open WebSocket connections."),
            addresses: gauge(
                "addresses",
                "Client addresses tracked for the per-address limits.",
            ),
            client_connections: gauge(
                "client_connections",
                "Client connections (WebSocket, HTTP, in handshake) holding a connection slot.",
            ),
            handshakes: counter_vec(
                "handshakes_total",
                "Accepted TCP connections by handshake result.",
                "result",
            ),
            closes: counter_vec(
                "closes_total",
                "WebSocket closes sent, by close code.",
                "code",
            ),
            frames_in: counter_vec("frames_in_total", "Client frames read, by type.", "type"),
            frames_out: counter("frames_out_total", "Frames written to clients."),
            bytes_out: counter(
                "bytes_out_total",
                "Bytes handed to client sockets, before TLS.",
            ),
            pubsub_messages: counter(
                "pubsub_messages_total",
                "Messages read from the backplane's Pub/Sub.",
            ),
            gap_fills: counter(
                "gap_fills_total",
                "Gaps in a quiz's event sequence filled from its log.",
            ),
            resyncs: counter(
                "resyncs_total",
                "Times every subscribed quiz was read again from its log.",
            ),
            definition_reads: counter_vec(
                "definition_reads_total",
                "Quiz definitions wanted by a room: cached here or fetched.",
                "result",
            ),
            errors: counter_vec("errors_total", "Error frames sent, by error code.", "code"),
            events: counter("events_total", "Quiz events received from the backplane."),
            fanout_seconds: histogram(
                "fanout_seconds",
                "Time to queue one event for every local member.",
            ),
            answers: counter_vec("answers_total", "Answers by outcome.", "outcome"),
            answer_seconds: histogram(
                "answer_seconds",
                "Time from reading an answer to queueing its acknowledgement.",
            ),
            rooms: gauge("rooms", "Quizzes with members on this node."),
            backplane_errors: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "backplane_errors_total",
                        "Failed backplane calls, by call (the Redis script) and kind.",
                    ),
                    &["call", "kind"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(c.clone()))
                    .expect("registered once");
                c
            },
            refused: counter_vec(
                "refused_total",
                "Requests and connections refused by a check or a limit, by reason.",
                "reason",
            ),
            connections_opened: counter(
                "connections_opened_total",
                "WebSocket connections opened.",
            ),
            players: gauge("players", "Players seated on this node."),
            event_delivery_seconds: histogram(
                "event_delivery_seconds",
                "From an event's publication to its write into this node's sockets.",
            ),
            backplane_call_seconds: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "backplane_call_seconds",
                        "Client-driven backplane calls by kind, from the slot taken to the answer.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["call"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("registered once");
                h
            },
            admission_wait_seconds: histogram(
                "admission_wait_seconds",
                "Time a client-driven call waited for a call slot.",
            ),
            draining: gauge("draining", "1 while the node drains, else 0."),
            ready: gauge(
                "ready",
                "1 while the node takes traffic (/readyz 200), else 0.",
            ),
            backplane_up: gauge(
                "backplane_up",
                "1 while the backplane (Redis) is reachable, else 0.",
            ),
            build_info: {
                let g = IntGaugeVec::new(
                    Opts::new("build_info", "Always 1, labelled with the running version."),
                    &["version"],
                )
                .expect("valid metric");
                registry
                    .register(Box::new(g.clone()))
                    .expect("registered once");
                g.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
                g
            },
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric names, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.connections.set(3);
        m.answers.with_label_values(&["accepted"]).inc();
        let text = m.render();
        assert!(text.contains("quizgate_connections 3"), "{text}");
        assert!(
            text.contains("quizgate_answers_total{outcome=\"accepted\"} 1"),
            "{text}"
        );
    }
}
