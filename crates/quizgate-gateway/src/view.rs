//! Domain values as the client sees them.

use quizgate_domain::{Event, Millis, Phase, QuizDefinition, QuizSnapshot, Sequenced};
use quizgate_protocol::{QuestionView, QuizView, ServerFrame};

pub(crate) fn question_view(
    def: &QuizDefinition,
    index: u16,
    started_ms: Millis,
    deadline_ms: Millis,
) -> QuestionView {
    let q = &def.questions[usize::from(index)];
    QuestionView {
        index,
        count: def.questions.len() as u16,
        text: q.text.clone(),
        choices: q.choices.clone(),
        time_limit_ms: q.time_limit_ms,
        points: q.points,
        started_ms,
        deadline_ms,
    }
}

/// The broadcast frame for one event; question texts come from the definition.
pub(crate) fn event_frame(def: &QuizDefinition, ev: &Sequenced) -> ServerFrame {
    let (seq, ts) = (ev.seq, ev.ts_ms);
    match &ev.event {
        Event::QuestionStarted {
            index,
            started_ms,
            deadline_ms,
        } => ServerFrame::Question {
            seq,
            ts,
            question: question_view(def, *index, *started_ms, *deadline_ms),
        },
        Event::QuestionClosed {
            index,
            correct,
            distribution,
            answered,
            reason,
        } => ServerFrame::Reveal {
            seq,
            ts,
            index: *index,
            correct: *correct,
            distribution: distribution.clone(),
            answered: *answered,
            reason: *reason,
        },
        Event::Leaderboard { top, players } => ServerFrame::Leaderboard {
            seq,
            ts,
            top: top.clone(),
            players: *players,
        },
        Event::QuizEnded { top, players } => ServerFrame::Ended {
            seq,
            ts,
            top: top.clone(),
            players: *players,
        },
        Event::PlayerRemoved { player_id } => ServerFrame::Removed {
            seq,
            ts,
            player_id: *player_id,
        },
        Event::LobbyLocked { locked } => ServerFrame::Locked {
            seq,
            ts,
            locked: *locked,
        },
    }
}

pub(crate) fn quiz_view(def: &QuizDefinition, snap: QuizSnapshot) -> QuizView {
    let reveal = snap.phase == Phase::Reveal;
    let current = snap.question.as_ref();
    QuizView {
        phase: snap.phase,
        question_count: snap.question_count,
        question: current.map(|q| question_view(def, q.index, q.started_ms, q.deadline_ms)),
        correct: current
            .filter(|_| reveal)
            .map(|q| def.questions[usize::from(q.index)].correct),
        distribution: current.filter(|_| reveal).map(|q| q.distribution.clone()),
        answered: current.map(|q| q.answered),
        players: snap.players,
        top: snap.top,
        seq: snap.seq,
        you: snap.you,
        locked: snap.locked,
    }
}
