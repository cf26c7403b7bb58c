//! The rules of a live quiz, with no IO: what a quiz definition may hold, who may
//! join under which nickname, how an answer is scored, and how a quiz moves from
//! lobby through its questions to the end. Every function that depends on time
//! takes the current time (`Millis`, milliseconds since the Unix epoch) as an
//! argument, so the rules are tested without clocks or sleeps.
//!
//! This crate is the specification. The in-process store runs [`Quiz`]
//! directly; the Redis store runs the same rules as Lua scripts, with every
//! constant passed in from here, and a differential test
//! (`crates/quizgate-backplane/tests/it/differential.rs`) runs generated
//! sequences of operations on both and compares every outcome and event.

mod code;
mod definition;
mod error;
mod event;
mod nickname;
mod quiz;
mod scoring;
mod session;
mod standings;

pub use code::{JOIN_CODE_ALPHABET, JOIN_CODE_LEN, JoinCode};
pub use definition::{
    MAX_CHOICE_CHARS, MAX_CHOICES, MAX_POINTS, MAX_QUESTION_CHARS, MAX_QUESTIONS,
    MAX_TIME_LIMIT_MS, MAX_TITLE_CHARS, MIN_CHOICES, MIN_TIME_LIMIT_MS, Question, QuizDefinition,
};
pub use error::DomainError;
pub use event::{CloseReason, Event, Sequenced};
pub use nickname::{MAX_NICKNAME_CHARS, nickname_key, validate_nickname};
pub use quiz::{
    AnswerOutcome, AnswerRecord, CommandOutcome, CurrentQuestion, HostCommand, JoinRefused,
    LeaderboardDue, MAX_PLAYERS, Phase, PlayerView, Progress, QuestionProgress, Quiz, QuizSnapshot,
    RemoveOutcome,
};
pub use scoring::score;
pub use session::{Replay, replay, retention};
pub use standings::{
    LEADERBOARD_DELIVERY_BUDGET, LEADERBOARD_SIZE, Standing, StandingsDue, StandingsGate,
    leaderboard_interval, rank_of, ranked,
};

/// Milliseconds since the Unix epoch, as read from the one clock that decides.
pub type Millis = u64;

/// A player's id within its quiz: 1 for the first to join, then 2, 3, ...
pub type PlayerId = u32;
