//! The embedded backplane: every quiz in this process's memory, events handed
//! straight to the sink. One node, no Redis, same contracts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use dashmap::DashMap;
use quizgate_domain::{
    AnswerOutcome, CommandOutcome, HostCommand, JoinCode, LeaderboardDue, Millis, Phase, PlayerId,
    Quiz, QuizDefinition, QuizSnapshot, Sequenced,
};

use crate::token::{new_code, new_secret, secrets_match};
use crate::{
    Backplane, Clock, CreatedQuiz, EventSink, JoinResult, Result, ResumeResult, Session,
    SessionToken, Tick,
};

#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Least time between two coalesced leaderboards of one quiz.
    pub leaderboard_interval_ms: Millis,
    /// A quiz nobody touched for this long is removed.
    pub idle_ttl_ms: Millis,
    /// How long an ended quiz stays for late readers and resumes.
    pub ended_ttl_ms: Millis,
    /// Events kept per quiz for resume.
    pub log_capacity: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            leaderboard_interval_ms: 250,
            idle_ttl_ms: 2 * 3600 * 1000,
            ended_ttl_ms: 10 * 60 * 1000,
            log_capacity: 10_000,
        }
    }
}

#[derive(Debug)]
struct Entry {
    quiz: Quiz,
    host_secret: String,
    /// `player_secrets[id - 1]`
    player_secrets: Vec<String>,
    last_activity: Millis,
    /// The newest events, oldest first, for resume.
    log: VecDeque<Arc<Sequenced>>,
}

/// Every quiz in this process. Each quiz has its own lock, held while its state
/// changes and its events are delivered, so delivery order is sequence order.
pub struct MemoryBackplane {
    quizzes: DashMap<JoinCode, Arc<Mutex<Entry>>>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    config: MemoryConfig,
}

impl std::fmt::Debug for MemoryBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackplane")
            .field("quizzes", &self.quizzes.len())
            .field("config", &self.config)
            .finish()
    }
}

// === impl MemoryBackplane ===

impl MemoryBackplane {
    pub fn new(sink: Arc<dyn EventSink>, clock: Arc<dyn Clock>, config: MemoryConfig) -> Self {
        Self {
            quizzes: DashMap::new(),
            sink,
            clock,
            config,
        }
    }

    fn entry(&self, code: &JoinCode) -> Option<Arc<Mutex<Entry>>> {
        // Clone the Arc out so that no map guard is held while the quiz is locked.
        self.quizzes.get(code).map(|e| Arc::clone(e.value()))
    }

    /// Runs `f` on the quiz under its lock, then logs and delivers what it emitted.
    fn with_quiz<T>(
        &self,
        code: &JoinCode,
        f: impl FnOnce(&mut Entry, Millis, &mut Vec<Sequenced>) -> T,
    ) -> Option<T> {
        let entry = self.entry(code)?;
        let mut guard = lock(&entry);
        let now = self.clock.now_ms();
        guard.last_activity = now;
        let mut out = Vec::new();
        let result = f(&mut guard, now, &mut out);
        for event in out {
            let event = Arc::new(event);
            if guard.log.len() == self.config.log_capacity {
                guard.log.pop_front();
            }
            guard.log.push_back(Arc::clone(&event));
            self.sink.deliver(code, event);
        }
        Some(result)
    }
}

fn lock(entry: &Mutex<Entry>) -> MutexGuard<'_, Entry> {
    // A panic while holding the lock leaves a quiz that is still consistent at
    // event granularity (the domain mutates before it emits); keep serving it.
    entry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn session(code: &JoinCode, entry: &Entry, player_id: PlayerId) -> Session {
    let token = SessionToken {
        code: code.clone(),
        player_id,
        secret: entry.player_secrets[(player_id - 1) as usize].clone(),
    };
    Session {
        code: code.clone(),
        player_id,
        token: token.to_string(),
        snapshot: entry.quiz.snapshot(Some(player_id)),
    }
}

#[async_trait]
impl Backplane for MemoryBackplane {
    async fn create_quiz(&self, def: QuizDefinition) -> Result<CreatedQuiz> {
        let def = Arc::new(def);
        loop {
            let code = new_code();
            let dashmap::Entry::Vacant(slot) = self.quizzes.entry(code.clone()) else {
                continue;
            };
            let host_secret = new_secret();
            slot.insert(Arc::new(Mutex::new(Entry {
                quiz: Quiz::new(Arc::clone(&def)),
                host_secret: host_secret.clone(),
                player_secrets: Vec::new(),
                last_activity: self.clock.now_ms(),
                log: VecDeque::new(),
            })));
            return Ok(CreatedQuiz {
                code,
                host_token: host_secret,
            });
        }
    }

    async fn definition(&self, code: &JoinCode) -> Result<Option<Arc<QuizDefinition>>> {
        Ok(self
            .entry(code)
            .map(|e| Arc::clone(lock(&e).quiz.definition())))
    }

