use serde::{Deserialize, Serialize};

/// The `code` of an `error` frame. Stable strings: clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a JSON object / MessagePack map with a string field `t`.
    MalformedFrame,
    /// `t` names no client frame.
    UnknownType,
    /// A known `t`, but a field is missing or of the wrong type.
    InvalidFrame,
    InvalidCode,
    InvalidNickname,
    NicknameTaken,
    QuizNotFound,
    QuizEnded,
    QuizFull,
    /// The host locked the quiz to new players.
    QuizLocked,
    /// The host removed this player from the quiz.
    Removed,
    /// `kick` named no player of the quiz (or one already removed).
    PlayerNotFound,
    /// This connection already joined (or authenticated as host).
    AlreadyJoined,
    /// Answering or commanding before joining.
    NotJoined,
    /// A host command from a player.
    NotHost,
    /// A host or session token that is unknown, forged or expired.
    InvalidToken,
    /// The command does not fit the quiz's phase.
    WrongPhase,
    InvalidChoice,
    /// Too many frames too fast; this one was dropped.
    RateLimited,
    /// The backplane is unreachable: retry the same frame after a short wait.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, e.g. to show each one's metric series from the start.
    pub const ALL: [Self; 21] = [
        Self::MalformedFrame,
        Self::UnknownType,
        Self::InvalidFrame,
        Self::InvalidCode,
        Self::InvalidNickname,
        Self::NicknameTaken,
        Self::QuizNotFound,
        Self::QuizEnded,
        Self::QuizFull,
        Self::QuizLocked,
        Self::Removed,
        Self::PlayerNotFound,
        Self::AlreadyJoined,
        Self::NotJoined,
        Self::NotHost,
        Self::InvalidToken,
        Self::WrongPhase,
        Self::InvalidChoice,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedFrame => "malformed_frame",
            Self::UnknownType => "unknown_type",
            Self::InvalidFrame => "invalid_frame",
            Self::InvalidCode => "invalid_code",
            Self::InvalidNickname => "invalid_nickname",
            Self::NicknameTaken => "nickname_taken",
            Self::QuizNotFound => "quiz_not_found",
            Self::QuizEnded => "quiz_ended",
            Self::QuizFull => "quiz_full",
            Self::QuizLocked => "quiz_locked",
            Self::Removed => "removed",
            Self::PlayerNotFound => "player_not_found",
            Self::AlreadyJoined => "already_joined",
            Self::NotJoined => "not_joined",
            Self::NotHost => "not_host",
            Self::InvalidToken => "invalid_token",
            Self::WrongPhase => "wrong_phase",
            Self::InvalidChoice => "invalid_choice",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}
