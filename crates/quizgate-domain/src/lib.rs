//! The rules of a live quiz, with no IO: what a quiz definition may hold, who may
//! join under which nickname, how an answer is scored, and how a quiz moves from
//! lobby through its questions to the end. Every function that depends on time
//! takes the current time (`Millis`, milliseconds since the Unix epoch) as an
//! argument, so the rules are tested without clocks or sleeps.
//!
//! The in-process store runs [`Quiz`] directly; the Redis store runs the same rules
//! as Lua scripts, and one conformance suite checks that both agree.

mod code;
mod definition;
mod error;
mod event;
mod nickname;
mod quiz;
mod scoring;
mod standings;

pub use code::{JoinCode, JOIN_CODE_ALPHABET, JOIN_CODE_LEN};
pub use definition::{
    Question, QuizDefinition, MAX_CHOICES, MAX_CHOICE_CHARS, MAX_POINTS, MAX_QUESTIONS,
    MAX_QUESTION_CHARS, MAX_TIME_LIMIT_MS, MAX_TITLE_CHARS, MIN_CHOICES, MIN_TIME_LIMIT_MS,
};
pub use error::DomainError;
pub use event::{CloseReason, Event, Sequenced};
pub use nickname::{validate_nickname, MAX_NICKNAME_CHARS};
pub use quiz::{
    AnswerOutcome, AnswerRecord, CommandOutcome, CurrentQuestion, HostCommand, JoinRefused, Phase,
    PlayerView, Quiz, QuizSnapshot, MAX_PLAYERS,
};
pub use scoring::score;
pub use standings::{rank_of, Standing, LEADERBOARD_SIZE};

/// Milliseconds since the Unix epoch, as read from the one clock that decides.
pub type Millis = u64;

/// A player's id within its quiz: 1 for the first to join, then 2, 3, ...
pub type PlayerId = u32;
