//! The backplanes from outside: the Lua scripts against their specification
//! (generated sequences of operations run on the in-process backplane, which
//! runs `quizgate-domain` directly, and on a real Redis, with one manual clock
//! for both), the Redis subscriber's ordering when Pub/Sub loses messages, and
//! the quotas a quiz is created under.

mod batch;
mod differential;
mod gaps;
mod quota;
mod recorder;

/// A quiz of one two-choice question (choice 1 is right) with a minute to answer.
fn one_question(title: &str) -> quizgate_domain::QuizDefinition {
    quizgate_domain::QuizDefinition {
        title: title.into(),
        questions: vec![quizgate_domain::Question {
            text: "q".into(),
            choices: vec!["a".into(), "b".into()],
            correct: 1,
            time_limit_ms: 60_000,
            points: 1_000,
        }],
    }
}
