//! The embedded backplane: every quiz in this process's memory. One node, no
//! Redis, same contracts: a call changes the quiz and appends its events to the
//! quiz's log under the quiz's lock; a delivery task of its own then hands them
//! to the sink in order, as the Redis subscriber does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use dashmap::DashMap;
use quizgate_domain::{
    AnswerOutcome, CommandOutcome, HostCommand, JoinCode, LeaderboardDue, MAX_PLAYERS, Millis,
    Phase, PlayerId, Progress, Quiz, QuizDefinition, RemoveOutcome, Replay, Sequenced, replay,
    retention,
};
use tokio::sync::Notify;

use crate::delivery::{DeliveryEnd, Outlet, Supervised};
use crate::token::{new_code, new_secret, secrets_match};
use crate::{
    Backplane, Clock, CreateLimits, CreatedQuiz, Creation, EventSink, HostSession, JoinResult,
    Missed, Result, ResumeResult, Scores, Session, SessionToken, Tick,
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
    /// Most players one quiz admits.
    pub max_players: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            leaderboard_interval_ms: 250,
            idle_ttl_ms: 2 * 3600 * 1000,
            ended_ttl_ms: 10 * 60 * 1000,
            log_capacity: 10_000,
            max_players: MAX_PLAYERS,
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
    /// The newest events, oldest first, for resume and delivery.
    log: VecDeque<Arc<Sequenced>>,
    /// The last `seq` handed to the sink.
    delivered: u64,
}

impl Entry {
    /// The logged events with a `seq` greater than `seq`, oldest first.
    fn logged_after(&self, seq: u64) -> Vec<Arc<Sequenced>> {
        self.log.iter().filter(|e| e.seq > seq).cloned().collect()
    }
}

/// Whether a call counts as activity for the quiz's retention
/// (see [`quizgate_domain::retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// A client call: always activity.
    Client,
    /// A periodic check: activity only if it changed the quiz.
    Check,
}

/// Quizzes with events not yet delivered, and the signal for the delivery task.
#[derive(Debug, Default)]
struct Pending {
    quizzes: Mutex<HashSet<JoinCode>>,
    wake: Notify,
}

/// Every quiz in this process. Each quiz has its own lock, held while its state
/// changes and its events are logged; the delivery task delivers them.
pub struct MemoryBackplane {
    quizzes: Arc<DashMap<JoinCode, Arc<Mutex<Entry>>>>,
    pending: Arc<Pending>,
    clock: Arc<dyn Clock>,
    config: MemoryConfig,
    delivery: Supervised,
    /// Each owner's quizzes, pruned of ended and expired ones when counted.
    owners: Mutex<HashMap<String, HashSet<JoinCode>>>,
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
    /// Starts the delivery task: call from within a tokio runtime.
    pub fn new(sink: Arc<dyn EventSink>, clock: Arc<dyn Clock>, config: MemoryConfig) -> Self {
        let quizzes = Arc::new(DashMap::new());
        let pending = Arc::new(Pending::default());
        let delivery = Supervised::spawn("memory delivery", {
            let (quizzes, pending) = (Arc::clone(&quizzes), Arc::clone(&pending));
            move |stop| deliver_loop(quizzes, pending, sink, stop)
        });
        Self {
            quizzes,
            pending,
            clock,
            config,
            delivery,
            owners: Mutex::default(),
        }
    }

    fn entry(&self, code: &JoinCode) -> Option<Arc<Mutex<Entry>>> {
        // Clone the Arc out so that no map guard is held while the quiz is locked.
        self.quizzes.get(code).map(|e| Arc::clone(e.value()))
    }

    /// Runs `f` on the quiz under its lock, logs what it emitted and wakes the
    /// delivery task.
    fn with_quiz<T>(
        &self,
        code: &JoinCode,
        activity: Activity,
        f: impl FnOnce(&mut Entry, Millis, &mut Vec<Sequenced>) -> T,
    ) -> Option<T> {
        let entry = self.entry(code)?;
        let mut guard = lock(&entry);
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        let result = f(&mut guard, now, &mut out);
        if activity == Activity::Client || !out.is_empty() {
            guard.last_activity = now;
        }
        if !out.is_empty() {
            let trace = crate::current_trace();
            for mut event in out {
                event.trace.clone_from(&trace);
                if guard.log.len() >= self.config.log_capacity.max(1) {
                    guard.log.pop_front();
                }
                guard.log.push_back(Arc::new(event));
            }
            drop(guard);
            lock(&self.pending.quizzes).insert(code.clone());
            self.pending.wake.notify_one();
        }
        Some(result)
    }
}

