//! Any bytes as the body of `POST /v1/quizzes`: parsing and validation never
//! panic, and a definition that validates can be played from lobby to end.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use quizgate_domain::{HostCommand, Quiz, QuizDefinition};

fuzz_target!(|data: &[u8]| {
    let Ok(def) = serde_json::from_slice::<QuizDefinition>(data) else {
        return;
    };
    if def.validate().is_err() {
        return;
    }
    let questions = def.questions.len();
    let mut quiz = Quiz::new(Arc::new(def));
    let mut out = Vec::new();
    quiz.join("fuzz").expect("a new quiz admits a player");
    quiz.command(HostCommand::Start, 1, &mut out);
    for i in 0..questions {
        quiz.answer(1, i as u16, 0, 2, &mut out);
        quiz.command(HostCommand::Next, 3, &mut out);
    }
    assert_eq!(quiz.phase(), quizgate_domain::Phase::Ended);
    for (n, e) in out.iter().enumerate() {
        assert_eq!(e.seq, n as u64 + 1, "gapless");
    }
});
