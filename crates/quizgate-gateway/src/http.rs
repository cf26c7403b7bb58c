//! HTTP: the hosts' API on the public port, and health, readiness and metrics on
//! the private admin port.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{
    AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, HOST, HeaderName, HeaderValue, IF_NONE_MATCH, ORIGIN, REFERRER_POLICY,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use quizgate_backplane::{CreateLimits, Creation};
use quizgate_domain::{DomainError, QuizDefinition};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::guard::{AddressKey, Admitted, Unauthorized};
use crate::node::Node;
use crate::session::Role as TokenRole;

type Reply = Response<Full<Bytes>>;

pub(crate) const HOST_NOT_ALLOWED: &str =
    "this node does not answer to that Host: see QUIZGATE_ALLOWED_HOSTS";

/// Serves one public HTTP connection; `admitted` (its slots among the node's
/// and its address's connections) is held until it closes.
pub(crate) async fn serve_public<S>(
    node: Arc<Node>,
    stream: S,
    admitted: Admitted,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = node.config.handshake_timeout;
    let key = admitted.key;
    let svc = service_fn(move |req| {
        let node = Arc::clone(&node);
        async move { Ok::<_, Infallible>(public(node, key, req).await) }
    });
    // Moved into the connection's future: released when it ends.
    let _admitted = admitted;
    // One request per connection (`Connection: close`): what tells HTTP from
    // WebSocket is a connection's first request, and clients that pool
    // connections (Node's fetch and WebSocket share one pool) would send an
    // upgrade on a kept-alive HTTP connection.
    serve(stream, svc, header_timeout, false, stop).await;
}

