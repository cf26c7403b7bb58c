//! Any bytes as a sequence of what clients can make a quiz do (joins, answers,
//! host commands, kicks, the clock moving): never a panic, and the quiz keeps
//! its invariants after every step: events gapless and in order, the player
//! count and the standings consistent.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use quizgate_domain::{HostCommand, Question, Quiz, QuizDefinition};

fuzz_target!(|data: &[u8]| {
    let q = |correct| Question {
        text: "q".into(),
        choices: vec!["a".into(), "b".into(), "c".into()],
        correct,
        time_limit_ms: 1_000,
        points: 1_000,
    };
    let def = QuizDefinition {
        title: "fuzz".into(),
        questions: vec![q(0), q(1), q(2)],
    };
    let mut quiz = Quiz::with_max_players(Arc::new(def), 50);
    let mut now = 1_000u64;
    let mut out = Vec::new();
    for step in data.chunks(3) {
        let (op, a, b) = (step[0], *step.get(1).unwrap_or(&0), *step.get(2).unwrap_or(&0));
        match op % 8 {
            0 => {
                let _ = quiz.join(&format!("p{a}"));
            }
            1 => {
                quiz.answer(u32::from(a % 60), u16::from(b % 4), b / 64, now, &mut out);
            }
            2 => {
                let cmd = [
                    HostCommand::Start,
                    HostCommand::Next,
                    HostCommand::Skip,
                    HostCommand::End,
                    HostCommand::Lock,
                    HostCommand::Unlock,
                ][usize::from(a) % 6];
                quiz.command(cmd, now, &mut out);
            }
            3 => {
                quiz.remove(u32::from(a % 60), now, &mut out);
            }
            4 => now += u64::from(a) * 20,
            5 => {
                if let Some(index) = quiz.overdue(now) {
                    assert!(quiz.close_if_due(index, now, &mut out));
                }
            }
            6 => {
                quiz.leaderboard_if_due(now, 250, &mut out);
            }
            _ => {
                let snap = quiz.snapshot(Some(u32::from(a % 60)));
                assert_eq!(snap.seq, quiz.seq());
                assert_eq!(snap.players, quiz.player_count());
            }
        }
        for (n, e) in out.iter().enumerate() {
            assert_eq!(e.seq, n as u64 + 1, "gapless and in order");
        }
        let scores = quiz.scores();
        assert_eq!(scores.len() as u32, quiz.player_count());
        assert!(scores.windows(2).all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0)));
    }
});
