//! What an operator sees of a node: structured logs (JSON by default) through
//! `tracing`, and Prometheus metrics. Metric labels only ever carry bounded
//! values (frame kinds, outcomes, close codes), never quiz or player ids.

mod logging;
mod metrics;

pub use logging::{LogFormat, init_logging};
pub use metrics::Metrics;
