use std::str::FromStr;

use tracing_subscriber::{EnvFilter, Layer};

use crate::traces::{TraceConfig, Traces};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, fields first: for log shippers.
    Json,
    /// Human-readable lines: for a terminal.
    Text,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            other => Err(format!("{other:?} is not a log format (json, text)")),
        }
    }
}

/// Installs the global subscriber: logs to stderr, and spans to an OTLP
/// collector when `traces` says where (call from within the tokio runtime
/// then). `filter` uses `RUST_LOG` syntax (`info,quizgate_gateway=debug`)
/// and applies to the logs only: spans are exported at INFO whatever the
/// log level, so that `QUIZGATE_LOG=warn` does not silence traces. JSON
/// lines carry the fields of the span they were logged in (quiz, player,
/// trace id).
pub fn init_logging(
    format: LogFormat,
    filter: &str,
    traces: Option<&TraceConfig>,
) -> Result<Option<Traces>, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid log filter {filter:?}: {e}"))?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let (traces, otel) = match traces {
        Some(config) => {
            let (traces, tracer) = Traces::start(config)?;
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            (Some(traces), Some(layer))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(traces)
}
