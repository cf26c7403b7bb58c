use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::nickname::nickname_key;
use crate::{
    CloseReason, Event, LEADERBOARD_SIZE, Millis, PlayerId, QuizDefinition, Sequenced, Standing,
    leaderboard_interval, rank_of, ranked, score,
};

/// Most players one quiz admits.
pub const MAX_PLAYERS: u32 = 200_000;

/// Where a quiz stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Open for joining; no question asked yet.
    Lobby,
    /// A question is open for answers.
    Question,
    /// The last question is closed and its answer shown; the host moves on.
    Reveal,
    /// Final standings are out; nothing changes any more.
    Ended,
}

/// The question being asked or just revealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentQuestion {
    pub index: u16,
    pub started_ms: Millis,
    pub deadline_ms: Millis,
    pub answered: u32,
    pub distribution: Vec<u32>,
}

/// What a player's answer to one question earned. Kept so that a retried answer
/// is acknowledged again with the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRecord {
    pub choice: u8,
    pub points: u32,
    /// The player's total right after this answer was scored.
    pub total: u64,
}

/// The result of an answer. Expected outcomes are values, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    Accepted(AnswerRecord),
    /// This player already answered this question; here is the first answer's result.
    Duplicate(AnswerRecord),
    /// The question's deadline has passed, or it was closed early.
    Late,
    /// No question with that index is open (the quiz is in the lobby, has ended,
    /// or the index is of a question not yet asked).
    WrongPhase,
    /// The choice is not one of the question's choices.
    InvalidChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostCommand {
    /// Lobby → first question.
    Start,
    /// Reveal → next question, or to the end after the last one.
    Next,
    /// Close the open question now.
    Skip,
    /// End the quiz from any phase.
    End,
    /// Refuse new players from now on (any phase but the end).
    Lock,
    /// Admit new players again.
    Unlock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    Done,
    WrongPhase,
}

/// What a host follows live: how many players joined, and while a question
/// is open, how many answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub players: u32,
    pub question: Option<QuestionProgress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionProgress {
    pub index: u16,
    pub answered: u32,
}

/// Whether a coalesced leaderboard is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderboardDue {
    /// Something changed and the interval has passed.
    Due,
    /// Something changed, but the last leaderboard is too recent.
    TooSoon,
    /// Nothing changed since the last leaderboard.
    Clean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    NicknameTaken,
    QuizEnded,
    QuizFull,
    /// The host locked the quiz: no new players.
    Locked,
}

/// What removing a player did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    Done,
    /// Only in the lobby and between questions: while a question is open, the
    /// count of who answered must not change under it; after the end, nothing
    /// changes.
    WrongPhase,
    /// No such player, or one already removed.
    NoSuchPlayer,
}

/// A player's own view, part of its snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerView {
    pub player_id: PlayerId,
    pub nickname: String,
    pub score: u64,
    pub rank: u32,
    /// This player's answer to the current question, if it gave one.
    pub answer: Option<AnswerRecord>,
}

/// Everything a client needs to draw the quiz from scratch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuizSnapshot {
    pub phase: Phase,
    pub question_count: u16,
    /// The open question (phase `question`) or the one just revealed (phase `reveal`).
    pub question: Option<CurrentQuestion>,
    pub players: u32,
    pub top: Vec<Standing>,
    /// The sequence number of the last event included in this snapshot.
    pub seq: u64,
    pub you: Option<PlayerView>,
    /// The host locked the quiz: no new players.
    #[serde(default)]
    pub locked: bool,
}

#[derive(Debug, Clone)]
struct Player {
    nickname: String,
    score: u64,
    /// The host removed this player: out of the standings and the counts,
    /// its nickname still taken, its session no longer valid.
    removed: bool,
}

