//! The backplane holds the truth about every quiz (the store) and carries each
//! quiz's events to the nodes whose players need them (the bus). [`Backplane`] is
//! the one interface the gateway uses; [`MemoryBackplane`] implements it inside
//! one process (the embedded default) and a Redis implementation makes the
//! cluster. Events reach the node through its [`EventSink`], in sequence order
//! per quiz.
//!
//! Architecture invariant: this crate knows nothing of WebSockets or frames;
//! only it names Redis.

mod clock;
mod delivery;
mod error;
mod memory;
mod redis;
mod token;

use std::sync::Arc;

use async_trait::async_trait;
use quizgate_domain::{
    AnswerOutcome, CommandOutcome, HostCommand, JoinCode, JoinRefused, Millis, PlayerId, Progress,
    QuizDefinition, QuizSnapshot, RemoveOutcome, Sequenced,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::DeliveryEnd;
pub use error::BackplaneError;
pub use memory::{MemoryBackplane, MemoryConfig};
pub use redis::{RedisBackplane, RedisConfig};
pub use token::SessionToken;

pub type Result<T, E = BackplaneError> = std::result::Result<T, E>;

tokio::task_local! {
    /// The W3C `traceparent` of the traced work a backplane call is part of.
    static TRACE: Option<String>;
}

/// Runs a backplane call as part of the trace `traceparent` names: the
/// events the call causes carry it ([`quizgate_domain::Sequenced::trace`]),
/// so that every node fanning them out joins the trace. This crate knows
/// traces only as that string.
pub async fn traced<F: std::future::Future>(traceparent: Option<String>, call: F) -> F::Output {
    TRACE.scope(traceparent, call).await
}

/// The trace of the call being made, if any.
pub(crate) fn current_trace() -> Option<String> {
    TRACE.try_with(Clone::clone).ok().flatten()
}

/// Receives every event of the quizzes a node subscribed to.
///
/// The delivery contract, the same for every backplane: each event of a
/// subscribed quiz is delivered once, in sequence order per quiz, from the
/// backplane's own delivery path; never from inside the call that emitted it
/// while that quiz is locked. Relative to the reply of that call, an event may
/// arrive before or after it: a client learns its place from the snapshot's
/// `seq`, never from the timing of a reply.
pub trait EventSink: Send + Sync + 'static {
    /// Called once per event, in sequence order for each quiz. Must not block:
    /// it runs on the backplane's delivery path.
    fn deliver(&self, quiz: &JoinCode, event: Arc<Sequenced>);

    /// A connection took `player`'s seat in the quiz, on some node (see
    /// [`Backplane::claim_seat`]); `claim` names that connection. Claims of
    /// one quiz reach every node in the same order, so the later of two is
    /// the newer everywhere. Must not block.
    fn seat_claimed(&self, quiz: &JoinCode, player: PlayerId, claim: u64) {
        let _ = (quiz, player, claim);
    }

    /// Called by the delivery path when it has no more events at hand (and
    /// at least every [`FLUSH_EVERY`] events): a sink may hold what was
    /// delivered since the last call, so that events published together (a
    /// reveal and its leaderboard) leave together.
    fn flush(&self) {}
}

/// What a backplane's delivery path did since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Pub/Sub messages read (events and seat claims).
    pub messages: u64,
    /// Gaps in a quiz's sequence filled from its log.
    pub gap_fills: u64,
    /// Times every subscribed quiz was read again from its log.
    pub resyncs: u64,
}

/// Most events a delivery path hands a sink between two [`EventSink::flush`] calls.
pub const FLUSH_EVERY: usize = 64;

/// A quiz just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedQuiz {
    pub code: JoinCode,
    pub host_token: String,
}

/// What a new quiz may hold, from the quota of the credential that creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateLimits {
    /// The credential creating the quiz, whose live quizzes are counted
    /// across the cluster; `None` on an open node, where nothing is counted.
    pub owner: Option<String>,
    /// Most quizzes of `owner` live at once: created, not ended, not expired.
    pub live_quizzes: u32,
    /// Most players the quiz admits (the backplane's own cap applies too).
    pub max_players: u32,
}

impl CreateLimits {
    /// No owner and no limit beyond the backplane's own.
    pub fn unlimited() -> Self {
        Self {
            owner: None,
            live_quizzes: u32::MAX,
            max_players: u32::MAX,
        }
    }
}

/// How a request to create a quiz ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    Created(CreatedQuiz),
    /// The owner already has [`CreateLimits::live_quizzes`] live quizzes.
    OverQuota,
}

impl Creation {
    /// The quiz, if one was created.
    pub fn created(self) -> Option<CreatedQuiz> {
        match self {
            Self::Created(quiz) => Some(quiz),
            Self::OverQuota => None,
        }
    }
}

/// A player's seat in a quiz, with the snapshot it starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub code: JoinCode,
    pub player_id: PlayerId,
    pub token: String,
    pub snapshot: QuizSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinResult {
    Joined(Box<Session>),
    Refused(JoinRefused),
    NotFound,
}

