//! What each client frame does: decode, limits, then one handler per frame
//! type, each asking the backplane and answering the client.

use std::sync::Arc;

use quizgate_backplane::{JoinResult, ResumeResult, SessionToken};
use quizgate_domain::{
    AnswerOutcome, CommandOutcome, HostCommand, JoinCode, JoinRefused, PlayerId, QuizSnapshot,
    RemoveOutcome, validate_nickname,
};
use quizgate_protocol::{
    AnswerResult, AnswerStatus, ClientFrame, ErrorCode, Role, ServerFrame, Welcome,
};
use tokio::sync::mpsc;

use super::limits::Over;
use super::{Connection, Step};
use crate::close::Why;
use crate::outbound::framed;
use tracing::Instrument;

use crate::registry::{Member, Room, Seat};
use crate::session::{Refused, Role as TokenRole};
use crate::view::{event_frame, quiz_view};

/// What a host command came to: done or refused with an error (`None`: the
/// quiz is gone), or the backplane failed.
type HostOutcome =
    Result<Option<Result<(), (ErrorCode, String)>>, quizgate_backplane::BackplaneError>;

// === impl Connection ===

impl Connection {
    pub(super) async fn on_frame(&mut self, bytes: &[u8]) -> Step {
        // Decoded before the rate limit (decoding is bounded by the frame size)
        // so that even a `rate_limited` error can echo the frame's `rid`.
        let decoded = quizgate_protocol::decode(self.encoding, bytes);
        if let Some(over) = self.limits.over_rate() {
            if over == Over::Closed {
                return Step::Close(Why::Abuse);
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
                if self.limits.bad_frame() == Over::Closed {
                    return Step::Close(Why::Abuse);
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
        if hello && !matches!(self.state, Seat::Empty) {
            return self
                .error(
                    ErrorCode::AlreadyJoined,
                    "this connection already joined a quiz",
                    frame.rid(),
                )
                .await;
        }
        let span = self.command_span(&frame);
        self.dispatch(frame).instrument(span).await
    }

    /// The span of one client command, when traced: the quiz and the player
    /// it concerns and its trace id, on its log lines too.
    fn command_span(&self, frame: &ClientFrame) -> tracing::Span {
        if matches!(frame, ClientFrame::Ping { .. }) || !quizgate_telemetry::sample_command() {
            return tracing::Span::none();
        }
        let span = tracing::info_span!(
            "command",
            otel.name = frame.kind(),
            quiz = tracing::field::Empty,
            player = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let quiz = match frame {
            ClientFrame::Join { code, .. } | ClientFrame::Host { code, .. } => {
                Some(code.trim().to_ascii_uppercase())
            }
            _ => self.room.as_ref().map(|r| r.code.to_string()),
        };
        if let Some(quiz) = quiz {
            span.record("quiz", quiz.as_str());
        }
        if let Seat::Player(player) = self.state {
            span.record("player", player);
        }
        if let Some(id) = span.in_scope(quizgate_telemetry::current_trace_id) {
            span.record("trace_id", id.as_str());
        }
        span
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Step {
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
            ClientFrame::Lock { rid } => self.on_command(HostCommand::Lock, "lock", rid).await,
            ClientFrame::Unlock { rid } => {
                self.on_command(HostCommand::Unlock, "unlock", rid).await
            }
            ClientFrame::Kick { player_id, rid } => self.on_kick(player_id, rid).await,
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

    pub(super) async fn on_join(&mut self, code: &str, nickname: &str, rid: Option<u64>) -> Step {
        if let Err(step) = self.attempt(rid).await {
            return step;
        }
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
            .call("join", self.node.backplane.join(&code, &nickname))
            .await
        {
            Ok(JoinResult::Joined(session)) => {
                self.sit(&room, Seat::Player(session.player_id), None);
                room.mark_dirty();
                {
                    let session = *session;
                    let mut welcome = Self::welcome(&room, Role::Player, session.snapshot, rid);
                    welcome.player_id = Some(session.player_id);
                    welcome.token = Some(self.node.sessions.sign(
                        TokenRole::Player,
                        code.as_str(),
                        &session.token,
                        self.node.backplane.now_ms(),
                    ));
                    let seq = welcome.quiz.seq;
                    let step = self.send_welcome(welcome).await;
                    self.wire.go_live(seq);
                    step
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
                    JoinRefused::Locked => (
                        ErrorCode::QuizLocked,
                        "the host locked the quiz to new players",
                    ),
                };
                self.error(code, message, rid).await
            }
            Ok(JoinResult::NotFound) => {
                self.leave();
                self.node.addresses.lookup_failed(self.address);
                self.error(ErrorCode::QuizNotFound, "no quiz with that code", rid)
                    .await
            }
            Err(e) => {
                self.leave();
                self.backplane_error("join", &e, rid).await
            }
        }
    }

    async fn on_resume(&mut self, token: &str, last_seq: u64, rid: Option<u64>) -> Step {
        if let Err(step) = self.attempt(rid).await {
            return step;
        }
        // The signature first: a forged, expired or altered token costs no
        // backplane call.
        let player_code =
            |inner: &str| SessionToken::parse(inner).map(|t| t.code.as_str().to_owned());
        let now = self.node.backplane.now_ms();
        let checked = self
            .node
            .sessions
            .verify(TokenRole::Player, player_code, token, now);
        let Some(token) = checked.ok().and_then(SessionToken::parse) else {
            let why = checked.err().unwrap_or(Refused::Malformed);
            return self.invalid_token(why, rid).await;
        };
        let room = match self.enter(&token.code, rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        match self
            .node
            .call("resume", self.node.backplane.resume(&token, last_seq))
            .await
        {
            Ok(ResumeResult::Resumed { session, missed }) => {
                // Other nodes close their connections for this session; the
                // room here closes its own as this one sits.
                let claim = rand::random::<u64>() | 1;
                self.sit(&room, Seat::Player(session.player_id), Some(claim));
                let claimed = self
                    .node
                    .backplane
                    .claim_seat(&token.code, session.player_id, claim);
                if let Err(e) = claimed.await {
                    tracing::warn!(quiz = %token.code, player = session.player_id, error = %e,
                        "could not tell other nodes of a resumed session");
                }
                let mut welcome = Self::welcome(&room, Role::Player, session.snapshot, rid);
                welcome.player_id = Some(session.player_id);
                welcome.resumed = Some(missed.is_some());
                self.send_welcome_and_missed(&room, welcome, missed, last_seq)
                    .await
            }
            Ok(ResumeResult::Removed) => {
                self.leave();
                self.error(
                    ErrorCode::Removed,
                    "the host removed you from this quiz",
                    rid,
                )
                .await
            }
            Ok(ResumeResult::InvalidToken) => {
                self.leave();
                self.node.addresses.lookup_failed(self.address);
                self.error(
                    ErrorCode::InvalidToken,
                    "unknown or forged session token",
                    rid,
                )
                .await
            }
            Err(e) => {
                self.leave();
                self.backplane_error("resume", &e, rid).await
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
        if let Err(step) = self.attempt(rid).await {
            return step;
        }
        let code = match self.join_code(code, rid).await {
            Ok(code) => code,
            Err(step) => return step,
        };
        let now = self.node.backplane.now_ms();
        let host_code = |_: &str| Some(code.as_str().to_owned());
        let token = match self
            .node
            .sessions
            .verify(TokenRole::Host, host_code, token, now)
        {
            Ok(inner) => inner,
            Err(why) => return self.invalid_token(why, rid).await,
        };
        let room = match self.enter(&code, rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        match self
            .node
            .call("host", self.node.backplane.host(&code, token, last_seq))
            .await
        {
            Ok(Some(hosted)) => {
                self.sit(&room, Seat::Host, None);
                let mut welcome = Self::welcome(&room, Role::Host, hosted.snapshot, rid);
                welcome.resumed = last_seq.map(|_| hosted.missed.is_some());
                self.send_welcome_and_missed(&room, welcome, hosted.missed, last_seq.unwrap_or(0))
                    .await
            }
            Ok(None) => {
                self.leave();
                self.node.addresses.lookup_failed(self.address);
                self.error(ErrorCode::InvalidToken, "wrong host token", rid)
                    .await
            }
            Err(e) => {
                self.leave();
                self.backplane_error("host", &e, rid).await
            }
        }
    }

    /// Takes one of the address's join attempts (`join`, `resume`, `host`);
    /// over the rate, the error has been sent.
    async fn attempt(&mut self, rid: Option<u64>) -> Result<(), Step> {
        if self.node.addresses.join(self.address) {
            return Ok(());
        }
        self.node.refuse("address_joins");
        Err(self
            .error(
                ErrorCode::RateLimited,
                "too many joins from your address: retry with backoff",
                rid,
            )
            .await)
    }

    /// Refuses a token that failed its signature check, counted.
    async fn invalid_token(&mut self, why: Refused, rid: Option<u64>) -> Step {
        self.node.refuse("token");
        self.node.addresses.lookup_failed(self.address);
        self.error(ErrorCode::InvalidToken, why.message(), rid)
            .await
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
        let seq = welcome.quiz.seq;
        match self.send_welcome(welcome).await {
            Step::Continue => {}
            other => return other,
        }
        let mut frames = Vec::new();
        let mut n = 0;
        for ev in missed
            .unwrap_or_default()
            .iter()
            .filter(|ev| ev.seq > last_seq)
        {
            frames.extend_from_slice(&framed(self.encoding, &event_frame(&room.definition, ev)));
            n += 1;
        }
        let step = self.send_framed(&frames, n).await;
        if matches!(step, Step::Continue) {
            self.wire.go_live(seq);
        }
        step
    }

    async fn on_answer(&mut self, question: u16, choice: u8, rid: Option<u64>) -> Step {
        let started = std::time::Instant::now();
        let (room, player) = match (&self.state, &self.room) {
            (Seat::Player(player), Some(room)) => (Arc::clone(room), *player),
            (Seat::Host, _) => {
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
        // Not through `Node::call`: answers to a quiz are committed in batches
        // (group commit), so a burst costs the backplane little, and a slot
        // held while waiting for the batch would cap the batch at the slot
        // count. The backplane bounds what may wait (`BackplaneError::Busy`).
        let call = self
            .node
            .backplane
            .answer(&room.code, player, question, choice);
        let outcome = match crate::node::traced("answer", call).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                return self
                    .error(ErrorCode::QuizNotFound, "the quiz no longer exists", rid)
                    .await;
            }
            Err(e) => return self.backplane_error("answer", &e, rid).await,
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
            AnswerOutcome::Accepted(r) => ("accepted", result(AnswerStatus::Accepted, Some(r))),
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

    /// The room this connection hosts; otherwise the error has been sent.
    async fn hosted_room(&mut self, rid: Option<u64>) -> Result<Arc<Room>, Step> {
        match (&self.state, &self.room) {
            (Seat::Host, Some(room)) => Ok(Arc::clone(room)),
            (Seat::Player(_), _) => Err(self
                .error(ErrorCode::NotHost, "only the host may do that", rid)
                .await),
            _ => Err(self
                .error(ErrorCode::NotJoined, "authenticate as host first", rid)
                .await),
        }
    }

    async fn on_kick(&mut self, player: PlayerId, rid: Option<u64>) -> Step {
        let room = match self.hosted_room(rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        let outcome = self
            .node
            .call("kick", self.node.backplane.remove(&room.code, player))
            .await
            .map(|found| {
                found.map(|outcome| match outcome {
                    RemoveOutcome::Done => Ok(()),
                    RemoveOutcome::WrongPhase => Err((
                        ErrorCode::WrongPhase,
                        "kick only in the lobby or between questions".to_owned(),
                    )),
                    RemoveOutcome::NoSuchPlayer => Err((
                        ErrorCode::PlayerNotFound,
                        format!("no player {player} in this quiz"),
                    )),
                })
            });
        self.host_reply("kick", outcome, rid).await
    }

    async fn on_command(&mut self, cmd: HostCommand, name: &'static str, rid: Option<u64>) -> Step {
        let room = match self.hosted_room(rid).await {
            Ok(room) => room,
            Err(step) => return step,
        };
        let outcome = self
            .node
            .call("command", self.node.backplane.command(&room.code, cmd))
            .await
            .map(|found| {
                found.map(|outcome| match outcome {
                    CommandOutcome::Done => Ok(()),
                    CommandOutcome::WrongPhase => Err((
                        ErrorCode::WrongPhase,
                        format!("{name} does not fit the quiz's phase"),
                    )),
                })
            });
        self.host_reply(name, outcome, rid).await
    }

    /// Answers a host's command: `ack`, or the error that says why not
    /// (`None`: the quiz is gone).
    async fn host_reply(&mut self, name: &str, outcome: HostOutcome, rid: Option<u64>) -> Step {
        match outcome {
            Ok(Some(Ok(()))) => {
                self.send(&ServerFrame::Ack {
                    rid,
                    command: name.to_owned(),
                })
                .await
            }
            Ok(Some(Err((code, message)))) => self.error(code, message, rid).await,
            Ok(None) => {
                self.error(ErrorCode::QuizNotFound, "the quiz no longer exists", rid)
                    .await
            }
            Err(e) => {
                self.backplane_error(if name == "kick" { "kick" } else { "command" }, &e, rid)
                    .await
            }
        }
    }

    /// Parses a join code typed by a person; on failure the error has been
    /// sent and the address pays for a failed lookup.
    async fn join_code(&mut self, raw: &str, rid: Option<u64>) -> Result<JoinCode, Step> {
        match JoinCode::parse(raw) {
            Ok(code) => Ok(code),
            Err(e) => {
                self.node.addresses.lookup_failed(self.address);
                Err(self.error(ErrorCode::InvalidCode, e.to_string(), rid).await)
            }
        }
    }

    /// Attaches this connection to the quiz's room; afterwards every event of
    /// the quiz reaches its queue. On failure, the error has been sent.
    async fn enter(&mut self, code: &JoinCode, rid: Option<u64>) -> Result<Arc<Room>, Step> {
        let (tx, rx) = mpsc::channel(self.node.config.outbound_queue);
        let member = Member::new(
            tx,
            Arc::clone(&self.wire),
            self.encoding,
            Arc::clone(&self.evicted),
        );
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
            Ok(None) => {
                self.node.addresses.lookup_failed(self.address);
                Err(self
                    .error(ErrorCode::QuizNotFound, "no quiz with that code", rid)
                    .await)
            }
            Err(e) => Err(self.backplane_error("definition", &e, rid).await),
        }
    }

    /// The welcome for this connection's room; callers fill in the player's fields.
    fn welcome(room: &Room, role: Role, snapshot: QuizSnapshot, rid: Option<u64>) -> Welcome {
        Welcome {
            rid,
            server: env!("CARGO_PKG_VERSION").to_owned(),
            role,
            code: room.code.to_string(),
            title: room.definition.title.clone(),
            player_id: None,
            token: None,
            resumed: None,
            quiz: quiz_view(&room.definition, snapshot),
        }
    }

    /// Sends the welcome; the client has everything up to its snapshot's
    /// `seq`. The caller then lets events go straight out (`Wire::go_live`),
    /// once everything that must come before them has been written.
    async fn send_welcome(&mut self, welcome: Welcome) -> Step {
        if let Some(room) = &self.room {
            room.observe_view(&welcome.quiz);
        }
        self.send(&ServerFrame::Welcome(Box::new(welcome))).await
    }
}