/// One quiz's whole state, the rules that change it, and its event sequence.
///
/// Every state change that players must hear about appends [`Sequenced`] events
/// to the `out` vector passed in; the caller publishes them in order.
#[derive(Debug, Clone)]
pub struct Quiz {
    def: Arc<QuizDefinition>,
    phase: Phase,
    current: Option<CurrentQuestion>,
    /// `players[id - 1]`
    players: Vec<Player>,
    nicknames: HashMap<String, PlayerId>,
    answers: HashMap<(PlayerId, u16), AnswerRecord>,
    seq: u64,
    leaderboard_dirty: bool,
    leaderboard_ms: Option<Millis>,
    max_players: u32,
    locked: bool,
    removed: u32,
}

// === impl Quiz ===

impl Quiz {
    /// A new quiz in the lobby. `def` must have passed [`QuizDefinition::validate`].
    pub fn new(def: Arc<QuizDefinition>) -> Self {
        Self::with_max_players(def, MAX_PLAYERS)
    }

    /// A new quiz that admits at most `max_players` (see [`MAX_PLAYERS`]).
    pub fn with_max_players(def: Arc<QuizDefinition>, max_players: u32) -> Self {
        Self {
            def,
            phase: Phase::Lobby,
            current: None,
            players: Vec::new(),
            nicknames: HashMap::new(),
            answers: HashMap::new(),
            seq: 0,
            leaderboard_dirty: false,
            leaderboard_ms: None,
            max_players,
            locked: false,
            removed: 0,
        }
    }

