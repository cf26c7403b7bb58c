//! One task per WebSocket connection: reads client frames, asks the backplane,
//! writes replies, and forwards the quiz's events from the connection's queue.

mod handlers;
mod limits;

pub(crate) use self::limits::{Limits, Over};

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quizgate_protocol::{Encoding, ErrorCode, ServerFrame};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use self::limits::spread;
use crate::close::{self, Eviction, Why};
use crate::guard::{AddressKey, Admitted};
use crate::node::Node;
use crate::outbound::{Outbound, framed};
use crate::registry::{ConnId, Room, Seat};
use crate::wire::{Wire, WireStream};

/// Queued frames written per flush.
const WRITE_BATCH: usize = 32;

/// What the loop does next.
enum Step {
    Continue,
    /// Close for this reason, then end.
    Close(Why),
    /// The peer is gone or closing: end without a close frame of our own.
    End,
}

struct Connection {
    node: Arc<Node>,
    id: ConnId,
    /// Where the client comes from, for its address's join limit.
    address: AddressKey,
    encoding: Encoding,
    ws: WebSocketStream<WireStream>,
    /// The socket under `ws`, shared with the fan-out (see `crate::wire`).
    wire: Arc<Wire>,
    /// Mirrors the room member's seat (see [`Connection::sit`]).
    state: Seat,
    /// The room this connection is a member of, from `enter` to `leave`.
    room: Option<Arc<Room>>,
    /// The queue of events and direct frames; present once attached to a room.
    rx: Option<mpsc::Receiver<Outbound>>,
    evicted: Arc<Eviction>,
    limits: Limits,
    last_inbound: Instant,
}

/// Serves one WebSocket until the client leaves, misbehaves, or the node drains.
/// On `drain`, the close (1001) comes after a per-connection delay within the
/// drain window, so that clients do not all reconnect in the same instant.
pub(crate) async fn serve(
    node: Arc<Node>,
    ws: WebSocketStream<WireStream>,
    wire: Arc<Wire>,
    encoding: Encoding,
    drain: CancellationToken,
    // Held for the connection's whole life: its slots among the node's and
    // its address's connections.
    admitted: Admitted,
) {
    let id = node.next_conn_id();
    node.metrics.connections.inc();
    node.metrics.connections_opened.inc();
    let rate = node.config.frames_per_second;
    let mut conn = Connection {
        id,
        address: admitted.key,
        encoding,
        ws,
        wire,
        state: Seat::Empty,
        room: None,
        rx: None,
        evicted: Arc::default(),
        limits: Limits::new(rate),
        last_inbound: Instant::now(),
        node,
    };
    if let Some(why) = conn.run(drain).await {
        let limit = conn.node.config.write_timeout.min(Duration::from_secs(2));
        close::close(&mut conn.ws, why, &conn.node.metrics, limit).await;
    }
    conn.leave();
    conn.node.metrics.connections.dec();
    drop(admitted);
}

/// `/ws/echo` (`QUIZGATE_ECHO_ENDPOINT`): sends every text and binary message
/// back as it came, under the `/ws` configuration (frame size, UTF-8, the
/// frame rate, pings, the drain), for WebSocket conformance suites. It joins
/// no quiz and takes no backplane call.
pub(crate) async fn echo(
    node: Arc<Node>,
    mut ws: WebSocketStream<WireStream>,
    drain: CancellationToken,
    _admitted: Admitted,
) {
    let mut limits = Limits::new(node.config.frames_per_second);
    let limit = node.config.write_timeout;
    let why = loop {
        let msg = tokio::select! {
            _ = drain.cancelled() => break Some(Why::Draining),
            msg = ws.next() => msg,
        };
        let reply = match msg {
            None => break None,
            Some(Err(e)) => break Why::of_read_error(&e),
            Some(Ok(Message::Close(_))) => {
                // tungstenite answers the close; let it go out.
                let _ = timeout(Duration::from_secs(1), ws.flush()).await;
                break None;
            }
            Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => Some(msg),
            Some(Ok(_)) => None,
        };
        if let Some(limits::Over::Closed) = limits.over_rate() {
            break Some(Why::Abuse);
        }
        let sent = match reply {
            Some(msg) => timeout(limit, ws.send(msg)).await,
            // A ping's pong, queued by tungstenite, goes out now.
            None => timeout(limit, ws.flush()).await,
        };
        if !matches!(sent, Ok(Ok(()))) {
            break None;
        }
    };
    if let Some(why) = why {
        close::close(&mut ws, why, &node.metrics, Duration::from_secs(2)).await;
    }
}

// === impl Connection ===

impl Connection {
    async fn run(&mut self, drain: CancellationToken) -> Option<Why> {
        let ping_every = self.node.config.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let drain_at = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(drain_at);
        // A socket that never takes a seat would hold a connection slot for
        // nothing (docs/security.md): it has this long to join, resume or host.
        let join_by = tokio::time::sleep(self.node.config.join_timeout);
        tokio::pin!(join_by);
        let mut seated = false;
        let mut draining = false;
        loop {
            let step = tokio::select! {
                _ = drain.cancelled(), if !draining => {
                    draining = true;
                    drain_at.as_mut().reset(Instant::now() + spread(self.id, self.node.config.drain_window));
                    Step::Continue
                }
                () = &mut drain_at => Step::Close(Why::Draining),
                () = &mut join_by, if !seated => {
                    if self.room.is_some() {
                        seated = true;
                        Step::Continue
                    } else {
                        self.node.refuse("join_timeout");
                        Step::Close(Why::JoinTimeout)
                    }
                }
                out = recv(&mut self.rx) => match out {
                    Some(out) => self.forward(out).await,
                    None => Step::Close(self.evicted.why()),
                },
                msg = self.ws.next() => self.on_message(msg).await,
                // Bytes wait in the wire for the socket (see `crate::wire`).
                () = self.wire.wake.notified() => self.flush_pending().await,
                _ = ping.tick() => self.on_ping_tick().await,
            };
            match step {
                Step::Continue => {}
                Step::Close(code) => return Some(code),
                Step::End => return None,
            }
        }
    }

