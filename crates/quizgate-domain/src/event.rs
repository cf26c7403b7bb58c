use serde::{Deserialize, Serialize};

use crate::{Millis, PlayerId, Standing};

/// A fact that every player of a quiz is told, in the same order everywhere.
/// Facts are small: a node expands `QuestionStarted` with the question's text
/// from its cached [`crate::QuizDefinition`] when it builds the client frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    QuestionStarted {
        index: u16,
        started_ms: Millis,
        deadline_ms: Millis,
    },
    QuestionClosed {
        index: u16,
        correct: u8,
        distribution: Vec<u32>,
        answered: u32,
        reason: CloseReason,
    },
    /// Published in the lobby and at each reveal, never while a question is
    /// open (see [`crate::Quiz::leaderboard_due`]).
    Leaderboard {
        top: Vec<Standing>,
        players: u32,
    },
    QuizEnded {
        top: Vec<Standing>,
        players: u32,
    },
    /// The host removed a player (see [`crate::Quiz::remove`]).
    PlayerRemoved {
        player_id: PlayerId,
    },
    /// The host locked or unlocked the quiz to new players.
    LobbyLocked {
        locked: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The deadline passed.
    Deadline,
    /// Every player had answered.
    AllAnswered,
    /// The host skipped the rest of the question.
    Skipped,
    /// The host ended the quiz during the question.
    Ended,
}

/// An event with its place in the quiz's total order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced {
    /// 1 for a quiz's first event, then strictly increasing by one.
    pub seq: u64,
    /// When the event was published, by the clock that decides.
    pub ts_ms: Millis,
    pub event: Event,
    /// The W3C `traceparent` of the traced work that caused the event: the
    /// nodes that fan it out join that trace. Kept in the log and the
    /// published message, never sent to clients.
    #[serde(default, rename = "tp", skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}
