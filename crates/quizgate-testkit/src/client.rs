use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use quizgate_protocol::{Encoding, ServerFrame};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What a client's WebSocket runs over: a TCP stream, or TLS over one.
pub(crate) trait Io:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// A WebSocket client speaking JSON or MessagePack. It keeps every broadcast
/// frame it received, so tests can check order and gaps.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<Box<dyn Io>>,
    pub encoding: Encoding,
    /// Every sequenced frame received, in arrival order.
    pub events: Vec<ServerFrame>,
    /// Every frame received, as the JSON value it decodes to (MessagePack
    /// frames carry the same maps), for checks against the protocol's schema.
    pub received: Vec<serde_json::Value>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, encoding: Encoding) -> Result<Self> {
        Self::connect_with(addr, Some(encoding.subprotocol()))
            .await
            .map(|(c, _)| c)
    }

    /// Connects offering `subprotocol` (or none); returns the negotiated header.
    pub async fn connect_with(
        addr: SocketAddr,
        subprotocol: Option<&str>,
    ) -> Result<(Self, Option<String>)> {
        let stream = TcpStream::connect(addr).await?;
        Self::handshake(stream, addr, subprotocol, &[]).await
    }

    /// Connects in `encoding` with extra request headers (an `Origin`, say).
    pub async fn connect_with_headers(
        addr: SocketAddr,
        encoding: Encoding,
        headers: &[(&str, &str)],
    ) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        Self::handshake(stream, addr, Some(encoding.subprotocol()), headers)
            .await
            .map(|(c, _)| c)
    }

    /// Does the WebSocket handshake over a stream the caller opened (and may
    /// have written something to first, such as a PROXY protocol header).
    pub async fn handshake_over(
        stream: TcpStream,
        addr: SocketAddr,
        encoding: Encoding,
    ) -> Result<Self> {
        Self::handshake(stream, addr, Some(encoding.subprotocol()), &[])
            .await
            .map(|(c, _)| c)
    }

    /// Connects from a chosen loopback source address (127.0.0.2, ...), so that
    /// a load balancer hashing on the source sees many clients.
    pub async fn connect_from(
        source: std::net::IpAddr,
        addr: SocketAddr,
        encoding: Encoding,
    ) -> Result<Self> {
        let socket = if source.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = tokio::time::timeout(crate::WAIT, socket.connect(addr))
            .await
            .context("connect timed out")??;
        Self::handshake(stream, addr, Some(encoding.subprotocol()), &[])
            .await
            .map(|(c, _)| c)
    }

    /// Connects over TLS, trusting the CA (or self-signed certificate) in
    /// `ca_pem` for the name `localhost`.
    pub async fn connect_tls(
        addr: SocketAddr,
        encoding: Encoding,
        ca_pem: &std::path::Path,
    ) -> Result<Self> {
        let stream = crate::tls::connect(addr, ca_pem).await?;
        Self::handshake(stream, addr, Some(encoding.subprotocol()), &[])
            .await
            .map(|(c, _)| c)
    }

    async fn handshake(
        stream: impl Io + 'static,
        addr: SocketAddr,
        subprotocol: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(Self, Option<String>)> {
        let stream: Box<dyn Io> = Box::new(stream);
        let mut req = format!("ws://{addr}/ws").into_client_request()?;
        for (name, value) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
        if let Some(p) = subprotocol {
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p)?);
        }
        let (ws, resp) =
            tokio::time::timeout(crate::WAIT, tokio_tungstenite::client_async(req, stream))
                .await
                .context("handshake timed out")??;
        let chosen = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let encoding = chosen
            .as_deref()
            .and_then(Encoding::from_subprotocol)
            .unwrap_or(Encoding::Json);
        Ok((
            Self {
                ws,
                encoding,
                events: Vec::new(),
                received: Vec::new(),
            },
            chosen,
        ))
    }

    /// Sends a frame given as JSON, in this client's encoding.
    pub async fn send(&mut self, frame: serde_json::Value) -> Result<()> {
        let msg = match self.encoding {
            Encoding::Json => Message::text(frame.to_string()),
            Encoding::MsgPack => Message::binary(rmp_serde::to_vec_named(&frame)?),
        };
        self.send_raw(msg).await
    }

    pub async fn send_raw(&mut self, msg: Message) -> Result<()> {
        tokio::time::timeout(crate::WAIT, self.ws.send(msg))
            .await
            .context("send timed out")??;
        Ok(())
    }

    /// The next frame; fails on close, on timeout, or on a frame that does not decode.
    pub async fn recv(&mut self) -> Result<ServerFrame> {
        self.recv_within(crate::WAIT).await
    }

    pub async fn recv_within(&mut self, limit: Duration) -> Result<ServerFrame> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("no frame in time")?;
            let value: serde_json::Value = match msg {
                Some(Ok(Message::Text(t))) if self.encoding == Encoding::Json => {
                    serde_json::from_str(t.as_str()).with_context(|| format!("decode {t}"))?
                }
                Some(Ok(Message::Binary(b))) if self.encoding == Encoding::MsgPack => {
                    rmp_serde::from_slice(&b).context("decode msgpack")?
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(c))) => bail!("closed: {c:?}"),
                Some(Ok(other)) => bail!("unexpected message {other:?}"),
                Some(Err(e)) => bail!("read error: {e}"),
                None => bail!("connection ended"),
            };
            let frame: ServerFrame =
                serde_json::from_value(value.clone()).with_context(|| format!("decode {value}"))?;
            self.received.push(value);
            if frame.seq().is_some() {
                self.events.push(frame.clone());
            }
            return Ok(frame);
        }
    }

    /// Receives until `pred` holds for a frame, and returns that frame.
    pub async fn recv_until(
        &mut self,
        what: &str,
        pred: impl Fn(&ServerFrame) -> bool,
    ) -> Result<ServerFrame> {
        for _ in 0..10_000 {
            let f = self
                .recv()
                .await
                .with_context(|| format!("waiting for {what}"))?;
            if pred(&f) {
                return Ok(f);
            }
        }
        bail!("{what} never came")
    }

    /// Waits for the server's close frame (skipping other frames) and returns its code.
    pub async fn closed(&mut self) -> Result<u16> {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        for _ in 0..10_000 {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("no close in time")?
            {
                Some(Ok(Message::Close(Some(c)))) => return Ok(u16::from(c.code)),
                Some(Ok(Message::Close(None))) => return Ok(1005),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("read error before close: {e}"),
                None => bail!("ended without a close frame"),
            }
        }
        bail!("no close")
    }

    /// The sequence numbers received so far.
    pub fn seqs(&self) -> Vec<u64> {
        self.events.iter().filter_map(ServerFrame::seq).collect()
    }
}