    /// Writes one queued item and whatever else is queued (up to a batch), in
    /// one write; an event the client already has is skipped.
    async fn forward(&mut self, first: Outbound) -> Step {
        let mut items = vec![first];
        while items.len() < WRITE_BATCH {
            match self.rx.as_mut().and_then(|rx| rx.try_recv().ok()) {
                Some(out) => items.push(out),
                None => break,
            }
        }
        let written = self
            .wire
            .write_queued(items.iter().map(|out| out.framed(self.encoding)));
        match written {
            Ok(n) => {
                self.node.metrics.frames_out.inc_by(n as u64);
                self.flush_pending().await
            }
            Err(_) => Step::Close(Why::QueueFull),
        }
    }

    /// Writes what waits in the wire, within the write timeout.
    async fn flush_pending(&mut self) -> Step {
        if !self.wire.has_pending() {
            return Step::Continue;
        }
        if self.write(|ws| ws.flush()).await {
            Step::Continue
        } else {
            Step::End
        }
    }

    /// Handles one client frame. Events that arrive meanwhile wait in the
    /// queue: the reply comes before any broadcast the request caused.
    async fn handle(&mut self, frame: &[u8]) -> Step {
        self.wire.busy(true);
        // Boxed: the handlers' state exists only while a frame is handled,
        // not for the whole life of every idle connection.
        let step = Box::pin(self.on_frame(frame)).await;
        self.wire.busy(false);
        step
    }

    async fn on_message(&mut self, msg: Option<Result<Message, tungstenite::Error>>) -> Step {
        self.last_inbound = Instant::now();
        let msg = match msg {
            None => return Step::End,
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Why::of_read_error(&e).map_or(Step::End, Step::Close),
        };
        match (msg, self.encoding) {
            (Message::Text(text), Encoding::Json) => self.handle(text.as_bytes()).await,
            (Message::Binary(bytes), Encoding::MsgPack) => self.handle(&bytes).await,
            (Message::Text(_), Encoding::MsgPack) | (Message::Binary(_), Encoding::Json) => {
                Step::Close(Why::WrongFrameType)
            }
            (Message::Close(_), _) => {
                // tungstenite queued the reply; keep polling until it is sent.
                let _ = timeout(Duration::from_secs(1), async {
                    while self.ws.next().await.is_some() {}
                })
                .await;
                Step::End
            }
            // Control frames cost a read and (for pings) a pong: they count
            // against the frame rate too, but get no error frame.
            (Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => {
                match self.limits.over_rate() {
                    Some(limits::Over::Closed) => Step::Close(Why::Abuse),
                    Some(limits::Over::Refused) | None => Step::Continue,
                }
            }
        }
    }

    /// Takes a seat in the room, for this connection and its member alike.
    fn sit(&mut self, room: &Room, seat: Seat, claim: Option<u64>) {
        room.set_seat(self.id, seat, claim);
        let players = &self.node.metrics.players;
        match (self.state, seat) {
            (Seat::Player(_), Seat::Player(_)) => {}
            (Seat::Player(_), _) => players.dec(),
            (_, Seat::Player(_)) => players.inc(),
            _ => {}
        }
        self.state = seat;
    }

    /// Detaches from the room, if attached.
    fn leave(&mut self) {
        if let Some(room) = self.room.take() {
            self.node.registry.detach(&room, self.id);
        }
        self.wire.go_quiet();
        self.rx = None;
        if matches!(self.state, Seat::Player(_)) {
            self.node.metrics.players.dec();
        }
        self.state = Seat::Empty;
    }

    async fn on_ping_tick(&mut self) -> Step {
        if self.last_inbound.elapsed() > 2 * self.node.config.ping_interval {
            return Step::Close(Why::Unresponsive);
        }
        if self
            .write(|ws| ws.send(Message::Ping(Default::default())))
            .await
        {
            Step::Continue
        } else {
            Step::End
        }
    }

    async fn error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        rid: Option<u64>,
    ) -> Step {
        self.node
            .metrics
            .errors
            .with_label_values(&[code.as_str()])
            .inc();
        self.send(&ServerFrame::error(code, message, rid)).await
    }

    async fn backplane_error(
        &mut self,
        call: &'static str,
        e: &quizgate_backplane::BackplaneError,
        rid: Option<u64>,
    ) -> Step {
        let (code, message) = self.node.backplane_error(call, e);
        self.error(code, message, rid).await
    }

    /// Sends one frame of this connection's own (a reply, a welcome).
    async fn send(&mut self, frame: &ServerFrame) -> Step {
        self.send_framed(&framed(self.encoding, frame), 1).await
    }

    /// Writes `n` complete frames through the wire, then waits until the
    /// socket took them (within the write timeout).
    async fn send_framed(&mut self, frames: &[u8], n: u64) -> Step {
        self.node.metrics.frames_out.inc_by(n);
        if self.wire.write(frames).is_err() {
            return Step::End;
        }
        self.flush_pending().await
    }

    /// Runs one write with the write timeout; false if the connection is done.
    async fn write<'a, F, Fut>(&'a mut self, op: F) -> bool
    where
        F: FnOnce(&'a mut WebSocketStream<WireStream>) -> Fut,
        Fut: std::future::Future<Output = Result<(), tungstenite::Error>> + 'a,
    {
        let limit = self.node.config.write_timeout;
        matches!(timeout(limit, op(&mut self.ws)).await, Ok(Ok(())))
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
