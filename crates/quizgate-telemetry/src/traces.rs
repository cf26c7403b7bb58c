//! OpenTelemetry traces: spans of the `tracing` crate exported over OTLP
//! (HTTP, protobuf) when an endpoint is configured, and the W3C trace
//! context that carries a trace from the node that caused an event, inside
//! the published event, to every node that fans it out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Where and how much to trace (`QUIZGATE_OTLP_ENDPOINT`,
/// `QUIZGATE_TRACE_SAMPLE_RATIO`).
#[derive(Debug, Clone)]
pub struct TraceConfig {
    /// The collector's OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// The share of commands traced, 0 to 1; an event is traced on every
    /// node when the command that caused it was.
    pub sample_ratio: f64,
    /// `service.instance.id`: this node.
    pub instance: String,
}

static ON: AtomicBool = AtomicBool::new(false);
/// The sample ratio's bits (an f64).
static RATIO: AtomicU64 = AtomicU64::new(0);

/// Whether spans are exported: when not, callers skip making them, so that
/// tracing off costs nothing on the hot paths.
pub fn tracing_on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Whether to trace the command about to be handled: tracing is on and a
/// draw falls under the sample ratio. Sampling is decided here, before any
/// span is made, so that the commands not traced cost one draw; what they
/// cause is traced with them, through the context their events carry.
pub fn sample_command() -> bool {
    tracing_on() && rand::random::<f64>() < f64::from_bits(RATIO.load(Ordering::Relaxed))
}

/// The exporter, alive while the node runs; [`Traces::shutdown`] sends what
/// is left.
#[derive(Debug)]
pub struct Traces(SdkTracerProvider);

impl Traces {
    /// Builds the exporter and the provider: call from within the tokio
    /// runtime, whose tasks do the exporting.
    pub(crate) fn start(
        config: &TraceConfig,
    ) -> Result<(Self, opentelemetry_sdk::trace::Tracer), String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(&config.endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("OTLP exporter for {}: {e}", config.endpoint))?;
        let batch =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            // The gateway samples commands itself (`sample_command`): every
            // span it makes is to be exported.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(
                Resource::builder()
                    .with_service_name("quizgate")
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.instance.id",
                        config.instance.clone(),
                    ))
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("quizgate");
        RATIO.store(config.sample_ratio.to_bits(), Ordering::Relaxed);
        ON.store(true, Ordering::Relaxed);
        Ok((Self(provider), tracer))
    }

    /// Exports what is left. Call outside the runtime's tasks (its worker
    /// threads do the exporting), before the runtime goes.
    pub fn shutdown(self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("quizgate: traces not all exported: {e}");
        }
    }
}

/// The current span's context as a W3C `traceparent`, if it is sampled:
/// what a published event carries so that the nodes fanning it out join the
/// trace. `None` when tracing is off or this work is not sampled.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_sampled() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span named by `traceparent`, on whichever
/// node that was.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    let _ = span.set_parent(remote(traceparent));
}

/// Links `span` to the span named by `traceparent`.
pub fn add_remote_link(span: &tracing::Span, traceparent: &str) {
    let cx = remote(traceparent);
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

/// The trace id of the current span, for log lines; `None` if it is not
/// sampled (an unsampled command is never exported, so its id names nothing).
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    (sc.is_valid() && sc.is_sampled()).then(|| sc.trace_id().to_string())
}

/// Whether the current span is sampled: work under an unsampled command
/// makes no span of its own.
pub fn current_is_sampled() -> bool {
    tracing::Span::current()
        .context()
        .span()
        .span_context()
        .is_sampled()
}

fn remote(traceparent: &str) -> opentelemetry::Context {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}
