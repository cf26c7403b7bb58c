//! One task per WebSocket connection: reads client frames, asks the backplane,
//! writes replies, and forwards the quiz's events from the connection's queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use quizgate_backplane::{JoinResult, ResumeResult, SessionToken};
use quizgate_domain::{
    AnswerOutcome, CommandOutcome, HostCommand, JoinCode, JoinRefused, PlayerId, QuizSnapshot,
    validate_nickname,
};
use quizgate_protocol::{
    AnswerResult, AnswerStatus, ClientFrame, CloseCode, Encoding, ErrorCode, Role, ServerFrame,
    Welcome,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::registry::{ConnId, Member, Outbound, Room, encode, eviction_close};
use crate::view::{event_frame, quiz_view};

/// Bad frames a connection may send before it is closed with 1008.
const MAX_BAD_FRAMES: u32 = 20;
/// Frames dropped by the rate limit before the connection is closed with 1008.
const MAX_RATE_LIMITED: u32 = 50;
/// Queued frames written per flush.
const WRITE_BATCH: usize = 32;

/// What the loop does next.
enum Step {
    Continue,
    /// Close with this code, then end.
    Close(CloseCode),
    /// The peer is gone or closing: end without a close frame of our own.
    End,
}

enum State {
    Fresh,
    Player(PlayerId),
    Host,
}

struct Connection {
    node: Arc<Node>,
    id: ConnId,
    encoding: Encoding,
    ws: WebSocketStream<TcpStream>,
    state: State,
    /// The room this connection is a member of, from `enter` to `leave`.
    room: Option<Arc<Room>>,
    /// The queue of events and direct frames; present once attached to a room.
    rx: Option<mpsc::Receiver<Outbound>>,
    evicted: Arc<AtomicU8>,
    /// The last sequence number this client has been sent (or given in a snapshot).
    last_seq: u64,
    bucket: TokenBucket,
    bad_frames: u32,
    rate_limited: u32,
    last_inbound: Instant,
}

/// Serves one WebSocket until the client leaves, misbehaves, or the node drains.
/// On `drain`, the close (1001) comes after a per-connection delay within the
/// drain window, so that clients do not all reconnect in the same instant.
pub(crate) async fn serve(
    node: Arc<Node>,
    ws: WebSocketStream<TcpStream>,
    encoding: Encoding,
    drain: CancellationToken,
    // Held for the connection's whole life: see `Node::connection_slots`.
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let id = node.next_conn_id();
    node.metrics.connections.inc();
    let rate = node.config.frames_per_second;
    let mut conn = Connection {
        id,
        encoding,
        ws,
        state: State::Fresh,
        room: None,
        rx: None,
        evicted: Arc::default(),
        last_seq: 0,
        bucket: TokenBucket::new(rate),
        bad_frames: 0,
        rate_limited: 0,
        last_inbound: Instant::now(),
        node,
    };
    let end = conn.run(drain).await;
    if let Some(code) = end {
        conn.close(code).await;
    }
    conn.leave();
    conn.node.metrics.connections.dec();
}

// === impl Connection ===

impl Connection {
    async fn run(&mut self, drain: CancellationToken) -> Option<CloseCode> {
        let ping_every = self.node.config.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let drain_at = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(drain_at);
        let mut draining = false;
        loop {
            let step = tokio::select! {
                _ = drain.cancelled(), if !draining => {
                    draining = true;
                    drain_at.as_mut().reset(Instant::now() + spread(self.id, self.node.config.drain_window));
                    Step::Continue
                }
                () = &mut drain_at => Step::Close(CloseCode::GoingAway),
                out = recv(&mut self.rx) => match out {
                    Some(out) => self.forward(out).await,
                    None => Step::Close(eviction_close(self.evicted.load(Ordering::SeqCst))),
                },
                msg = self.ws.next() => self.on_message(msg).await,
                _ = ping.tick() => self.on_ping_tick().await,
            };
            match step {
                Step::Continue => {}
                Step::Close(code) => return Some(code),
                Step::End => return None,
            }
        }
    }

    /// Writes one queued item and whatever else is queued, then flushes once.
    async fn forward(&mut self, first: Outbound) -> Step {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(out) = next.take() {
            let msg = match out {
                Outbound::Event(ev) if ev.seq <= self.last_seq => None,
                Outbound::Event(ev) => {
                    self.last_seq = ev.seq;
                    Some(ev.message(self.encoding))
                }
                Outbound::Direct(msg) => Some(*msg),
            };
            if let Some(msg) = msg {
                if !self.write(|ws| ws.feed(msg)).await {
                    return Step::End;
                }
                written += 1;
            }
            if written < WRITE_BATCH {
                next = self.rx.as_mut().and_then(|rx| rx.try_recv().ok());
            }
        }
        self.node.metrics.frames_out.inc_by(written as u64);
        if self.write(|ws| ws.flush()).await {
            Step::Continue
        } else {
            Step::End
        }
    }

    async fn on_message(&mut self, msg: Option<Result<Message, tungstenite::Error>>) -> Step {
        self.last_inbound = Instant::now();
        let msg = match msg {
            None => return Step::End,
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return close_for(&e),
        };
        match (msg, self.encoding) {
            // Boxed: the handlers' state exists only while a frame is handled,
            // not for the whole life of every idle connection.
            (Message::Text(text), Encoding::Json) => Box::pin(self.on_frame(text.as_bytes())).await,
            (Message::Binary(bytes), Encoding::MsgPack) => Box::pin(self.on_frame(&bytes)).await,
            (Message::Text(_), Encoding::MsgPack) | (Message::Binary(_), Encoding::Json) => {
                Step::Close(CloseCode::UnsupportedData)
            }
            (Message::Close(_), _) => {
                // tungstenite queued the reply; keep polling until it is sent.
                let _ = timeout(Duration::from_secs(1), async {
                    while self.ws.next().await.is_some() {}
                })
                .await;
                Step::End
            }
            (Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => Step::Continue,
        }
    }

    async fn on_frame(&mut self, bytes: &[u8]) -> Step {
        // Decoded before the rate limit (decoding is bounded by the frame size)
        // so that even a `rate_limited` error can echo the frame's `rid`.
        let decoded = quizgate_protocol::decode(self.encoding, bytes);
        if !self.bucket.take() {
            self.rate_limited += 1;
            if self.rate_limited > MAX_RATE_LIMITED {
                return Step::Close(CloseCode::PolicyViolation);
            }
            let rid = match &decoded {
                Ok(frame) => frame.rid(),
                Err(e) => e.rid(),
            };
            return self
                .error(ErrorCode::RateLimited, "too many frames: slow down", rid)
                .await;
        }
        let frame = match decoded {
            Ok(frame) => frame,
            Err(e) => {
                self.node
                    .metrics
                    .frames_in
                    .with_label_values(&["invalid"])
                    .inc();
                self.bad_frames += 1;
                if self.bad_frames > MAX_BAD_FRAMES {
                    return Step::Close(CloseCode::PolicyViolation);
                }
                return self.error(e.code(), e.to_string(), e.rid()).await;
            }
        };
        self.node
            .metrics
            .frames_in
            .with_label_values(&[frame.kind()])
            .inc();
        let hello = matches!(
            frame,
            ClientFrame::Join { .. } | ClientFrame::Resume { .. } | ClientFrame::Host { .. }
        );
        if hello && !matches!(self.state, State::Fresh) {
            return self
                .error(
                    ErrorCode::AlreadyJoined,
                    "this connection already joined a quiz",
                    frame.rid(),
                )
                .await;
        }
        match frame {
            ClientFrame::Join {
                code,
                nickname,
                rid,
            } => self.on_join(&code, &nickname, rid).await,
            ClientFrame::Resume {
                token,
                last_seq,
                rid,
            } => self.on_resume(&token, last_seq, rid).await,
            ClientFrame::Host {
                code,
                token,
                last_seq,
                rid,
            } => self.on_host(&code, &token, last_seq, rid).await,
            ClientFrame::Answer {
                question,
                choice,
                rid,
            } => self.on_answer(question, choice, rid).await,
            ClientFrame::Start { rid } => self.on_command(HostCommand::Start, "start", rid).await,
            ClientFrame::Next { rid } => self.on_command(HostCommand::Next, "next", rid).await,
            ClientFrame::Skip { rid } => self.on_command(HostCommand::Skip, "skip", rid).await,
            ClientFrame::End { rid } => self.on_command(HostCommand::End, "end", rid).await,
            ClientFrame::Ping { rid } => {
                self.send(&ServerFrame::Pong {
                    rid,
                    ts: self.node.backplane.now_ms(),
                })
                .await
            }
        }
    }

    async fn on_join(&mut self, code: &str, nickname: &str, rid: Option<u64>) -> Step {
        let code = match self.join_code(code, rid).await {
            Ok(code) => code,
            Err(step) => return step,
        };
        let nickname = match validate_nickname(nickname) {
            Ok(n) => n.to_owned(),
            Err(e) => {
                return self
                    .error(ErrorCode::InvalidNickname, e.to_string(), rid)
                    .await;
            }
        };
        let room = match self.enter(&code, rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        match self
            .node
            .call(self.node.backplane.join(&code, &nickname))
            .await
        {
            Ok(JoinResult::Joined(session)) => {
                room.set_player(self.id, session.player_id);
                room.mark_dirty();
                self.state = State::Player(session.player_id);
                {
                    let session = *session;
                    let mut welcome = Self::welcome(&room, Role::Player, session.snapshot, rid);
                    welcome.player_id = Some(session.player_id);
                    welcome.token = Some(session.token);
                    self.send_welcome(welcome).await
                }
            }
            Ok(JoinResult::Refused(refused)) => {
                self.leave();
                let (code, message) = match refused {
                    JoinRefused::NicknameTaken => (
                        ErrorCode::NicknameTaken,
                        "nickname already taken in this quiz",
                    ),
                    JoinRefused::QuizEnded => (ErrorCode::QuizEnded, "the quiz has ended"),
                    JoinRefused::QuizFull => (ErrorCode::QuizFull, "the quiz is full"),
                };
                self.error(code, message, rid).await
            }
            Ok(JoinResult::NotFound) => {
                self.leave();
                self.error(ErrorCode::QuizNotFound, "no quiz with that code", rid)
                    .await
            }
            Err(e) => {
                self.leave();
                self.backplane_error(&e, rid).await
            }
        }
    }

    async fn on_resume(&mut self, token: &str, last_seq: u64, rid: Option<u64>) -> Step {
        let Some(token) = SessionToken::parse(token) else {
            return self
                .error(ErrorCode::InvalidToken, "not a session token", rid)
                .await;
        };
        let room = match self.enter(&token.code, rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        match self
            .node
            .call(self.node.backplane.resume(&token, last_seq))
            .await
        {
            Ok(ResumeResult::Resumed { session, missed }) => {
                room.set_player(self.id, session.player_id);
                self.state = State::Player(session.player_id);
                let mut welcome = Self::welcome(&room, Role::Player, session.snapshot, rid);
                welcome.player_id = Some(session.player_id);
                welcome.resumed = Some(missed.is_some());
                self.send_welcome_and_missed(&room, welcome, missed, last_seq)
                    .await
            }
            Ok(ResumeResult::InvalidToken) => {
                self.leave();
                self.error(
                    ErrorCode::InvalidToken,
                    "unknown or forged session token",
                    rid,
                )
                .await
            }
            Err(e) => {
                self.leave();
                self.backplane_error(&e, rid).await
            }
        }
    }

    async fn on_host(
        &mut self,
        code: &str,
        token: &str,
        last_seq: Option<u64>,
        rid: Option<u64>,
    ) -> Step {
        let code = match self.join_code(code, rid).await {
            Ok(code) => code,
            Err(step) => return step,
        };
        let room = match self.enter(&code, rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        match self
            .node
            .call(self.node.backplane.host(&code, token, last_seq))
            .await
        {
            Ok(Some(hosted)) => {
                self.state = State::Host;
                let mut welcome = Self::welcome(&room, Role::Host, hosted.snapshot, rid);
                welcome.resumed = last_seq.map(|_| hosted.missed.is_some());
                self.send_welcome_and_missed(&room, welcome, hosted.missed, last_seq.unwrap_or(0))
                    .await
            }
            Ok(None) => {
                self.leave();
                self.error(ErrorCode::InvalidToken, "wrong host token", rid)
                    .await
            }
            Err(e) => {
                self.leave();
                self.backplane_error(&e, rid).await
            }
        }
    }

    /// A reconnecting client's welcome, then the events it missed (after
    /// `last_seq`), in order, before anything else queued for it.
    async fn send_welcome_and_missed(
        &mut self,
        room: &Room,
        welcome: Welcome,
        missed: quizgate_backplane::Missed,
        last_seq: u64,
    ) -> Step {
        match self.send_welcome(welcome).await {
            Step::Continue => {}
            other => return other,
        }
        for ev in missed
            .unwrap_or_default()
            .iter()
            .filter(|ev| ev.seq > last_seq)
        {
            let msg = encode(self.encoding, &event_frame(&room.definition, ev));
            if !self.write(|ws| ws.feed(msg)).await {
                return Step::End;
            }
        }
        if self.write(|ws| ws.flush()).await {
            Step::Continue
        } else {
            Step::End
        }
    }

    async fn on_answer(&mut self, question: u16, choice: u8, rid: Option<u64>) -> Step {
        let started = std::time::Instant::now();
        let (room, player) = match (&self.state, &self.room) {
            (State::Player(player), Some(room)) => (Arc::clone(room), *player),
            (State::Host, _) => {
                return self
                    .error(ErrorCode::NotJoined, "only players answer", rid)
                    .await;
            }
            _ => {
                return self
                    .error(ErrorCode::NotJoined, "join a quiz first", rid)
                    .await;
            }
        };
        let call = self
            .node
            .backplane
            .answer(&room.code, player, question, choice);
        let outcome = match self.node.call(call).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                return self
                    .error(ErrorCode::QuizNotFound, "the quiz no longer exists", rid)
                    .await;
            }
            Err(e) => return self.backplane_error(&e, rid).await,
        };
        let result = |status, record: Option<quizgate_domain::AnswerRecord>| AnswerResult {
            rid,
            question,
            status,
            choice: record.map(|r| r.choice),
            points: record.map(|r| r.points),
            total: record.map(|r| r.total),
        };
        let (label, frame) = match outcome {
            AnswerOutcome::Accepted(r) => {
                room.mark_dirty();
                ("accepted", result(AnswerStatus::Accepted, Some(r)))
            }
            AnswerOutcome::Duplicate(r) => ("duplicate", result(AnswerStatus::Duplicate, Some(r))),
            AnswerOutcome::Late => ("late", result(AnswerStatus::Late, None)),
            AnswerOutcome::WrongPhase => ("wrong_phase", result(AnswerStatus::WrongPhase, None)),
            AnswerOutcome::InvalidChoice => {
                self.node
                    .metrics
                    .answers
                    .with_label_values(&["invalid_choice"])
                    .inc();
                return self
                    .error(
                        ErrorCode::InvalidChoice,
                        "no such choice in this question",
                        rid,
                    )
                    .await;
            }
        };
        self.node.metrics.answers.with_label_values(&[label]).inc();
        let step = self.send(&ServerFrame::AnswerResult(frame)).await;
        self.node
            .metrics
            .answer_seconds
            .observe(started.elapsed().as_secs_f64());
        step
    }

    async fn on_command(&mut self, cmd: HostCommand, name: &'static str, rid: Option<u64>) -> Step {
        let room = match (&self.state, &self.room) {
            (State::Host, Some(room)) => Arc::clone(room),
            (State::Player(_), _) => {
                return self
                    .error(ErrorCode::NotHost, "only the host may do that", rid)
                    .await;
            }
            _ => {
                return self
                    .error(ErrorCode::NotJoined, "authenticate as host first", rid)
                    .await;
            }
        };
        match self
            .node
            .call(self.node.backplane.command(&room.code, cmd))
            .await
        {
            Ok(Some(CommandOutcome::Done)) => {
                self.send(&ServerFrame::Ack {
                    rid,
                    command: name.to_owned(),
                })
                .await
            }
            Ok(Some(CommandOutcome::WrongPhase)) => {
                self.error(
                    ErrorCode::WrongPhase,
                    format!("{name} does not fit the quiz's phase"),
                    rid,
                )
                .await
            }
            Ok(None) => {
                self.error(ErrorCode::QuizNotFound, "the quiz no longer exists", rid)
                    .await
            }
            Err(e) => self.backplane_error(&e, rid).await,
        }
    }

    /// Parses a join code typed by a person; on failure the error has been sent.
    async fn join_code(&mut self, raw: &str, rid: Option<u64>) -> Result<JoinCode, Step> {
        match JoinCode::parse(raw) {
            Ok(code) => Ok(code),
            Err(e) => Err(self.error(ErrorCode::InvalidCode, e.to_string(), rid).await),
        }
    }

    /// Attaches this connection to the quiz's room; afterwards every event of
    /// the quiz reaches its queue. On failure, the error has been sent.
    async fn enter(&mut self, code: &JoinCode, rid: Option<u64>) -> Result<Arc<Room>, Step> {
        let (tx, rx) = mpsc::channel(self.node.config.outbound_queue);
        let member = Member::new(tx, self.encoding, Arc::clone(&self.evicted));
        match self
            .node
            .registry
            .attach(code, self.id, member, self.node.backplane.as_ref())
            .await
        {
            Ok(Some(room)) => {
                self.rx = Some(rx);
                // Until the join succeeds this connection is a member without a
                // player; `leave` undoes it on failure.
                self.room = Some(Arc::clone(&room));
                Ok(room)
            }
            Ok(None) => Err(self
                .error(ErrorCode::QuizNotFound, "no quiz with that code", rid)
                .await),
            Err(e) => Err(self.backplane_error(&e, rid).await),
        }
    }

    /// The welcome for this connection's room; callers fill in the player's fields.
    fn welcome(room: &Room, role: Role, snapshot: QuizSnapshot, rid: Option<u64>) -> Welcome {
        Welcome {
            rid,
            role,
            code: room.code.to_string(),
            title: room.definition.title.clone(),
            player_id: None,
            token: None,
            resumed: None,
            quiz: quiz_view(&room.definition, snapshot),
        }
    }

    /// Sends the welcome; the client has everything up to its snapshot's `seq`.
    async fn send_welcome(&mut self, welcome: Welcome) -> Step {
        if let Some(room) = &self.room {
            room.observe_view(&welcome.quiz);
        }
        self.last_seq = welcome.quiz.seq;
        self.send(&ServerFrame::Welcome(Box::new(welcome))).await
    }

    /// Detaches from the room, if attached.
    fn leave(&mut self) {
        if let Some(room) = self.room.take() {
            self.node.registry.detach(&room, self.id);
        }
        self.rx = None;
        self.state = State::Fresh;
    }

    async fn on_ping_tick(&mut self) -> Step {
        if self.last_inbound.elapsed() > 2 * self.node.config.ping_interval {
            self.node
                .metrics
                .closes
                .with_label_values(&["timeout"])
                .inc();
            return Step::End;
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
        e: &quizgate_backplane::BackplaneError,
        rid: Option<u64>,
    ) -> Step {
        let (code, message) = self.node.backplane_error(e);
        self.error(code, message, rid).await
    }

    async fn send(&mut self, frame: &ServerFrame) -> Step {
        let msg = encode(self.encoding, frame);
        self.node.metrics.frames_out.inc();
        if self.write(|ws| ws.send(msg)).await {
            Step::Continue
        } else {
            Step::End
        }
    }

    /// Runs one write with the write timeout; false if the connection is done.
    async fn write<'a, F, Fut>(&'a mut self, op: F) -> bool
    where
        F: FnOnce(&'a mut WebSocketStream<TcpStream>) -> Fut,
        Fut: std::future::Future<Output = Result<(), tungstenite::Error>> + 'a,
    {
        let limit = self.node.config.write_timeout;
        matches!(timeout(limit, op(&mut self.ws)).await, Ok(Ok(())))
    }

    async fn close(&mut self, code: CloseCode) {
        self.node
            .metrics
            .closes
            .with_label_values(&[&code.code().to_string()])
            .inc();
        close_ws(
            &mut self.ws,
            code,
            self.node.config.write_timeout.min(Duration::from_secs(2)),
        )
        .await;
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The close code for a failed read, if the connection can still take one.
fn close_for(e: &tungstenite::Error) -> Step {
    use tungstenite::Error;
    match e {
        Error::Capacity(_) => Step::Close(CloseCode::MessageTooBig),
        Error::Utf8(_) => Step::Close(CloseCode::InvalidPayload),
        // The peer went away without a close frame: nobody to send one to.
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            Step::End
        }
        Error::Protocol(_) => Step::Close(CloseCode::ProtocolError),
        _ => Step::End,
    }
}

/// This connection's place in the drain window: spread evenly by id.
fn spread(id: ConnId, window: Duration) -> Duration {
    let ms = window.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    // Fibonacci hashing spreads consecutive ids over the whole window.
    Duration::from_millis(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ms)
}

/// Allows `rate` frames per second with bursts of `2 × rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: 2.0 * rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(2.0 * self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Sends a close frame and waits (at most `limit`) for the client's reply.
pub(crate) async fn close_ws(
    ws: &mut WebSocketStream<TcpStream>,
    code: CloseCode,
    limit: Duration,
) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: Utf8Bytes::from_static(code.reason()),
    };
    let _ = timeout(limit, async {
        if ws.close(Some(frame)).await.is_ok() {
            while ws.next().await.is_some() {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn token_bucket_allows_bursts_then_the_rate() {
        let mut b = TokenBucket::new(5);
        assert_eq!(
            (0..12).filter(|_| b.take()).count(),
            10,
            "burst of 2 × rate"
        );
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!((0..12).filter(|_| b.take()).count(), 5, "then the rate");
    }

    #[test]
    fn drain_spread_stays_in_the_window() {
        let window = Duration::from_secs(5);
        let spreads: Vec<Duration> = (1..=1000).map(|id| spread(id, window)).collect();
        assert!(spreads.iter().all(|d| *d < window));
        let early = spreads
            .iter()
            .filter(|d| **d < Duration::from_millis(2500))
            .count();
        assert!(
            (400..=600).contains(&early),
            "{early} of 1000 in the first half"
        );
        assert_eq!(spread(7, Duration::ZERO), Duration::ZERO);
    }
}
