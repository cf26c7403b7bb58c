//! What an operator sees of a node: structured logs (JSON by default) through
//! `tracing`, OpenTelemetry traces over OTLP, and Prometheus metrics. Metric
//! labels only ever carry bounded values (frame kinds, outcomes, close
//! codes), never quiz or player ids; spans and log lines may.

mod logging;
mod metrics;
mod traces;

pub use logging::{LogFormat, init_logging};
pub use metrics::Metrics;
pub use traces::{
    TraceConfig, Traces, add_remote_link, current_is_sampled, current_trace_id,
    current_traceparent, sample_command, set_remote_parent, tracing_on,
};
