//! Traces across the Pub/Sub hop: two Redis-backed nodes export to an OTLP
//! receiver inside the test, and the spans of one answer arrive from both,
//! with the right parents and links.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::{RedisServer, create_quiz, sample_quiz};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::support::{answer, command, host, player, redis_node};

/// One exported span, with the node it came from.
#[derive(Debug, Clone)]
struct Exported {
    node: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    links: Vec<(Vec<u8>, Vec<u8>)>,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP receiver: takes `POST /v1/traces` (protobuf), keeps every
/// span, answers 200.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Exported>>>,
    _tasks: JoinSet<()>,
}

impl Receiver {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let store = Arc::clone(&spans);
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, Arc::clone(&store)));
            }
        });
        Ok(Self {
            addr,
            spans,
            _tasks: tasks,
        })
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// HTTP/1.1 requests on one kept-alive connection, until it closes.
async fn serve(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Exported>>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        // Headers; bounded by the connection's own end.
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            store.extend(spans_of(request));
        }
        let ok =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if reader.get_mut().write_all(ok).await.is_err() {
            return;
        }
    }
}

fn text(attrs: &[KeyValue]) -> HashMap<String, String> {
    attrs
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(AnyValue::StringValue(s)) => s,
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn spans_of(request: ExportTraceServiceRequest) -> Vec<Exported> {
    let mut out = Vec::new();
    for rs in request.resource_spans {
        let resource = text(&rs.resource.map(|r| r.attributes).unwrap_or_default());
        let node = resource
            .get("service.instance.id")
            .cloned()
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.push(Exported {
                    node: node.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent: span.parent_span_id,
                    links: span
                        .links
                        .into_iter()
                        .map(|l| (l.trace_id, l.span_id))
                        .collect(),
                    attributes: text(&span.attributes),
                });
            }
        }
    }
    out
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_answers_spans_arrive_from_both_nodes_with_parents_and_links() -> Result<()> {
    let receiver = Receiver::start().await?;
    let redis = RedisServer::start_ephemeral().await?;
    let endpoint = receiver.endpoint();
    let traced = |id: &'static str| {
        vec![
            ("QUIZGATE_OTLP_ENDPOINT", endpoint.clone()),
            ("QUIZGATE_TRACE_SAMPLE_RATIO", "1".to_owned()),
            ("QUIZGATE_NODE_ID", id.to_owned()),
            // Export every 100 ms, not every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ]
    };
    let env_a = traced("node-a");
    let mut env_b = traced("node-b");
    // Its fan-out logs at WARN only: its spans are exported all the same.
    env_b.push((
        "QUIZGATE_LOG",
        "info,quizgate_gateway::registry=warn".to_owned(),
    ));
    let a = redis_node(&redis.url(), &refs(&env_a)).await?;
    let b = redis_node(&redis.url(), &refs(&env_b)).await?;

    let (code, token) = create_quiz(a.ws_addr, &sample_quiz(1, 60_000)).await?;
    let (mut h, _) = host(a.ws_addr, &code, &token).await?;
    let (mut ann, _) = player(a.ws_addr, Encoding::Json, &code, "ann").await?;
    let (mut bob, _) = player(b.ws_addr, Encoding::MsgPack, &code, "bob").await?;
    command(&mut h, "start").await?;
    answer(&mut bob, 0, 0).await?;
    // Ann's answer is the last: it closes the question, and the reveal goes
    // out through both nodes.
    answer(&mut ann, 0, 1).await?;
    for c in [&mut ann, &mut bob] {
        c.recv_until("the reveal", |f| matches!(f, ServerFrame::Reveal { .. }))
            .await?;
    }

    // The answer on node A, its Redis call, and a fan-out on each node.
    let found = quizgate_testkit::wait_until(
        "the answer's spans from both nodes",
        Duration::from_secs(10),
        || async {
            let spans = receiver.spans();
            let answers: Vec<&Exported> = spans
                .iter()
                .filter(|s| s.node == "node-a" && s.name == "answer")
                .collect();
            for cmd in answers {
                let Some(call) = spans.iter().find(|s| {
                    s.parent == cmd.span_id
                        && s.attributes.get("call").is_some_and(|c| c == "answer")
                }) else {
                    continue;
                };
                let fan_outs: Vec<&Exported> = spans
                    .iter()
                    .filter(|s| s.name == "fan_out" && s.parent == call.span_id)
                    .collect();
                let nodes: Vec<&str> = fan_outs.iter().map(|s| s.node.as_str()).collect();
                if nodes.contains(&"node-a") && nodes.contains(&"node-b") {
                    return Ok((
                        cmd.clone(),
                        call.clone(),
                        fan_outs.into_iter().cloned().collect::<Vec<_>>(),
                    ));
                }
            }
            let seen: Vec<String> = spans
                .iter()
                .map(|s| {
                    format!(
                        "{}:{} {}<-{} {:?}",
                        s.node,
                        s.name,
                        hex(&s.span_id),
                        hex(&s.parent),
                        s.attributes.get("call")
                    )
                })
                .collect();
            bail!("not yet: {seen:#?}")
        },
    )
    .await?;
    let (cmd, call, fan_outs) = found;
    assert_eq!(call.trace_id, cmd.trace_id);
    assert_eq!(call.node, "node-a");
    for f in &fan_outs {
        assert_eq!(f.trace_id, cmd.trace_id, "one trace across the hop: {f:?}");
        assert!(
            f.links
                .contains(&(call.trace_id.clone(), call.span_id.clone())),
            "linked to the publishing call: {f:?}"
        );
        assert_eq!(f.attributes.get("quiz"), Some(&code));
        assert!(
            f.attributes.get("members").is_some_and(|m| m != "0"),
            "{f:?}"
        );
        assert!(f.attributes.contains_key("encode_us"), "{f:?}");
    }
    assert_eq!(cmd.attributes.get("quiz"), Some(&code));
    // The trace id is in the log lines of the work it traces: the quiz's
    // creation, here.
    let created = receiver
        .spans()
        .into_iter()
        .find(|s| s.name == "create" && s.attributes.get("quiz") == Some(&code))
        .context("the creation's span")?;
    let trace_id = hex(&created.trace_id);
    assert!(
        a.logs()
            .iter()
            .any(|l| l.contains("quiz created") && l.contains(&trace_id)),
        "node A logs the creation with trace {trace_id}"
    );
    Ok(())
}

#[tokio::test]
async fn unsampled_work_is_neither_exported_nor_named_in_logs() -> Result<()> {
    let receiver = Receiver::start().await?;
    let env = vec![
        ("QUIZGATE_OTLP_ENDPOINT", receiver.endpoint()),
        ("QUIZGATE_TRACE_SAMPLE_RATIO", "0".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let node = crate::support::node(&refs(&env)).await?;
    let (code, token) = create_quiz(node.ws_addr, &sample_quiz(1, 60_000)).await?;
    let (mut h, _) = host(node.ws_addr, &code, &token).await?;
    let (mut ann, _) = player(node.ws_addr, Encoding::Json, &code, "ann").await?;
    command(&mut h, "start").await?;
    answer(&mut ann, 0, 0).await?;
    // Ten export periods: anything sampled would have arrived.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.spans().len(), 0);
    let created = node
        .logs()
        .into_iter()
        .find(|l| l.contains("quiz created"))
        .context("the creation's log line")?;
    assert!(!created.contains("trace_id"), "{created}");
    Ok(())
}
