use quizgate_domain::{CloseReason, Millis, Phase, PlayerId, PlayerView, Standing};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// A frame from a client. Every frame may carry `rid`, a request id the server
/// echoes in its reply so a client can match replies to requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Join a quiz as a player.
    Join {
        code: String,
        nickname: String,
        rid: Option<u64>,
    },
    /// Come back as the player a session token names, after `last_seq`.
    Resume {
        token: String,
        last_seq: u64,
        rid: Option<u64>,
    },
    /// Act as the host of a quiz. With `last_seq`, a host reconnecting: the
    /// events after it follow the welcome, as on a player's `resume`.
    Host {
        code: String,
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<u64>,
        rid: Option<u64>,
    },
    Answer {
        question: u16,
        choice: u8,
        rid: Option<u64>,
    },
    Start {
        rid: Option<u64>,
    },
    Next {
        rid: Option<u64>,
    },
    Skip {
        rid: Option<u64>,
    },
    End {
        rid: Option<u64>,
    },
    /// Host: remove a player from the quiz (lobby and between questions).
    Kick {
        player_id: PlayerId,
        rid: Option<u64>,
    },
    /// Host: refuse new players.
    Lock {
        rid: Option<u64>,
    },
    /// Host: admit new players again.
    Unlock {
        rid: Option<u64>,
    },
    Ping {
        rid: Option<u64>,
    },
}

impl ClientFrame {
    pub fn rid(&self) -> Option<u64> {
        match self {
            Self::Join { rid, .. }
            | Self::Resume { rid, .. }
            | Self::Host { rid, .. }
            | Self::Answer { rid, .. }
            | Self::Start { rid }
            | Self::Next { rid }
            | Self::Skip { rid }
            | Self::End { rid }
            | Self::Kick { rid, .. }
            | Self::Lock { rid }
            | Self::Unlock { rid }
            | Self::Ping { rid } => *rid,
        }
    }

    /// Every [`ClientFrame::kind`], for metric labels present from the start.
    pub const KINDS: [&'static str; 12] = [
        "join", "resume", "host", "answer", "start", "next", "skip", "end", "kick", "lock",
        "unlock", "ping",
    ];

    /// The frame's `t`, for logs and metric labels (a bounded set).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Resume { .. } => "resume",
            Self::Host { .. } => "host",
            Self::Answer { .. } => "answer",
            Self::Start { .. } => "start",
            Self::Next { .. } => "next",
            Self::Skip { .. } => "skip",
            Self::End { .. } => "end",
            Self::Kick { .. } => "kick",
            Self::Lock { .. } => "lock",
            Self::Unlock { .. } => "unlock",
            Self::Ping { .. } => "ping",
        }
    }
}

/// A frame from the server. Broadcast frames (`question`, `reveal`, `leaderboard`,
/// `ended`) carry the quiz's sequence number `seq` and the server time `ts` at
/// which the event was published; the others are replies to one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Box<Welcome>),
    Question {
        seq: u64,
        ts: Millis,
        #[serde(flatten)]
        question: QuestionView,
    },
    Reveal {
        seq: u64,
        ts: Millis,
        index: u16,
        correct: u8,
        distribution: Vec<u32>,
        answered: u32,
        reason: CloseReason,
    },
    Leaderboard {
        seq: u64,
        ts: Millis,
        top: Vec<Standing>,
        players: u32,
    },
    Ended {
        seq: u64,
        ts: Millis,
        top: Vec<Standing>,
        players: u32,
    },
    /// The host removed a player; the player's own connection is closed (4403).
    Removed {
        seq: u64,
        ts: Millis,
        player_id: PlayerId,
    },
    /// The host locked (or unlocked) the quiz to new players.
    Locked {
        seq: u64,
        ts: Millis,
        locked: bool,
    },
    AnswerResult(AnswerResult),
    /// The receiving player's own score and rank; sent after each leaderboard in
    /// which they changed, and with the final standings.
    Standing {
        score: u64,
        rank: u32,
        players: u32,
    },
    /// To hosts only: how many players joined and, while a question is open,
    /// how many answered it. Not a broadcast (no `seq`); sent when it changed,
    /// at most once per leaderboard interval.
    Progress {
        players: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answered: Option<u32>,
    },
    /// A host command was carried out.
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        command: String,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        ts: Millis,
    },
}

impl ServerFrame {
    /// The sequence number of a broadcast frame.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Question { seq, .. }
            | Self::Reveal { seq, .. }
            | Self::Leaderboard { seq, .. }
            | Self::Ended { seq, .. }
            | Self::Removed { seq, .. }
            | Self::Locked { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// Whether the server sends this frame on its own (a broadcast, a
    /// standing, a host's progress) rather than in reply to a request.
    pub fn is_push(&self) -> bool {
        self.seq().is_some() || matches!(self, Self::Standing { .. } | Self::Progress { .. })
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, rid: Option<u64>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            rid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Player,
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<u64>,
    /// The server's version (semantic versioning; the protocol's own version
    /// is in the subprotocol name, `quizgate.v1.*`).
    #[serde(default)]
    pub server: String,
    pub role: Role,
    pub code: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<PlayerId>,
    /// The player's session token, for `resume`. Keep it secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// On a resume: `true` if every missed event follows this frame, `false` if
    /// the gap could not be filled and `quiz` is a fresh snapshot instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
    pub quiz: QuizView,
}

/// A question as players see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionView {
    pub index: u16,
    /// How many questions the quiz has.
    pub count: u16,
    pub text: String,
    pub choices: Vec<String>,
    pub time_limit_ms: u64,
    pub points: u32,
    pub started_ms: Millis,
    pub deadline_ms: Millis,
}

/// A snapshot of the quiz, enough to draw it from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuizView {
    pub phase: Phase,
    pub question_count: u16,
    /// The open question (`question`) or the one being revealed (`reveal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<QuestionView>,
    /// In phase `reveal`: the right choice and how many picked each choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<u32>,
    pub players: u32,
    pub top: Vec<Standing>,
    /// The last event this snapshot includes: the next broadcast has `seq + 1`.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub you: Option<PlayerView>,
    /// The host locked the quiz: `join` gets `quiz_locked`.
    #[serde(default)]
    pub locked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerStatus {
    Accepted,
    /// Already answered: `choice`, `points` and `total` are the first answer's.
    Duplicate,
    /// The deadline passed or the question was closed.
    Late,
    /// No question with that index is open.
    WrongPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<u64>,
    pub question: u16,
    pub status: AnswerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}