/// Hands every logged event to the sink, in order per quiz, until `stop`.
async fn deliver_loop(
    quizzes: Arc<DashMap<JoinCode, Arc<Mutex<Entry>>>>,
    pending: Arc<Pending>,
    sink: Arc<dyn EventSink>,
    stop: tokio_util::sync::CancellationToken,
) -> DeliveryEnd {
    let mut outlet = Outlet::new(sink.as_ref());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return DeliveryEnd::Stopped,
            () = pending.wake.notified() => {}
        }
        let codes: Vec<JoinCode> = lock(&pending.quizzes).drain().collect();
        for code in codes {
            let Some(entry) = quizzes.get(&code).map(|e| Arc::clone(e.value())) else {
                continue;
            };
            let events: Vec<Arc<Sequenced>> = {
                let mut e = lock(&entry);
                let from = e.delivered;
                let events = e.logged_after(from);
                if let Some(last) = events.last() {
                    if events[0].seq != from + 1 {
                        tracing::warn!(quiz = %code, from = from + 1, to = events[0].seq - 1,
                            "events left the log before delivery");
                    }
                    e.delivered = last.seq;
                }
                events
            };
            for event in events {
                outlet.deliver(&code, event);
            }
        }
        outlet.flush();
    }
}

/// What the log holds after `last_seq`, by the domain's replay rule.
fn missed(entry: &Entry, last_seq: u64) -> Missed {
    let head = entry.quiz.seq();
    match replay(last_seq, head, entry.log.front().map(|e| e.seq)) {
        Replay::Events { after } => Some(entry.logged_after(after)),
        Replay::Snapshot => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a quiz's lock leaves a quiz that is still consistent
    // at event granularity (the domain mutates before it emits); keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    async fn create_quiz(&self, def: QuizDefinition, limits: &CreateLimits) -> Result<Creation> {
        // Held from the count to the insert, so that two creations by one
        // owner cannot both take its last place.
        let mut owners = lock(&self.owners);
        if let Some(owner) = &limits.owner {
            let codes = owners.entry(owner.clone()).or_default();
            codes.retain(|code| {
                self.entry(code)
                    .is_some_and(|e| lock(&e).quiz.phase() != Phase::Ended)
            });
            if codes.len() >= limits.live_quizzes as usize {
                return Ok(Creation::OverQuota);
            }
        }
        let def = Arc::new(def);
        let max_players = self.config.max_players.min(limits.max_players);
        loop {
            let code = new_code();
            let dashmap::Entry::Vacant(slot) = self.quizzes.entry(code.clone()) else {
                continue;
            };
            let host_secret = new_secret();
            slot.insert(Arc::new(Mutex::new(Entry {
                quiz: Quiz::with_max_players(Arc::clone(&def), max_players),
                host_secret: host_secret.clone(),
                player_secrets: Vec::new(),
                last_activity: self.clock.now_ms(),
                log: VecDeque::new(),
                delivered: 0,
            })));
            if let Some(owner) = &limits.owner {
                owners
                    .entry(owner.clone())
                    .or_default()
                    .insert(code.clone());
            }
            return Ok(Creation::Created(CreatedQuiz {
                code,
                host_token: host_secret,
            }));
        }
    }

    async fn definition(&self, code: &JoinCode) -> Result<Option<Arc<QuizDefinition>>> {
        Ok(self
            .entry(code)
            .map(|e| Arc::clone(lock(&e).quiz.definition())))
    }

    async fn join(&self, code: &JoinCode, nickname: &str) -> Result<JoinResult> {
        let result = self.with_quiz(code, Activity::Client, |entry, _, _| {
            match entry.quiz.join(nickname) {
                Ok(id) => {
                    entry.player_secrets.push(new_secret());
                    JoinResult::Joined(Box::new(session(code, entry, id)))
                }
                Err(refused) => JoinResult::Refused(refused),
            }
        });
        Ok(result.unwrap_or(JoinResult::NotFound))
    }

    async fn resume(&self, token: &SessionToken, last_seq: u64) -> Result<ResumeResult> {
        let result = self.with_quiz(&token.code, Activity::Client, |entry, _, _| {
            let id = token.player_id;
            if !entry.quiz.has_player(id)
                || !secrets_match(&entry.player_secrets[(id - 1) as usize], &token.secret)
            {
                return ResumeResult::InvalidToken;
            }
            if entry.quiz.is_removed(id) {
                return ResumeResult::Removed;
            }
            ResumeResult::Resumed {
                session: Box::new(session(&token.code, entry, id)),
                missed: missed(entry, last_seq),
            }
        });
        Ok(result.unwrap_or(ResumeResult::InvalidToken))
    }

    async fn host(
        &self,
        code: &JoinCode,
        token: &str,
        last_seq: Option<u64>,
    ) -> Result<Option<HostSession>> {
        Ok(self
            .with_quiz(code, Activity::Client, |entry, _, _| {
                secrets_match(&entry.host_secret, token).then(|| HostSession {
                    snapshot: entry.quiz.snapshot(None),
                    missed: last_seq.map_or_else(|| Some(Vec::new()), |l| missed(entry, l)),
                })
            })
            .flatten())
    }

    async fn command(&self, code: &JoinCode, cmd: HostCommand) -> Result<Option<CommandOutcome>> {
        Ok(self.with_quiz(code, Activity::Client, |entry, now, out| {
            entry.quiz.command(cmd, now, out)
        }))
    }

    async fn remove(&self, code: &JoinCode, player: PlayerId) -> Result<Option<RemoveOutcome>> {
        Ok(self.with_quiz(code, Activity::Client, |entry, now, out| {
            entry.quiz.remove(player, now, out)
        }))
    }

    async fn answer(
        &self,
        code: &JoinCode,
        player: PlayerId,
        question: u16,
        choice: u8,
    ) -> Result<Option<AnswerOutcome>> {
        Ok(self
            .with_quiz(code, Activity::Client, |entry, now, out| {
                entry
                    .quiz
                    .has_player(player)
                    .then(|| entry.quiz.answer(player, question, choice, now, out))
            })
            .flatten())
    }

    async fn close_if_due(&self, code: &JoinCode, index: u16) -> Result<bool> {
        Ok(self
            .with_quiz(code, Activity::Check, |entry, now, out| {
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
        let published = self.with_quiz(code, Activity::Check, |entry, now, out| {
            entry.quiz.leaderboard_if_due(now, interval, out)
        });
        Ok(match published {
            Some(true) => Tick::Published,
            Some(false) => Tick::TooSoon,
            None => Tick::Gone,
        })
    }

    async fn progress(&self, code: &JoinCode) -> Result<Option<Progress>> {
        Ok(self.entry(code).and_then(|e| lock(&e).quiz.progress()))
    }

    async fn exists(&self, code: &JoinCode) -> Result<bool> {
        Ok(self.quizzes.contains_key(code))
    }

    async fn scores(&self, code: &JoinCode) -> Result<Option<Scores>> {
        Ok(self.entry(code).map(|e| {
            let e = lock(&e);
            Scores {
                seq: e.quiz.seq(),
                desc: e.quiz.scores(),
            }
        }))
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
            let ttl = retention(
                e.quiz.phase(),
                self.config.idle_ttl_ms,
                self.config.ended_ttl_ms,
            );
            let keep = now < e.last_activity + ttl;
            if !keep {
                gone.push(code.clone());
            }
            keep
        });
        Ok(gone)
    }

    fn not_ready_reason(&self) -> Option<String> {
        self.delivery.end().map(|end| end.to_string())
    }

    fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use quizgate_domain::{Event, Question};

    use super::*;
    use crate::{CreateLimits, ManualClock};

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(JoinCode, u64)>>);

    impl Recorder {
        /// The delivered seqs once there are `n` (the delivery task runs when
        /// this test's task yields).
        async fn seqs(&self, n: usize) -> Vec<u64> {
            for _ in 0..1_000 {
                let seqs: Vec<u64> = lock(&self.0).iter().map(|(_, s)| *s).collect();
                if seqs.len() >= n {
                    return seqs;
                }
                tokio::task::yield_now().await;
            }
            panic!("fewer than {n} events delivered")
        }
    }

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

    /// A quiz with no quota to keep.
    async fn created(bp: &MemoryBackplane) -> CreatedQuiz {
        bp.create_quiz(def(), &CreateLimits::unlimited())
            .await
            .expect("create")
            .created()
            .expect("no quota")
    }

    #[tokio::test]
    async fn events_are_logged_and_delivered_in_order() {
        let (bp, sink, clock) = setup(MemoryConfig::default());
        let quiz = created(&bp).await;
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
        assert_eq!(sink.seqs(3).await, [1, 2, 3]);
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
        let quiz = created(&bp).await;
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
        let r = bp.resume(&token, 4).await.expect("resume");
        assert!(
            matches!(r, ResumeResult::Resumed { missed: None, .. }),
            "a last_seq beyond the quiz's seq gets a snapshot: {r:?}"
        );
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let (bp, _, _) = setup(MemoryConfig::default());
        let quiz = created(&bp).await;
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
        assert_eq!(bp.host(&quiz.code, "nope", None).await, Ok(None));
        assert!(
            bp.host(&quiz.code, &quiz.host_token, None)
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
        let idle = created(&bp).await;
        let ended = created(&bp).await;
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