    pub fn definition(&self) -> &Arc<QuizDefinition> {
        &self.def
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Players in the quiz: joined, and not removed.
    pub fn player_count(&self) -> u32 {
        self.players.len() as u32 - self.removed
    }

    /// Whether `id` joined this quiz (removed or not).
    pub fn has_player(&self, id: PlayerId) -> bool {
        id >= 1 && (id as usize) <= self.players.len()
    }

    /// Whether the host removed player `id`.
    pub fn is_removed(&self, id: PlayerId) -> bool {
        self.has_player(id) && self.players[(id - 1) as usize].removed
    }

    /// Removes a player (see [`RemoveOutcome`]): everyone is told, and the
    /// next leaderboard no longer shows it.
    pub fn remove(&mut self, id: PlayerId, now: Millis, out: &mut Vec<Sequenced>) -> RemoveOutcome {
        if matches!(self.phase, Phase::Question | Phase::Ended) {
            return RemoveOutcome::WrongPhase;
        }
        if !self.has_player(id) || self.is_removed(id) {
            return RemoveOutcome::NoSuchPlayer;
        }
        self.players[(id - 1) as usize].removed = true;
        self.removed += 1;
        self.leaderboard_dirty = true;
        self.emit(now, Event::PlayerRemoved { player_id: id }, out);
        RemoveOutcome::Done
    }

    /// Admits a player. `nickname` must have passed [`crate::validate_nickname`].
    /// Joining is open until the quiz ends; a late joiner starts at 0 points.
    pub fn join(&mut self, nickname: &str) -> Result<PlayerId, JoinRefused> {
        if self.phase == Phase::Ended {
            return Err(JoinRefused::QuizEnded);
        }
        if self.locked {
            return Err(JoinRefused::Locked);
        }
        if self.players.len() as u32 >= self.max_players {
            return Err(JoinRefused::QuizFull);
        }
        let key = nickname_key(nickname);
        if self.nicknames.contains_key(&key) {
            return Err(JoinRefused::NicknameTaken);
        }
        self.players.push(Player {
            nickname: nickname.to_owned(),
            score: 0,
            removed: false,
        });
        let id = self.players.len() as PlayerId;
        self.nicknames.insert(key, id);
        self.leaderboard_dirty = true;
        Ok(id)
    }

    pub fn command(
        &mut self,
        cmd: HostCommand,
        now: Millis,
        out: &mut Vec<Sequenced>,
    ) -> CommandOutcome {
        match (cmd, self.phase) {
            (HostCommand::Start, Phase::Lobby) => self.ask(0, now, out),
            (HostCommand::Next, Phase::Reveal) => {
                let next = self.current.as_ref().map_or(0, |q| q.index + 1);
                if usize::from(next) < self.def.questions.len() {
                    self.ask(next, now, out);
                } else {
                    self.end(now, out);
                }
            }
            (HostCommand::Skip, Phase::Question) => self.close(CloseReason::Skipped, now, out),
            (HostCommand::End, Phase::Lobby | Phase::Reveal) => self.end(now, out),
            (HostCommand::End, Phase::Question) => {
                self.close(CloseReason::Ended, now, out);
                self.end(now, out);
            }
            (HostCommand::Lock | HostCommand::Unlock, phase) if phase != Phase::Ended => {
                let locked = cmd == HostCommand::Lock;
                if self.locked != locked {
                    self.locked = locked;
                    self.emit(now, Event::LobbyLocked { locked }, out);
                }
            }
            _ => return CommandOutcome::WrongPhase,
        }
        CommandOutcome::Done
    }

    /// Scores an answer by the server's clock `now`. When it is the last player's
    /// answer, the question closes in the same step.
    pub fn answer(
        &mut self,
        player: PlayerId,
        index: u16,
        choice: u8,
        now: Millis,
        out: &mut Vec<Sequenced>,
    ) -> AnswerOutcome {
        // Callers ask only for players of the quiz; one that is not (or no
        // longer, see `remove`) gets no seat in the question, never a panic.
        if !self.has_player(player) || self.is_removed(player) {
            return AnswerOutcome::WrongPhase;
        }
        if let Some(record) = self.answers.get(&(player, index)) {
            return AnswerOutcome::Duplicate(*record);
        }
        let Some(current) = self.current.as_mut() else {
            return AnswerOutcome::WrongPhase;
        };
        if self.phase == Phase::Ended || index > current.index {
            return AnswerOutcome::WrongPhase;
        }
        if index < current.index || self.phase == Phase::Reveal || now > current.deadline_ms {
            return AnswerOutcome::Late;
        }
        let question = &self.def.questions[usize::from(index)];
        if usize::from(choice) >= question.choices.len() {
            return AnswerOutcome::InvalidChoice;
        }
        let points = score(
            question.points,
            choice == question.correct,
            // A clock that stepped back scores as an instant answer, never a panic.
            now.saturating_sub(current.started_ms),
            question.time_limit_ms,
        );
        current.answered += 1;
        current.distribution[usize::from(choice)] += 1;
        let all_answered = current.answered >= self.players.len() as u32 - self.removed;
        let p = &mut self.players[(player - 1) as usize];
        p.score += u64::from(points);
        let record = AnswerRecord {
            choice,
            points,
            total: p.score,
        };
        self.answers.insert((player, index), record);
        // Scores show at the reveal, whose leaderboard is always published:
        // an answer does not make the leaderboard dirty.
        if all_answered {
            self.close(CloseReason::AllAnswered, now, out);
        }
        AnswerOutcome::Accepted(record)
    }

    /// The index of the open question if its deadline has passed at `now`.
    pub fn overdue(&self, now: Millis) -> Option<u16> {
        match (&self.current, self.phase) {
            (Some(q), Phase::Question) if now > q.deadline_ms => Some(q.index),
            _ => None,
        }
    }

    /// Closes question `index` if it is still open and its deadline has passed.
    /// Returns whether it closed; calling it again is harmless.
    pub fn close_if_due(&mut self, index: u16, now: Millis, out: &mut Vec<Sequenced>) -> bool {
        if self.overdue(now) != Some(index) {
            return false;
        }
        self.close(CloseReason::Deadline, now, out);
        true
    }

    /// Publishes a leaderboard if something changed since the last one and at
    /// least `interval` has passed. This is what coalesces leaderboard pushes.
    pub fn leaderboard_if_due(
        &mut self,
        now: Millis,
        interval: Millis,
        out: &mut Vec<Sequenced>,
    ) -> bool {
        if self.leaderboard_due(now, interval) != LeaderboardDue::Due {
            return false;
        }
        self.push_leaderboard(now, out);
        true
    }

    /// Whether [`Self::leaderboard_if_due`] would publish at `now`. Only
    /// between questions (after a reveal) is anything: in the lobby and while
    /// a question is open, a join waits for the next reveal, which publishes
    /// the leaderboard anyway, and hosts follow the count by [`Self::progress`].
    /// So what a mass join or an answer burst costs does not grow with how
    /// fast players come or answer.
    pub fn leaderboard_due(&self, now: Millis, interval: Millis) -> LeaderboardDue {
        if !self.leaderboard_dirty || self.phase != Phase::Reveal {
            LeaderboardDue::Clean
        } else if self
            .leaderboard_ms
            .is_some_and(|last| now < last + leaderboard_interval(interval, self.player_count()))
        {
            LeaderboardDue::TooSoon
        } else {
            LeaderboardDue::Due
        }
    }

    /// What a host follows live; `None` once the quiz has ended.
    pub fn progress(&self) -> Option<Progress> {
        (self.phase != Phase::Ended).then(|| Progress {
            players: self.player_count(),
            question: self
                .current
                .as_ref()
                .filter(|_| self.phase == Phase::Question)
                .map(|q| QuestionProgress {
                    index: q.index,
                    answered: q.answered,
                }),
        })
    }

    /// Every player's score, highest first; ties in join order (lower id
    /// first). Removed players are not in it.
    pub fn scores(&self) -> Vec<(PlayerId, u64)> {
        let mut all: Vec<(PlayerId, u64)> = self
            .players
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.removed)
            .map(|(i, p)| (i as PlayerId + 1, p.score))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all
    }