/// Events a reconnecting client missed: every event after its `last_seq` up
/// to the snapshot's `seq`, in order; `None` if they cannot be given (see
/// [`quizgate_domain::replay`]) and the client must start again from the snapshot.
pub type Missed = Option<Vec<Arc<Sequenced>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeResult {
    Resumed {
        session: Box<Session>,
        missed: Missed,
    },
    /// The token names no player of a live quiz, or its secret is wrong.
    InvalidToken,
    /// The host removed this player from the quiz.
    Removed,
}

/// A host's seat: the snapshot and, when it reconnected with a `last_seq`,
/// what it missed (always `Some(empty)` for a first `host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSession {
    pub snapshot: QuizSnapshot,
    pub missed: Missed,
}

/// Every player's score at one point of a quiz's event sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scores {
    /// The quiz's last `seq` when the scores were read.
    pub seq: u64,
    /// `(player, score)`, highest first, ties in join order.
    pub desc: Vec<(PlayerId, u64)>,
}

/// What one periodic check of a quiz found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Published,
    /// Something changed, but the last leaderboard is too recent: ask again later.
    TooSoon,
    /// Nothing changed since the last leaderboard.
    Nothing,
    /// The quiz no longer exists (expired).
    Gone,
}

/// The store and the bus, as one node sees them. Every method is atomic for its
/// quiz: two nodes calling at once see one happen before the other.
#[async_trait]
pub trait Backplane: Send + Sync + 'static {
    /// Stores a new quiz under a fresh join code, unless its owner is at its
    /// quota of live quizzes. `def` must be valid.
    async fn create_quiz(&self, def: QuizDefinition, limits: &CreateLimits) -> Result<Creation>;

    /// The quiz's definition; immutable, so callers may cache it.
    async fn definition(&self, code: &JoinCode) -> Result<Option<Arc<QuizDefinition>>>;

    /// Admits a player. `nickname` must be valid (see `validate_nickname`).
    async fn join(&self, code: &JoinCode, nickname: &str) -> Result<JoinResult>;

    /// Checks a session token and returns the player's seat and what it missed.
    async fn resume(&self, token: &SessionToken, last_seq: u64) -> Result<ResumeResult>;

    /// Checks a host token; `None` if it is wrong or the quiz does not exist.
    /// With `last_seq`, the host is reconnecting and gets what it missed.
    async fn host(
        &self,
        code: &JoinCode,
        token: &str,
        last_seq: Option<u64>,
    ) -> Result<Option<HostSession>>;

    /// `None` if the quiz does not exist.
    async fn command(&self, code: &JoinCode, cmd: HostCommand) -> Result<Option<CommandOutcome>>;

    /// Removes a player (the host's `kick`). `None` if the quiz does not exist.
    async fn remove(&self, code: &JoinCode, player: PlayerId) -> Result<Option<RemoveOutcome>>;

    /// Scores an answer by the backplane's clock. `None` if the quiz or the
    /// player does not exist.
    async fn answer(
        &self,
        code: &JoinCode,
        player: PlayerId,
        question: u16,
        choice: u8,
    ) -> Result<Option<AnswerOutcome>>;

    /// Tells every node with members in the quiz that a connection, named by
    /// `claim` (unique), just took `player`'s seat, so that they close their
    /// older connections for it ([`EventSink::seat_claimed`]). In one process
    /// the room sees every seat itself: nothing to tell.
    async fn claim_seat(&self, code: &JoinCode, player: PlayerId, claim: u64) -> Result<()> {
        let _ = (code, player, claim);
        Ok(())
    }

    /// What the delivery path did since start (zeros where it has no Pub/Sub).
    fn delivery_stats(&self) -> DeliveryStats {
        DeliveryStats::default()
    }

    /// Closes question `index` if its deadline has passed; exactly one caller
    /// across the cluster gets `true`.
    async fn close_if_due(&self, code: &JoinCode, index: u16) -> Result<bool>;

    /// Publishes a leaderboard if scores or players changed and the coalescing
    /// interval has passed since the last one.
    async fn leaderboard_if_due(&self, code: &JoinCode) -> Result<Tick>;

    /// What hosts follow live (players, and the open question's answer
    /// count); `None` once the quiz ended or if it does not exist.
    async fn progress(&self, code: &JoinCode) -> Result<Option<Progress>>;

    /// Whether the quiz still exists (quizzes expire).
    async fn exists(&self, code: &JoinCode) -> Result<bool>;

    /// Every player's score with the quiz's `seq`, read atomically; `None` if
    /// the quiz does not exist.
    async fn scores(&self, code: &JoinCode) -> Result<Option<Scores>>;

    /// Starts delivering the quiz's events to this node's sink. Returns once
    /// delivery is guaranteed for every event published afterwards.
    async fn subscribe(&self, code: &JoinCode) -> Result<()>;

    /// Stops delivering the quiz's events to this node.
    async fn unsubscribe(&self, code: &JoinCode) -> Result<()>;

    /// Removes quizzes that have been idle too long; returns what it removed.
    async fn expire(&self) -> Result<Vec<JoinCode>>;

    /// Why the backplane cannot serve requests now; `None` when it can.
    fn not_ready_reason(&self) -> Option<String>;

    /// Whether the backplane can serve requests now (for `/readyz`).
    fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    /// The clock that decides deadlines and scores.
    fn now_ms(&self) -> Millis;
}
