//! The public listener: every TCP connection is either a WebSocket upgrade on
//! `/ws` (the lean path: tokio-tungstenite's own handshake, no HTTP stack kept
//! per connection) or an HTTP request for the hosts' API, served by hyper.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use quizgate_protocol::{Encoding, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_util::sync::CancellationToken;

use crate::close::{Why, close};
use crate::guard::{AddressKey, AddressSlot, Admitted};
use crate::node::Node;
use crate::wire::{Wire, WireStream};

/// Accepts until `stop`; connection tasks end on `drain`.
pub(crate) async fn accept(
    node: Arc<Node>,
    listener: TcpListener,
    stop: CancellationToken,
    drain: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let node2 = Arc::clone(&node);
                let drain = drain.clone();
                node.tasks
                    .spawn(async move { handle(node2, stream, peer.ip(), drain).await });
            }
            Err(e) => {
                // Out of file descriptors, mostly: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(node: Arc<Node>, mut stream: TcpStream, peer: IpAddr, drain: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let client = if node.config.proxy_protocol {
        match timeout(
            node.config.handshake_timeout,
            crate::proxy::read_header(&mut stream, peer),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %peer, "no PROXY protocol header");
                node.refuse("proxy_header");
                return;
            }
            Err(_) => return handshake_timed_out(&node),
        }
    } else {
        peer
    };
    let key = AddressKey::of(client);
    // Every client connection holds a slot of the node's and one of its
    // address's, HTTP ones too: idle or slow HTTP connections cannot pile up
    // beside the WebSockets, and one address cannot take every slot.
    let slot = Arc::clone(&node.connection_slots).try_acquire_owned().ok();
    let address = node.addresses.connect(key);
    // The socket is shared from here on: the fan-out writes events into it
    // without waking the connection's task (see `crate::wire`). With TLS,
    // the handshake comes first (within the same deadline) and the wire
    // holds the session. Either way the request line is read through the
    // wire to tell WebSocket from HTTP.
    let started = tokio::time::Instant::now();
    let limit = node.config.handshake_timeout;
    let wire = match &node.tls {
        None => Wire::new(stream, node.metrics.bytes_out.clone()),
        Some(tls) => match timeout(limit, tls.acceptor.accept(stream)).await {
            Ok(Ok(accepted)) => {
                let (tcp, session) = accepted.into_inner();
                Wire::new_tls(tcp, session, node.metrics.bytes_out.clone())
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %client, "TLS handshake failed");
                node.refuse("tls");
                return;
            }
            Err(_) => return handshake_timed_out(&node),
        },
    };
    match timeout(limit.saturating_sub(started.elapsed()), sniff(&wire)).await {
        Ok(Ok(true)) => websocket(node, wire, key, slot, address, drain).await,
        Ok(Ok(false)) => http(node, WireStream(wire), key, slot, address, drain).await,
        _ => handshake_timed_out(&node),
    }
}

fn handshake_timed_out(node: &Node) {
    node.metrics
        .handshakes
        .with_label_values(&["timeout"])
        .inc();
}

/// Serves an HTTP connection, or answers 503/429 if it holds no slot.
async fn http<S>(
    node: Arc<Node>,
    io: S,
    key: AddressKey,
    slot: Option<OwnedSemaphorePermit>,
    address: Option<AddressSlot>,
    drain: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match (slot, address) {
        (Some(slot), Some(address)) => {
            let admitted = Admitted::new(key, slot, address);
            crate::http::serve_public(node, io, admitted, drain).await;
        }
        (None, _) => {
            node.metrics.handshakes.with_label_values(&["full"]).inc();
            crate::http::refuse(io, 503, "node at its connection limit, retry").await;
        }
        (Some(_), None) => {
            node.refuse("address_connections");
            crate::http::refuse(io, 429, TOO_MANY_CONNECTIONS).await;
        }
    }
}

const TOO_MANY_CONNECTIONS: &str =
    "too many connections from your address: see QUIZGATE_MAX_CONNECTIONS_PER_ADDRESS";