    pub fn snapshot(&self, player: Option<PlayerId>) -> QuizSnapshot {
        let scores = self.scores();
        let you = player
            .filter(|id| self.has_player(*id) && !self.is_removed(*id))
            .map(|id| {
                let p = &self.players[(id - 1) as usize];
                let desc: Vec<u64> = scores.iter().map(|s| s.1).collect();
                PlayerView {
                    player_id: id,
                    nickname: p.nickname.clone(),
                    score: p.score,
                    rank: rank_of(p.score, &desc),
                    answer: self
                        .current
                        .as_ref()
                        .and_then(|q| self.answers.get(&(id, q.index)).copied()),
                }
            });
        QuizSnapshot {
            phase: self.phase,
            question_count: self.def.questions.len() as u16,
            question: self.current.clone().filter(|_| self.phase != Phase::Ended),
            players: self.player_count(),
            top: self.top(&scores),
            seq: self.seq,
            you,
            locked: self.locked,
        }
    }

    fn ask(&mut self, index: u16, now: Millis, out: &mut Vec<Sequenced>) {
        let q = &self.def.questions[usize::from(index)];
        let deadline_ms = now + q.time_limit_ms;
        self.current = Some(CurrentQuestion {
            index,
            started_ms: now,
            deadline_ms,
            answered: 0,
            distribution: vec![0; q.choices.len()],
        });
        self.phase = Phase::Question;
        self.emit(
            now,
            Event::QuestionStarted {
                index,
                started_ms: now,
                deadline_ms,
            },
            out,
        );
    }

    fn close(&mut self, reason: CloseReason, now: Millis, out: &mut Vec<Sequenced>) {
        let Some(q) = self.current.as_ref() else {
            return;
        };
        let event = Event::QuestionClosed {
            index: q.index,
            correct: self.def.questions[usize::from(q.index)].correct,
            distribution: q.distribution.clone(),
            answered: q.answered,
            reason,
        };
        self.phase = Phase::Reveal;
        self.emit(now, event, out);
        if reason != CloseReason::Ended {
            // Everyone sees the standings after each question, whatever the coalescing.
            self.push_leaderboard(now, out);
        }
    }