    async fn join(&self, code: &JoinCode, nickname: &str) -> Result<JoinResult> {
        let result = self.with_quiz(code, |entry, _, _| match entry.quiz.join(nickname) {
            Ok(id) => {
                entry.player_secrets.push(new_secret());
                JoinResult::Joined(Box::new(session(code, entry, id)))
            }
            Err(refused) => JoinResult::Refused(refused),
        });
        Ok(result.unwrap_or(JoinResult::NotFound))
    }

    async fn resume(&self, token: &SessionToken, last_seq: u64) -> Result<ResumeResult> {
        let result = self.with_quiz(&token.code, |entry, _, _| {
            let id = token.player_id;
            if !entry.quiz.has_player(id)
                || !secrets_match(&entry.player_secrets[(id - 1) as usize], &token.secret)
            {
                return ResumeResult::InvalidToken;
            }
            let session = session(&token.code, entry, id);
            let head = session.snapshot.seq;
            let oldest = entry.log.front().map_or(head + 1, |e| e.seq);
            let missed = if last_seq >= head {
                Some(Vec::new())
            } else if last_seq + 1 >= oldest {
                Some(
                    entry
                        .log
                        .iter()
                        .filter(|e| e.seq > last_seq)
                        .cloned()
                        .collect(),
                )
            } else {
                None
            };
            ResumeResult::Resumed {
                session: Box::new(session),
                missed,
            }
        });
        Ok(result.unwrap_or(ResumeResult::InvalidToken))
    }

    async fn host(&self, code: &JoinCode, token: &str) -> Result<Option<QuizSnapshot>> {
        Ok(self
            .with_quiz(code, |entry, _, _| {
                secrets_match(&entry.host_secret, token).then(|| entry.quiz.snapshot(None))
            })
            .flatten())
    }

    async fn command(&self, code: &JoinCode, cmd: HostCommand) -> Result<Option<CommandOutcome>> {
        Ok(self.with_quiz(code, |entry, now, out| entry.quiz.command(cmd, now, out)))
    }

    async fn answer(
        &self,
        code: &JoinCode,
        player: PlayerId,
        question: u16,
        choice: u8,
    ) -> Result<Option<AnswerOutcome>> {
        Ok(self
            .with_quiz(code, |entry, now, out| {
                entry
                    .quiz
                    .has_player(player)
                    .then(|| entry.quiz.answer(player, question, choice, now, out))
            })
            .flatten())
    }

    async fn close_if_due(&self, code: &JoinCode, index: u16) -> Result<bool> {
        Ok(self
            .with_quiz(code, |entry, now, out| {
                entry.quiz.close_if_due(index, now, out)
            })
            .unwrap_or(false))
    }

    async fn leaderboard_if_due(&self, code: &JoinCode) -> Result<Tick> {
        let interval = self.config.leaderboard_interval_ms;
        let Some(entry) = self.entry(code) else {
            return Ok(Tick::Gone);
        };
        // A periodic check is not activity: peek before taking the write path.
        match lock(&entry)
            .quiz
            .leaderboard_due(self.clock.now_ms(), interval)
        {
            LeaderboardDue::Due => {}
            LeaderboardDue::TooSoon => return Ok(Tick::TooSoon),
            LeaderboardDue::Clean => return Ok(Tick::Nothing),
        }
        let published = self.with_quiz(code, |entry, now, out| {
            entry.quiz.leaderboard_if_due(now, interval, out)
        });
        Ok(match published {
            Some(true) => Tick::Published,
            Some(false) => Tick::TooSoon,
            None => Tick::Gone,
        })
    }

    async fn exists(&self, code: &JoinCode) -> Result<bool> {
        Ok(self.quizzes.contains_key(code))
    }

    async fn scores(&self, code: &JoinCode) -> Result<Option<Vec<(PlayerId, u64)>>> {
        Ok(self.entry(code).map(|e| lock(&e).quiz.scores()))
    }

    async fn subscribe(&self, _code: &JoinCode) -> Result<()> {
        // Every event already goes to the one sink.
        Ok(())
    }

    async fn unsubscribe(&self, _code: &JoinCode) -> Result<()> {
        Ok(())
    }

    async fn expire(&self) -> Result<Vec<JoinCode>> {
        let now = self.clock.now_ms();
        let mut gone = Vec::new();
        self.quizzes.retain(|code, entry| {
            let e = lock(entry);
            let ttl = if e.quiz.phase() == Phase::Ended {
                self.config.ended_ttl_ms
            } else {
                self.config.idle_ttl_ms
            };
            let keep = now < e.last_activity + ttl;
            if !keep {
                gone.push(code.clone());
            }
            keep
        });
        Ok(gone)
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use quizgate_domain::{Event, Question};

    use super::*;
    use crate::ManualClock;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(JoinCode, u64)>>);

    impl EventSink for Recorder {
        fn deliver(&self, quiz: &JoinCode, event: Arc<Sequenced>) {
            self.0.lock().expect("lock").push((quiz.clone(), event.seq));
        }
    }