/// Answers a connection that may not be served (the node or its address is
/// at its connection limit), without reading its request.
pub(crate) async fn refuse<S>(mut stream: S, status: u16, message: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (reason, code) = match status {
        429 => ("Too Many Requests", "rate_limited"),
        _ => ("Service Unavailable", "unavailable"),
    };
    let body = json!({"error": code, "message": message}).to_string();
    let reply = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Retry-After: 1\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Write, then read what the client sent (at most 64 KiB, for at most a
    // second) before closing: closing with its request unread would reset the
    // connection, and the client might lose the answer.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            if stream.read(&mut sink).await? == 0 {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Serves the admin port until `stop`. Its connections are tracked here, not
/// with the node's client connections, so that a keep-alive scraper never holds
/// up a drain; probes keep being answered while the node drains.
pub(crate) async fn serve_admin(node: Arc<Node>, listener: TcpListener, stop: CancellationToken) {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let node2 = Arc::clone(&node);
        let stop = stop.clone();
        connections.spawn(async move {
            let svc = service_fn(move |req| {
                let node = Arc::clone(&node2);
                async move { Ok::<_, Infallible>(admin(&node, &req)) }
            });
            serve(stream, svc, Duration::from_secs(10), true, stop).await;
        });
    }
    // Each connection shuts down gracefully on `stop`, within 5 s.
    connections.close();
    connections.wait().await;
}

/// Serves one HTTP/1.1 connection; a request's headers must arrive within
/// `header_timeout` (hyper closes the connection otherwise).
async fn serve<I, S>(
    stream: I,
    svc: S,
    header_timeout: Duration,
    keep_alive: bool,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Reply, Error = Infallible>,
    S::Future: Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

fn admin(node: &Node, req: &Request<Incoming>) -> Reply {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(
            StatusCode::OK,
            concat!("ok quizgate ", env!("CARGO_PKG_VERSION"), "\n"),
        ),
        (&Method::GET, "/readyz") if node.is_ready() => text(StatusCode::OK, "ready\n"),
        (&Method::GET, "/readyz") => {
            let why = node
                .backplane
                .not_ready_reason()
                .unwrap_or_else(|| "starting or draining".into());
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {why}\n"),
            )
        }
        (&Method::GET, "/metrics") => {
            let free = node.connection_slots.available_permits();
            node.metrics
                .client_connections
                .set(node.config.max_connections.saturating_sub(free) as i64);
            node.metrics.addresses.set(node.addresses.tracked() as i64);
            node.metrics.ready.set(i64::from(node.is_ready()));
            node.metrics
                .backplane_up
                .set(i64::from(node.backplane.is_ready()));
            // The backplane counts its delivery path; the counters catch up.
            let stats = node.backplane.delivery_stats();
            let m = &node.metrics;
            for (counter, total) in [
                (&m.pubsub_messages, stats.messages),
                (&m.gap_fills, stats.gap_fills),
                (&m.resyncs, stats.resyncs),
            ] {
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            with_header(
                text(StatusCode::OK, &node.metrics.render()),
                CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )
        }
        (_, "/healthz" | "/readyz" | "/metrics") => not_allowed("GET"),
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

async fn public(node: Arc<Node>, key: AddressKey, req: Request<Incoming>) -> Reply {
    if !node
        .hosts
        .allows(req.headers().get(HOST).map(|v| v.as_bytes()))
    {
        node.refuse("host");
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            HOST_NOT_ALLOWED,
        );
    }
    if let Some(reply) = web(&req) {
        return reply;
    }
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/quizzes") => {
            let span = if quizgate_telemetry::sample_command() {
                tracing::info_span!(
                    "command",
                    otel.name = "create",
                    quiz = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                )
            } else {
                tracing::Span::none()
            };
            if let Some(id) = span.in_scope(quizgate_telemetry::current_trace_id) {
                span.record("trace_id", id.as_str());
            }
            create_quiz(&node, key, req).instrument(span).await
        }
        (_, "/v1/quizzes") => not_allowed("POST"),
        (_, "/ws") => error(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "/ws takes WebSocket upgrades only",
        ),
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

async fn create_quiz(node: &Node, address: AddressKey, req: Request<Incoming>) -> Reply {
    if !node
        .origins
        .allows(req.headers().get(ORIGIN).map(|v| v.as_bytes()))
    {
        node.refuse("origin");
        return error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not create quizzes: see QUIZGATE_ALLOWED_ORIGINS",
        );
    }
    let access = &node.config.create_access;
    let principal = match access.check(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())) {
        Ok(principal) => principal,
        Err(why) => {
            node.refuse("unauthorized");
            let message = match why {
                Unauthorized::Missing => {
                    "creating a quiz needs Authorization: Bearer <API key or JWT>"
                }
                Unauthorized::Wrong => "this API key or token is not valid",
            };
            return with_header(
                error(StatusCode::UNAUTHORIZED, "unauthorized", message),
                WWW_AUTHENTICATE,
                "Bearer realm=\"quizgate\"",
            );
        }
    };
    if !node.addresses.create(address) {
        node.refuse("address_creations");
        return with_header(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many quizzes created from your address: see QUIZGATE_CREATES_PER_ADDRESS",
            ),
            hyper::header::RETRY_AFTER,
            "2",
        );
    }
    if !is_json(req.headers().get(CONTENT_TYPE)) {
        node.refuse("content_type");
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the definition with Content-Type: application/json",
        );
    }
    let quota = principal
        .as_ref()
        .map_or(node.config.quota, |p| p.overrides.apply(node.config.quota));
    let max_body = quota.definition_bytes as usize;
    let too_large = || {
        node.refuse("definition_bytes");
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the body must be at most {max_body} bytes (your quota)"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return too_large();
    }
    let read = tokio::time::timeout(
        node.config.http_body_timeout,
        Limited::new(req.into_body(), max_body).collect(),
    );
    let body = match read.await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(_) => {
            node.refuse("body_timeout");
            let message = format!(
                "the body did not arrive within {} ms",
                node.config.http_body_timeout.as_millis()
            );
            return with_header(
                error(StatusCode::REQUEST_TIMEOUT, "body_timeout", &message),
                CONNECTION,
                "close",
            );
        }
        Ok(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "could not read the body",
            );
        }
    };
    let def = match parse_definition(&body) {
        Ok(def) => def,
        Err(reply) => return reply,
    };
    if let Err(DomainError::InvalidDefinition { field, reason }) = def.validate() {
        return invalid_definition(&field, &reason);
    }
    let limits = CreateLimits {
        owner: principal.as_ref().map(|p| p.name.clone()),
        live_quizzes: quota.live_quizzes,
        max_players: quota.players,
    };
    let key = principal.as_ref().map_or("(open)", |p| p.name.as_str());
    match node
        .call("create", node.backplane.create_quiz(def, &limits))
        .await
    {
        Ok(Creation::OverQuota) => {
            node.refuse("live_quizzes");
            tracing::info!(
                key,
                quota = quota.live_quizzes,
                "quiz creation refused: quota"
            );
            let message = format!(
                "this credential already has {} live quizzes, its quota: end one, or wait for one to expire",
                quota.live_quizzes
            );
            error(StatusCode::FORBIDDEN, "quota_exceeded", &message)
        }
        Ok(Creation::Created(created)) => {
            tracing::Span::current().record("quiz", created.code.as_str());
            tracing::info!(quiz = %created.code, key, "quiz created");
            let host_token = node.sessions.sign(
                TokenRole::Host,
                created.code.as_str(),
                &created.host_token,
                node.backplane.now_ms(),
            );
            json_reply(
                StatusCode::CREATED,
                &json!({"code": created.code.as_str(), "host_token": host_token}),
            )
        }
        Err(e) => {
            let (code, message) = node.backplane_error("create", &e);
            error(StatusCode::SERVICE_UNAVAILABLE, code.as_str(), message)
        }
    }
}