    fn end(&mut self, now: Millis, out: &mut Vec<Sequenced>) {
        self.phase = Phase::Ended;
        let top = self.top(&self.scores());
        self.emit(
            now,
            Event::QuizEnded {
                top,
                players: self.player_count(),
            },
            out,
        );
    }

    fn push_leaderboard(&mut self, now: Millis, out: &mut Vec<Sequenced>) {
        let top = self.top(&self.scores());
        self.leaderboard_dirty = false;
        self.leaderboard_ms = Some(now);
        self.emit(
            now,
            Event::Leaderboard {
                top,
                players: self.player_count(),
            },
            out,
        );
    }

    fn top(&self, scores: &[(PlayerId, u64)]) -> Vec<Standing> {
        ranked(scores)
            .take(LEADERBOARD_SIZE)
            .map(|(id, score, rank)| Standing {
                player_id: id,
                nickname: self.players[(id - 1) as usize].nickname.clone(),
                score,
                rank,
            })
            .collect()
    }

    fn emit(&mut self, now: Millis, event: Event, out: &mut Vec<Sequenced>) {
        self.seq += 1;
        out.push(Sequenced {
            seq: self.seq,
            ts_ms: now,
            event,
            trace: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::tests::sample;

    fn quiz_with(players: &[&str]) -> Quiz {
        let mut q = Quiz::new(Arc::new(sample()));
        for p in players {
            q.join(p).expect("join");
        }
        q
    }

    fn kinds(out: &[Sequenced]) -> Vec<&'static str> {
        out.iter()
            .map(|e| match e.event {
                Event::QuestionStarted { .. } => "started",
                Event::QuestionClosed { .. } => "closed",
                Event::Leaderboard { .. } => "leaderboard",
                Event::QuizEnded { .. } => "ended",
                Event::PlayerRemoved { .. } => "removed",
                Event::LobbyLocked { .. } => "locked",
            })
            .collect()
    }

    #[test]
    fn commands_by_phase() {
        use CommandOutcome::*;
        use HostCommand::*;
        // (commands already applied, command, expected outcome, phase after)
        let cases: &[(&[HostCommand], HostCommand, CommandOutcome, Phase)] = &[
            (&[], Start, Done, Phase::Question),
            (&[], Next, WrongPhase, Phase::Lobby),
            (&[], Skip, WrongPhase, Phase::Lobby),
            (&[], End, Done, Phase::Ended),
            (&[Start], Start, WrongPhase, Phase::Question),
            (&[Start], Next, WrongPhase, Phase::Question),
            (&[Start], Skip, Done, Phase::Reveal),
            (&[Start], End, Done, Phase::Ended),
            (&[Start, Skip], Next, Done, Phase::Question),
            (&[Start, Skip], Skip, WrongPhase, Phase::Reveal),
            (&[Start, Skip, Next, Skip], Next, Done, Phase::Ended), // past the last question
            (&[End], Start, WrongPhase, Phase::Ended),
            (&[End], End, WrongPhase, Phase::Ended),
        ];
        for (before, cmd, want, phase) in cases {
            let mut q = quiz_with(&["ann"]);
            let mut out = Vec::new();
            for c in *before {
                assert_eq!(q.command(*c, 1_000, &mut out), Done, "{before:?}");
            }
            assert_eq!(
                q.command(*cmd, 2_000, &mut out),
                *want,
                "{before:?} then {cmd:?}"
            );
            assert_eq!(q.phase(), *phase, "{before:?} then {cmd:?}");
        }
    }

    #[test]
    fn sequence_is_gapless_from_one() {
        let mut q = quiz_with(&["ann", "bob"]);
        let mut out = Vec::new();
        q.command(HostCommand::Start, 0, &mut out);
        q.answer(1, 0, 1, 100, &mut out);
        q.answer(2, 0, 0, 400, &mut out); // the last answer closes the question
        q.command(HostCommand::Next, 500, &mut out);
        q.command(HostCommand::End, 600, &mut out);
        assert_eq!(
            kinds(&out),
            [
                "started",
                "closed",
                "leaderboard",
                "started",
                "closed",
                "ended"
            ]
        );
        let seqs: Vec<u64> = out.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
        assert_eq!(q.seq(), 6);
    }

    #[test]
    fn answers_by_time_and_phase() {
        use AnswerOutcome::*;
        // question 0: started at 1_000, limit 10_000 → deadline 11_000, correct = 1, 1000 points
        let cases: &[(u16, u8, Millis, AnswerOutcome)] = &[
            (
                0,
                1,
                1_000,
                Accepted(AnswerRecord {
                    choice: 1,
                    points: 1000,
                    total: 1000,
                }),
            ),
            (
                0,
                1,
                11_000,
                Accepted(AnswerRecord {
                    choice: 1,
                    points: 500,
                    total: 500,
                }),
            ),
            (
                0,
                0,
                2_000,
                Accepted(AnswerRecord {
                    choice: 0,
                    points: 0,
                    total: 0,
                }),
            ),
            (0, 1, 11_001, Late),
            (1, 0, 2_000, WrongPhase),
            (0, 3, 2_000, InvalidChoice),
        ];
        for (index, choice, at, want) in cases {
            let mut q = quiz_with(&["ann", "bob"]);
            let mut out = Vec::new();
            q.command(HostCommand::Start, 1_000, &mut out);
            assert_eq!(
                q.answer(1, *index, *choice, *at, &mut out),
                *want,
                "{index} {choice} {at}"
            );
        }
    }

    #[test]
    fn answer_outside_a_question() {
        let mut q = quiz_with(&["ann", "bob"]);
        let mut out = Vec::new();
        assert_eq!(
            q.answer(1, 0, 0, 0, &mut out),
            AnswerOutcome::WrongPhase,
            "lobby"
        );
        q.command(HostCommand::Start, 0, &mut out);
        q.command(HostCommand::Skip, 10, &mut out);
        assert_eq!(
            q.answer(1, 0, 1, 20, &mut out),
            AnswerOutcome::Late,
            "closed question"
        );
        q.command(HostCommand::Next, 30, &mut out);
        assert_eq!(
            q.answer(1, 0, 1, 40, &mut out),
            AnswerOutcome::Late,
            "earlier question"
        );
        q.command(HostCommand::End, 50, &mut out);
        assert_eq!(
            q.answer(1, 1, 0, 60, &mut out),
            AnswerOutcome::WrongPhase,
            "ended"
        );
    }

    #[test]
    fn retried_answer_is_scored_once() {
        let mut q = quiz_with(&["ann", "bob"]);
        let mut out = Vec::new();
        q.command(HostCommand::Start, 0, &mut out);
        let first = q.answer(1, 0, 1, 0, &mut out);
        let AnswerOutcome::Accepted(record) = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            q.answer(1, 0, 0, 5, &mut out),
            AnswerOutcome::Duplicate(record)
        );
        q.command(HostCommand::Skip, 10, &mut out);
        assert_eq!(
            q.answer(1, 0, 1, 20, &mut out),
            AnswerOutcome::Duplicate(record),
            "after the close too"
        );
        assert_eq!(q.scores()[0], (1, 1000));
    }

    #[test]
    fn deadline_closes_once() {
        let mut q = quiz_with(&["ann"]);
        let mut out = Vec::new();
        q.command(HostCommand::Start, 0, &mut out);
        assert!(
            !q.close_if_due(0, 10_000, &mut out),
            "deadline itself still open"
        );
        assert!(q.close_if_due(0, 10_001, &mut out));
        assert!(!q.close_if_due(0, 10_002, &mut out));
        assert_eq!(kinds(&out), ["started", "closed", "leaderboard"]);
        let Event::QuestionClosed { reason, .. } = &out[1].event else {
            panic!()
        };
        assert_eq!(*reason, CloseReason::Deadline);
    }

    #[test]
    fn leaderboards_come_with_reveals_and_between_questions_only() {
        let mut q = quiz_with(&["ann", "bob"]);
        let mut out = Vec::new();
        let lobby = |players| Progress {
            players,
            question: None,
        };
        assert_eq!(
            q.leaderboard_due(0, 250),
            LeaderboardDue::Clean,
            "nothing in the lobby, however many join"
        );
        assert_eq!(q.progress(), Some(lobby(2)), "hosts follow the count");
        q.command(HostCommand::Start, 1_000, &mut out);
        out.clear();
        q.answer(1, 0, 1, 1_010, &mut out);
        q.join("cy").expect("join");
        assert_eq!(
            q.leaderboard_due(5_000, 250),
            LeaderboardDue::Clean,
            "nothing while a question is open, answers and joins alike"
        );
        assert!(!q.leaderboard_if_due(5_000, 250, &mut out));
        assert_eq!(
            q.progress(),
            Some(Progress {
                players: 3,
                question: Some(QuestionProgress {
                    index: 0,
                    answered: 1
                })
            })
        );
        q.answer(2, 0, 1, 1_020, &mut out);
        q.command(HostCommand::Skip, 1_030, &mut out);
        assert_eq!(q.progress(), Some(lobby(3)), "no question open");
        let [closed, board] = &out[..] else {
            panic!("{out:?}")
        };
        assert!(matches!(closed.event, Event::QuestionClosed { .. }));
        let Event::Leaderboard { players, top } = &board.event else {
            panic!("{board:?}")
        };
        assert_eq!(*players, 3);
        assert_eq!(
            top.iter()
                .map(|s| (s.player_id, s.rank))
                .collect::<Vec<_>>(),
            [(1, 1), (2, 2), (3, 3)]
        );
        assert!(
            !q.leaderboard_if_due(5_000, 250, &mut out),
            "the reveal's leaderboard showed the join"
        );
        // Between questions a join is shown, coalesced.
        q.join("dee").expect("join");
        q.join("eve").expect("join");
        assert!(!q.leaderboard_if_due(1_100, 250, &mut out), "too soon");
        assert!(q.leaderboard_if_due(1_300, 250, &mut out), "one for both");
        assert!(!q.leaderboard_if_due(2_000, 250, &mut out), "nothing new");
        q.command(HostCommand::End, 2_000, &mut out);
        assert_eq!(q.progress(), None, "ended");
    }

    #[test]
    fn nicknames_are_unique_case_insensitively() {
        let mut q = quiz_with(&["Ann"]);
        assert_eq!(q.join("aNN"), Err(JoinRefused::NicknameTaken));
        assert_eq!(q.join("bob"), Ok(2));
        let mut out = Vec::new();
        q.command(HostCommand::End, 0, &mut out);
        assert_eq!(q.join("cy"), Err(JoinRefused::QuizEnded));
    }

    #[test]
    fn snapshot_shows_the_players_own_view() {
        let mut q = quiz_with(&["ann", "bob"]);
        let mut out = Vec::new();
        q.command(HostCommand::Start, 0, &mut out);
        q.answer(2, 0, 1, 0, &mut out);
        let s = q.snapshot(Some(1));
        assert_eq!(s.phase, Phase::Question);
        assert_eq!(s.seq, 1);
        let you = s.you.expect("you");
        assert_eq!((you.score, you.rank, you.answer), (0, 2, None));
        let bob = q.snapshot(Some(2)).you.expect("you");
        assert_eq!((bob.score, bob.rank), (1000, 1));
        assert_eq!(bob.answer.map(|a| a.points), Some(1000));
    }

    #[test]
    fn final_standings_share_ranks() {
        let mut q = quiz_with(&["ann", "bob", "cy"]);
        let mut out = Vec::new();
        q.command(HostCommand::Start, 0, &mut out);
        q.answer(1, 0, 1, 0, &mut out);
        q.answer(2, 0, 1, 0, &mut out);
        q.command(HostCommand::End, 1, &mut out);
        let Some(Sequenced {
            event: Event::QuizEnded { top, .. },
            ..
        }) = out.last()
        else {
            panic!()
        };
        assert_eq!(top.iter().map(|s| s.rank).collect::<Vec<_>>(), [1, 1, 3]);
    }

    #[test]
    fn a_removed_player_leaves_the_standings_the_counts_and_its_seat() {
        let mut q = quiz_with(&["ann", "bob", "cy"]);
        let mut out = Vec::new();
        assert_eq!(q.remove(2, 1_000, &mut out), RemoveOutcome::Done);
        assert_eq!(kinds(&out), ["removed"]);
        assert_eq!(q.remove(2, 1_000, &mut out), RemoveOutcome::NoSuchPlayer);
        assert_eq!(q.remove(9, 1_000, &mut out), RemoveOutcome::NoSuchPlayer);
        assert_eq!(q.player_count(), 2);
        assert!(q.is_removed(2) && q.snapshot(Some(2)).you.is_none());
        assert_eq!(
            q.join("BOB"),
            Err(JoinRefused::NicknameTaken),
            "its name stays taken"
        );
        // Not while a question is open; the others' answers close it.
        q.command(HostCommand::Start, 2_000, &mut out);
        assert_eq!(q.remove(1, 2_000, &mut out), RemoveOutcome::WrongPhase);
        assert_eq!(
            q.answer(2, 0, 0, 2_100, &mut out),
            AnswerOutcome::WrongPhase
        );
        q.answer(1, 0, 0, 2_100, &mut out);
        out.clear();
        q.answer(3, 0, 0, 2_100, &mut out);
        assert_eq!(
            kinds(&out),
            ["closed", "leaderboard"],
            "two of two answered"
        );
        assert!(q.scores().iter().all(|(id, _)| *id != 2));
        q.command(HostCommand::End, 3_000, &mut out);
        assert_eq!(q.remove(1, 3_000, &mut out), RemoveOutcome::WrongPhase);
    }

    #[test]
    fn an_answer_from_no_player_of_the_quiz_is_refused_not_a_panic() {
        // Found by fuzz/fuzz_targets/play.rs (player 0 indexed players[-1]).
        let mut q = quiz_with(&["ann"]);
        let mut out = Vec::new();
        q.command(HostCommand::Start, 1_000, &mut out);
        assert_eq!(
            q.answer(0, 0, 0, 1_100, &mut out),
            AnswerOutcome::WrongPhase
        );
        assert_eq!(
            q.answer(2, 0, 0, 1_100, &mut out),
            AnswerOutcome::WrongPhase
        );
        assert!(matches!(
            q.answer(1, 0, 0, 1_100, &mut out),
            AnswerOutcome::Accepted(_)
        ));
    }

    #[test]
    fn a_locked_quiz_admits_nobody_until_unlocked() {
        let mut q = quiz_with(&["ann"]);
        let mut out = Vec::new();
        assert_eq!(
            q.command(HostCommand::Lock, 1_000, &mut out),
            CommandOutcome::Done
        );
        assert_eq!(
            q.command(HostCommand::Lock, 1_000, &mut out),
            CommandOutcome::Done
        );
        assert_eq!(
            kinds(&out),
            ["locked"],
            "once: locking a locked quiz changes nothing"
        );
        assert!(q.snapshot(None).locked);
        assert_eq!(q.join("bob"), Err(JoinRefused::Locked));
        q.command(HostCommand::Unlock, 1_000, &mut out);
        assert_eq!(q.join("bob"), Ok(2));
        q.command(HostCommand::End, 2_000, &mut out);
        assert_eq!(
            q.command(HostCommand::Lock, 2_000, &mut out),
            CommandOutcome::WrongPhase
        );
    }
}