    fn def() -> QuizDefinition {
        let q = |correct| Question {
            text: "q".into(),
            choices: vec!["a".into(), "b".into()],
            correct,
            time_limit_ms: 1_000,
            points: 100,
        };
        QuizDefinition {
            title: "t".into(),
            questions: vec![q(0), q(1)],
        }
    }

    fn setup(config: MemoryConfig) -> (MemoryBackplane, Arc<Recorder>, Arc<ManualClock>) {
        let sink = Arc::new(Recorder::default());
        let clock = Arc::new(ManualClock::new(1_000_000));
        (
            MemoryBackplane::new(sink.clone(), clock.clone(), config),
            sink,
            clock,
        )
    }

    async fn joined(bp: &MemoryBackplane, code: &JoinCode, nick: &str) -> Session {
        match bp.join(code, nick).await.expect("join") {
            JoinResult::Joined(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn events_are_logged_and_delivered_in_order() {
        let (bp, sink, clock) = setup(MemoryConfig::default());
        let quiz = bp.create_quiz(def()).await.expect("create");
        let ann = joined(&bp, &quiz.code, "ann").await;
        assert_eq!(
            bp.command(&quiz.code, HostCommand::Start).await,
            Ok(Some(CommandOutcome::Done))
        );
        clock.advance(1_001);
        assert_eq!(bp.close_if_due(&quiz.code, 0).await, Ok(true));
        assert_eq!(
            bp.close_if_due(&quiz.code, 0).await,
            Ok(false),
            "exactly once"
        );
        let seqs: Vec<u64> = sink
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        let token = SessionToken::parse(&ann.token).expect("token");
        let ResumeResult::Resumed {
            missed: Some(missed),
            session,
        } = bp.resume(&token, 1).await.expect("resume")
        else {
            panic!()
        };
        assert_eq!(missed.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(session.snapshot.seq, 3);
        assert!(matches!(missed[0].event, Event::QuestionClosed { .. }));
    }

    #[tokio::test]
    async fn resume_beyond_the_log_says_so() {
        let (bp, _, clock) = setup(MemoryConfig {
            log_capacity: 2,
            ..MemoryConfig::default()
        });
        let quiz = bp.create_quiz(def()).await.expect("create");
        let ann = joined(&bp, &quiz.code, "ann").await;
        bp.command(&quiz.code, HostCommand::Start)
            .await
            .expect("start");
        clock.advance(2_000);
        bp.close_if_due(&quiz.code, 0).await.expect("close"); // seq 2, 3: log holds 2..=3
        let token = SessionToken::parse(&ann.token).expect("token");
        let r = bp.resume(&token, 0).await.expect("resume");
        assert!(
            matches!(r, ResumeResult::Resumed { missed: None, .. }),
            "{r:?}"
        );
        let r = bp.resume(&token, 1).await.expect("resume");
        assert!(
            matches!(r, ResumeResult::Resumed { missed: Some(ref m), .. } if m.len() == 2),
            "{r:?}"
        );
        let r = bp.resume(&token, 3).await.expect("resume");
        assert!(
            matches!(r, ResumeResult::Resumed { missed: Some(ref m), .. } if m.is_empty()),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let (bp, _, _) = setup(MemoryConfig::default());
        let quiz = bp.create_quiz(def()).await.expect("create");
        let ann = joined(&bp, &quiz.code, "ann").await;
        let bob = joined(&bp, &quiz.code, "bob").await;
        let mut stolen = SessionToken::parse(&ann.token).expect("token");
        stolen.player_id = bob.player_id;
        assert_eq!(
            bp.resume(&stolen, 0).await,
            Ok(ResumeResult::InvalidToken),
            "ann's secret, bob's id"
        );
        let mut unknown = SessionToken::parse(&ann.token).expect("token");
        unknown.player_id = 99;
        assert_eq!(bp.resume(&unknown, 0).await, Ok(ResumeResult::InvalidToken));
        assert_eq!(bp.host(&quiz.code, "nope").await, Ok(None));
        assert!(
            bp.host(&quiz.code, &quiz.host_token)
                .await
                .expect("host")
                .is_some()
        );
    }

    #[tokio::test]
    async fn idle_quizzes_expire() {
        let (bp, _, clock) = setup(MemoryConfig {
            idle_ttl_ms: 10_000,
            ended_ttl_ms: 1_000,
            ..MemoryConfig::default()
        });
        let idle = bp.create_quiz(def()).await.expect("create");
        let ended = bp.create_quiz(def()).await.expect("create");
        bp.command(&ended.code, HostCommand::End)
            .await
            .expect("end");
        clock.advance(1_000);
        assert_eq!(bp.expire().await, Ok(vec![ended.code.clone()]));
        assert_eq!(
            bp.leaderboard_if_due(&idle.code).await,
            Ok(Tick::Nothing),
            "a check is not activity"
        );
        clock.advance(9_000);
        assert_eq!(bp.expire().await, Ok(vec![idle.code.clone()]));
        assert_eq!(bp.leaderboard_if_due(&idle.code).await, Ok(Tick::Gone));
        assert_eq!(bp.join(&idle.code, "ann").await, Ok(JoinResult::NotFound));
    }
}