/// `GET /ws` (then a space, a `?`, or the `/` of `/ws/echo`) goes to the
/// WebSocket handshake, everything else to HTTP; `None` while `seen` is too
/// short to tell.
fn is_websocket_line(seen: &[u8]) -> Option<bool> {
    const WS: &[u8] = b"GET /ws";
    if !WS.starts_with(&seen[..seen.len().min(WS.len())]) {
        return Some(false);
    }
    (seen.len() > WS.len()).then(|| matches!(seen[WS.len()], b' ' | b'?' | b'/'))
}

/// Reads the first bytes of the request through the wire (see
/// [`is_websocket_line`]), then gives them back to it for whoever reads next.
async fn sniff(wire: &Arc<Wire>) -> std::io::Result<bool> {
    use tokio::io::AsyncReadExt;
    let mut stream = WireStream(Arc::clone(wire));
    let mut buf = [0u8; 8];
    let mut n = 0;
    let decided = loop {
        let read = stream.read(&mut buf[n..]).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        n += read;
        if let Some(ws) = is_websocket_line(&buf[..n]) {
            break ws;
        }
    };
    wire.unread(&buf[..n]);
    Ok(decided)
}

// tungstenite's callback type fixes the error type's size.
#[allow(clippy::result_large_err)]
async fn websocket(
    node: Arc<Node>,
    wire: Arc<Wire>,
    key: AddressKey,
    slot: Option<OwnedSemaphorePermit>,
    address: Option<AddressSlot>,
    drain: CancellationToken,
) {
    let mut encoding = Encoding::Json;
    let mut echo = false;
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        match req.uri().path() {
            "/ws" => {}
            "/ws/echo" if node.config.echo_endpoint => echo = true,
            _ => return Err(reject(StatusCode::NOT_FOUND, "no such endpoint: use /ws")),
        }
        if address.is_none() {
            node.refuse("address_connections");
            return Err(reject(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_CONNECTIONS));
        }
        if !node
            .hosts
            .allows(req.headers().get(header::HOST).map(|v| v.as_bytes()))
        {
            node.refuse("host");
            return Err(reject(
                StatusCode::MISDIRECTED_REQUEST,
                crate::http::HOST_NOT_ALLOWED,
            ));
        }
        let origin = req.headers().get(header::ORIGIN).map(|v| v.as_bytes());
        if !node.origins.allows(origin) {
            node.refuse("origin");
            return Err(reject(
                StatusCode::FORBIDDEN,
                "origin not allowed: see QUIZGATE_ALLOWED_ORIGINS",
            ));
        }
        if let Some(offered) = req.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
            let offered = offered.to_str().unwrap_or_default();
            let Some(chosen) = offered.split(',').find_map(Encoding::from_subprotocol) else {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "unsupported subprotocol: offer {SUBPROTOCOL_JSON} or {SUBPROTOCOL_MSGPACK}"
                    ),
                ));
            };
            encoding = chosen;
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(chosen.subprotocol()),
            );
        }
        Ok(resp)
    };
    wire.begin_handshake(node.config.frames_per_second);
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        WireStream(Arc::clone(&wire)),
        callback,
        Some(node.ws_config),
    );
    let ws = match timeout(node.config.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "websocket handshake refused");
            node.metrics
                .handshakes
                .with_label_values(&["rejected"])
                .inc();
            return;
        }
        Err(_) => return handshake_timed_out(&node),
    };
    let (Some(slot), Some(address)) = (slot, address) else {
        node.metrics.handshakes.with_label_values(&["full"]).inc();
        let mut ws = ws;
        close(
            &mut ws,
            Why::AtCapacity,
            &node.metrics,
            Duration::from_secs(2),
        )
        .await;
        return;
    };
    node.metrics.handshakes.with_label_values(&["ok"]).inc();
    // A task of its own: this one (and the handshake's state) ends here, so an
    // idle connection keeps only what serving it needs.
    let node2 = Arc::clone(&node);
    let admitted = Admitted::new(key, slot, address);
    if echo {
        node.tasks
            .spawn(crate::connection::echo(node2, ws, drain, admitted));
        return;
    }
    node.tasks.spawn(crate::connection::serve(
        node2, ws, wire, encoding, drain, admitted,
    ));
}

fn reject(status: StatusCode, message: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(message.to_owned()));
    *resp.status_mut() = status;
    resp
}
