//! One WebSocket client: connect from a chosen source address, send and
//! receive frames in either encoding.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use quizgate_protocol::{Encoding, ServerFrame};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) type Ws = WebSocketStream<TcpStream>;

pub(crate) async fn connect(source: IpAddr, node: SocketAddr, encoding: Encoding) -> Result<Ws> {
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(node))
        .await
        .context("connect timeout")??;
    stream.set_nodelay(true)?;
    let mut req = format!("ws://{node}/ws").into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(encoding.subprotocol()),
    );
    // Small buffers: this process holds thousands of sockets too.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)),
    )
    .await
    .context("handshake timeout")??;
    Ok(ws)
}

pub(crate) async fn send(ws: &mut Ws, encoding: Encoding, frame: serde_json::Value) -> Result<()> {
    let msg = match encoding {
        Encoding::Json => Message::text(frame.to_string()),
        Encoding::MsgPack => Message::binary(rmp_serde::to_vec_named(&frame)?),
    };
    ws.send(msg).await?;
    Ok(())
}

/// The next server frame; `None` when the connection ended.
pub(crate) async fn recv(ws: &mut Ws, encoding: Encoding) -> Option<ServerFrame> {
    loop {
        let msg = ws.next().await?.ok()?;
        let frame = match (msg, encoding) {
            (Message::Text(t), Encoding::Json) => serde_json::from_str(t.as_str()).ok(),
            (Message::Binary(b), Encoding::MsgPack) => rmp_serde::from_slice(&b).ok(),
            (Message::Close(_), _) => return None,
            _ => continue,
        };
        if frame.is_some() {
            return frame;
        }
    }
}