/// The pages and their assets (`quizgate-web`), and the QR code of a join
/// URL (`/qr.svg?text=…`); `None` for any other path.
fn web(req: &Request<Incoming>) -> Option<Reply> {
    let path = req.uri().path();
    let asset = quizgate_web::asset(path);
    if asset.is_none() && path != "/qr.svg" {
        return None;
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Some(not_allowed("GET, HEAD"));
    }
    let mut reply = match asset {
        Some(a) => {
            let unchanged = req
                .headers()
                .get(IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == a.etag.as_bytes());
            let mut reply = if unchanged {
                text(StatusCode::NOT_MODIFIED, "")
            } else {
                with_header(
                    Response::new(Full::new(Bytes::from_static(a.body))),
                    CONTENT_TYPE,
                    a.content_type,
                )
            };
            let headers = reply.headers_mut();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(a.cache_control));
            headers.insert(ETAG, HeaderValue::from_static(a.etag));
            reply
        }
        None => {
            let text_param = req.uri().query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "text")
                    .map(|(_, v)| v.into_owned())
            });
            match text_param.as_deref().and_then(quizgate_web::qr_svg) {
                Some(svg) => with_header(
                    with_header(
                        Response::new(Full::new(Bytes::from(svg))),
                        CONTENT_TYPE,
                        "image/svg+xml",
                    ),
                    CACHE_CONTROL,
                    "public, max-age=3600",
                ),
                None => error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!(
                        "give the text to encode as ?text=…, at most {} bytes",
                        quizgate_web::MAX_QR_TEXT
                    ),
                ),
            }
        }
    };
    let headers = reply.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(quizgate_web::CONTENT_SECURITY_POLICY),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Some(reply)
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(content_type: Option<&hyper::header::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads a definition: bad JSON is `invalid_json`; JSON of the wrong shape (a
/// wrong type or sign, an unknown or missing field) is `invalid_definition`
/// naming the field, as the domain's range checks do.
// The error is the reply itself, made once per bad request: its size is no cost.
#[allow(clippy::result_large_err)]
fn parse_definition(body: &[u8]) -> Result<QuizDefinition, Reply> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let def = serde_path_to_error::deserialize::<_, QuizDefinition>(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if field == "." {
                    "definition".to_owned()
                } else {
                    field
                };
                invalid_definition(&field, &plain_words(&inner.to_string()))
            }
            _ => error(StatusCode::BAD_REQUEST, "invalid_json", &inner.to_string()),
        }
    })?;
    de.end()
        .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_json", &e.to_string()))?;
    Ok(def)
}

fn invalid_definition(field: &str, reason: &str) -> Reply {
    json_reply(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_definition", "field": field, "message": format!("{field}: {reason}")}),
    )
}

/// serde's messages in a client author's words: no Rust types, no positions.
fn plain_words(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    [
        ("u8", "an integer from 0 to 255"),
        ("u16", "an integer from 0 to 65535"),
        ("u32", "an integer from 0 to 4294967295"),
        ("u64", "an integer from 0 to 18446744073709551615"),
        ("a sequence", "an array"),
        ("struct QuizDefinition", "an object"),
        ("struct Question", "an object"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (rust, words)| {
        m.replace(&format!("expected {rust}"), &format!("expected {words}"))
    })
}

/// 405, with the `Allow` header RFC 9110 asks for.
fn not_allowed(allow: &'static str) -> Reply {
    with_header(
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("use {allow}"),
        ),
        hyper::header::ALLOW,
        allow,
    )
}

/// The reply with one more header.
fn with_header(mut reply: Reply, name: HeaderName, value: &'static str) -> Reply {
    reply
        .headers_mut()
        .insert(name, hyper::header::HeaderValue::from_static(value));
    reply
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json_reply(status, &json!({"error": code, "message": message}))
}

fn json_reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    with_header(resp, CONTENT_TYPE, "application/json")
}
