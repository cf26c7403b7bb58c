//! The cluster backplane: Redis holds every quiz; Lua scripts apply the rules
//! atomically with Redis's clock; each quiz's events go to a Redis Stream (the
//! log, for resume and gap filling) and to a Pub/Sub channel (the live path).
//!
//! Pub/Sub is at most once. The subscriber therefore tracks, per subscribed
//! quiz, the last sequence number it delivered: a jump fills the gap from the
//! log, a repeat is dropped, and after a reconnect or a lag every subscribed
//! quiz is resynchronised from the log. Delivery to the sink stays gapless and
//! in order whatever Redis does, as long as the log still holds the events.

mod batch;
mod config;
mod keys;
mod reply;
mod scripts;
mod subscriber;

pub use self::config::RedisConfig;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::RespVersion;
use fred::types::scripts::Script;
use quizgate_domain::{
    AnswerOutcome, CommandOutcome, HostCommand, JoinCode, JoinRefused, LEADERBOARD_DELIVERY_BUDGET,
    LEADERBOARD_SIZE, Millis, PlayerId, Progress, QuestionProgress, QuizDefinition, RemoveOutcome,
};

use self::keys::QuizKeys;
use self::reply::{Reply, corrupt};
use self::scripts::Scripts;
use crate::delivery::Supervised;
use crate::token::{new_code, new_secret};
use crate::{
    Backplane, BackplaneError, Clock, CreateLimits, CreatedQuiz, Creation, DeliveryStats,
    EventSink, HostSession, JoinResult, Result, ResumeResult, Scores, Session, SessionToken,
    SystemClock, Tick,
};

/// Shared between the backplane and its subscriber task.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) clustered: bool,
    /// Subscribed quizzes and where the delivery of each stands.
    pub(crate) streams: Mutex<HashMap<JoinCode, subscriber::Stream>>,
    /// Counts for [`Backplane::delivery_stats`].
    pub(crate) messages: AtomicU64,
    pub(crate) gap_fills: AtomicU64,
    pub(crate) resyncs: AtomicU64,
}

impl Shared {
    /// The subscribed quizzes. The lock is never held across an await, so a
    /// poisoned one is still consistent.
    pub(crate) fn streams(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<JoinCode, subscriber::Stream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct RedisBackplane {
    core: Arc<Core>,
    subscriber: Supervised,
}

/// What the backplane's calls and its answer flushers share.
pub(crate) struct Core {
    shared: Arc<Shared>,
    scripts: Scripts,
    config: RedisConfig,
    answers: batch::Answers,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("config", &self.core.config)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Unavailable(e.to_string())
}

// === impl RedisBackplane ===

impl RedisBackplane {
    /// Connects both clients (commands and Pub/Sub) and starts the subscriber.
    /// Fails if Redis cannot be reached within `command_timeout`.
    pub async fn connect(config: RedisConfig, sink: Arc<dyn EventSink>) -> Result<Self> {
        let fred_config = Config {
            version: RespVersion::RESP3,
            ..Config::from_url(&config.url).map_err(unavailable)?
        };
        let clustered = fred_config.server.is_clustered();
        let timeout = config.command_timeout;
        let mut builder = Builder::from_config(fred_config);
        builder
            // Reconnect forever: 100 ms doubling to 2 s between attempts.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .with_performance_config(|perf| {
                perf.default_command_timeout = timeout;
                // fred's Pub/Sub channel is a tokio broadcast: a burst larger than
                // its capacity is lost (and then resynchronised from the log).
                perf.broadcast_channel_capacity = 16_384;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = timeout;
                conn.internal_command_timeout = timeout;
                conn.max_command_attempts = 1;
                // A half-open socket is noticed and replaced.
                conn.unresponsive = fred::types::config::UnresponsiveConfig {
                    max_timeout: Some(Duration::from_secs(5)),
                    interval: Duration::from_secs(1),
                };
                conn.tcp = fred::types::config::TcpConfig {
                    nodelay: Some(true),
                    ..Default::default()
                };
            });
        let client = builder.build().map_err(unavailable)?;
        let subscriber = builder.build_subscriber_client().map_err(unavailable)?;
        for c in [&client as &dyn ClientLikeDyn, &subscriber] {
            c.start().await?;
        }
        let shared = Arc::new(Shared {
            client,
            subscriber,
            sink,
            clustered,
            streams: Mutex::new(HashMap::new()),
            messages: AtomicU64::new(0),
            gap_fills: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        });
        let subscriber = Supervised::spawn("redis subscriber", {
            let shared = Arc::clone(&shared);
            move |stop| subscriber::run(shared, stop)
        });
        Ok(Self {
            core: Arc::new(Core {
                shared,
                scripts: Scripts::new(),
                config,
                answers: batch::Answers::default(),
            }),
            subscriber,
        })
    }

    /// Judges a batch of answers to one quiz in one script call, in order, as
    /// if they came one after the other at the same instant. `None` for the
    /// whole batch if the quiz does not exist, for one answer if its player
    /// does not. This is the group commit's one call (see `batch.rs`); it is
    /// public for the differential test.
    pub async fn answer_batch(
        &self,
        code: &JoinCode,
        answers: &[(PlayerId, u16, u8)],
    ) -> Result<Option<Vec<Option<AnswerOutcome>>>> {
        let untraced: Vec<_> = answers.iter().map(|&a| (a, None)).collect();
        self.core.answer_batch(code, &untraced).await
    }
}

/// An owner's quiz codes, each scored with when it was reserved, counted
/// against its quota. Not in any quiz's hash slot: read and written on its
/// own, never in a script.
fn owner_key(owner: &str) -> String {
    format!("qg:owner:{owner}")
}

/// Owner sets outlive their newest quiz by this much, then go.
const OWNER_TTL_MS: i64 = 24 * 3600 * 1000;

/// A reserved code with no quiz yet is counted for this long: its creation
/// may still be on its way (on this node or another).
const RESERVATION_GRACE_MS: Millis = 30_000;

impl Core {
    fn now_ms(&self) -> Millis {
        match &self.config.clock {
            Some(clock) => clock.now_ms(),
            None => SystemClock.now_ms(),
        }
    }

    /// Takes one of the owner's `limit` places for `code`: `false` if every
    /// place is held by a live quiz or a creation under way. The set is
    /// pruned of ended and expired quizzes only when it looks full, so the
    /// usual creation costs one round trip. Creations racing for the last
    /// place may all be refused, never all admitted.
    async fn reserve(&self, key: &str, code: &JoinCode, limit: u32) -> Result<bool> {
        let client = &self.shared.client;
        let now = self.now_ms();
        let pipe = client.pipeline();
        let _: () = pipe
            .zadd(key, None, None, false, false, (now as f64, code.as_str()))
            .await
            .map_err(unavailable)?;
        let _: () = pipe
            .pexpire(key, OWNER_TTL_MS, None)
            .await
            .map_err(unavailable)?;
        let _: () = pipe.zcard(key).await.map_err(unavailable)?;
        let (_, _, held): (i64, i64, u64) = pipe.all().await.map_err(unavailable)?;
        if held <= u64::from(limit) {
            return Ok(true);
        }
        let members: Vec<(String, f64)> = client
            .zrange(key, 0, -1, None, false, None, true)
            .await
            .map_err(unavailable)?;
        let others: Vec<(JoinCode, Millis)> = members
            .iter()
            .filter_map(|(c, at)| Some((JoinCode::parse(c).ok()?, *at as Millis)))
            .filter(|(c, _)| c != code)
            .collect();
        // One round trip; in a cluster fred sends each read to its quiz's node.
        let pipe = client.pipeline();
        for (other, _) in &others {
            let _: () = pipe
                .hget(QuizKeys::new(other).meta, "phase")
                .await
                .map_err(unavailable)?;
        }
        let phases: Vec<Value> = if others.is_empty() {
            Vec::new()
        } else {
            pipe.all().await.map_err(unavailable)?
        };
        let gone: Vec<&str> = others
            .iter()
            .zip(&phases)
            .filter(|((_, at), phase)| match phase.as_str() {
                Some(phase) => phase == "ended",
                None => now.saturating_sub(*at) > RESERVATION_GRACE_MS,
            })
            .map(|((c, _), _)| c.as_str())
            .collect();
        if !gone.is_empty() {
            let _: i64 = client.zrem(key, gone.clone()).await.map_err(unavailable)?;
        }
        // The others still live or on their way, and this one.
        if others.len() - gone.len() < limit as usize {
            return Ok(true);
        }
        self.release(key, code).await;
        Ok(false)
    }

    /// Gives back a place taken by [`Core::reserve`]; if Redis cannot be
    /// reached, a later pruning finds the code never became a quiz.
    async fn release(&self, key: &str, code: &JoinCode) {
        let removed: std::result::Result<i64, _> =
            self.shared.client.zrem(key, code.as_str()).await;
        if let Err(e) = removed {
            tracing::warn!(error = %e, "could not release a quota place");
        }
    }

    /// Each answer with the trace it is part of, if traced.
    async fn answer_batch(
        &self,
        code: &JoinCode,
        answers: &[(batch::Answer, Option<String>)],
    ) -> Result<Option<Vec<Option<AnswerOutcome>>>> {
        let mut args: Vec<Value> = Vec::with_capacity(1 + 4 * answers.len());
        args.push((answers.len() as i64).into());
        for ((player, question, choice), trace) in answers {
            args.push(i64::from(*player).into());
            args.push(i64::from(*question).into());
            args.push(i64::from(*choice).into());
            args.push(trace.clone().unwrap_or_default().into());
        }
        let raw = self.eval(&self.scripts.answers, code, args).await?;
        Reply::new("answers", raw)?.answers(answers.len())
    }

    fn keys(&self, code: &JoinCode) -> QuizKeys {
        QuizKeys::new(code)
    }

    /// Runs a script with the quiz's keys and the common arguments first
    /// (their order is documented in `prelude.lua`).
    async fn eval<R: FromValue>(
        &self,
        script: &Script,
        code: &JoinCode,
        args: Vec<Value>,
    ) -> Result<R> {
        let keys = self.keys(code);
        let mut all: Vec<Value> = vec![
            keys.channel.clone().into(),
            (if self.shared.clustered {
                "SPUBLISH"
            } else {
                "PUBLISH"
            })
            .into(),
            (self.config.log_capacity as i64).into(),
            (self.config.idle_ttl_ms as i64).into(),
            (self.config.ended_ttl_ms as i64).into(),
            (self.config.leaderboard_interval_ms as i64).into(),
            self.config
                .clock
                .as_ref()
                .map_or_else(String::new, |c| c.now_ms().to_string())
                .into(),
            i64::from(self.config.max_players).into(),
            (LEADERBOARD_SIZE as i64).into(),
            (LEADERBOARD_DELIVERY_BUDGET as i64).into(),
            crate::current_trace().unwrap_or_default().into(),
        ];
        all.extend(args);
        script
            .evalsha_with_reload(&self.shared.client, keys.all(), all)
            .await
            .map_err(unavailable)
    }
}

/// `ClientLike` is not object safe; this is the one thing we need of both clients.
#[async_trait]
trait ClientLikeDyn: Send + Sync {
    async fn start(&self) -> Result<()>;
}

#[async_trait]
impl<C: ClientLike + Send + Sync> ClientLikeDyn for C {
    async fn start(&self) -> Result<()> {
        let _connection = self.init().await.map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl Backplane for RedisBackplane {
    async fn create_quiz(&self, def: QuizDefinition, limits: &CreateLimits) -> Result<Creation> {
        let json = serde_json::to_string(&def).map_err(corrupt)?;
        let owner = limits.owner.as_deref().map(owner_key);
        // Bounded: a collision among ~595 million codes is rare; eight in a row is a fault.
        for _ in 0..8 {
            let code = new_code();
            if let Some(key) = &owner
                && !self.core.reserve(key, &code, limits.live_quizzes).await?
            {
                return Ok(Creation::OverQuota);
            }
            let host = new_secret();
            let created = self
                .core
                .eval::<i64>(
                    &self.core.scripts.create,
                    &code,
                    vec![
                        json.clone().into(),
                        host.clone().into(),
                        (def.questions.len() as i64).into(),
                        i64::from(limits.max_players.min(self.core.config.max_players)).into(),
                    ],
                )
                .await;
            if !matches!(created, Ok(1))
                && let Some(key) = &owner
            {
                self.core.release(key, &code).await;
            }
            match created? {
                1 => {
                    return Ok(Creation::Created(CreatedQuiz {
                        code,
                        host_token: host,
                    }));
                }
                0 => continue,
                other => return Err(corrupt(format!("create: unknown reply {other}"))),
            }
        }
        Err(BackplaneError::Unavailable(
            "no free join code found".into(),
        ))
    }

    async fn definition(&self, code: &JoinCode) -> Result<Option<Arc<QuizDefinition>>> {
        let raw: Option<String> = self
            .core
            .shared
            .client
            .get(self.core.keys(code).def)
            .await
            .map_err(unavailable)?;
        raw.map(|json| {
            serde_json::from_str(&json)
                .map(Arc::new)
                .map_err(|e| corrupt(format!("definition: {e}")))
        })
        .transpose()
    }

    async fn join(&self, code: &JoinCode, nickname: &str) -> Result<JoinResult> {
        let secret = new_secret();
        let key = quizgate_domain::nickname_key(nickname);
        let args = vec![nickname.into(), key.into(), secret.clone().into()];
        let reply = Reply::new(
            "join",
            self.core.eval(&self.core.scripts.join, code, args).await?,
        )?;
        Ok(match reply.tag()?.as_str() {
            "ok" => {
                let player_id = PlayerId::try_from(reply.int(1)?)
                    .map_err(|_| corrupt("join: player id out of range"))?;
                let token = SessionToken {
                    code: code.clone(),
                    player_id,
                    secret,
                }
                .to_string();
                JoinResult::Joined(Box::new(Session {
                    code: code.clone(),
                    player_id,
                    token,
                    snapshot: reply.snapshot(2)?,
                }))
            }
            "taken" => JoinResult::Refused(JoinRefused::NicknameTaken),
            "ended" => JoinResult::Refused(JoinRefused::QuizEnded),
            "locked" => JoinResult::Refused(JoinRefused::Locked),
            "full" => JoinResult::Refused(JoinRefused::QuizFull),
            "not_found" => JoinResult::NotFound,
            _ => return reply.unknown(),
        })
    }

    async fn resume(&self, token: &SessionToken, last_seq: u64) -> Result<ResumeResult> {
        let args = vec![
            i64::from(token.player_id).into(),
            token.secret.clone().into(),
            // As text: a u64 beyond i64 must still compare as larger than any seq.
            last_seq.to_string().into(),
        ];
        let reply = Reply::new(
            "resume",
            self.core
                .eval(&self.core.scripts.resume, &token.code, args)
                .await?,
        )?;
        match reply.tag()?.as_str() {
            "ok" => {
                let (snapshot, missed) = reply.welcome()?;
                let session = Session {
                    code: token.code.clone(),
                    player_id: token.player_id,
                    token: token.to_string(),
                    snapshot,
                };
                Ok(ResumeResult::Resumed {
                    session: Box::new(session),
                    missed,
                })
            }
            "invalid" => Ok(ResumeResult::InvalidToken),
            "removed" => Ok(ResumeResult::Removed),
            _ => reply.unknown(),
        }
    }

    async fn host(
        &self,
        code: &JoinCode,
        token: &str,
        last_seq: Option<u64>,
    ) -> Result<Option<HostSession>> {
        let last = last_seq.map_or_else(String::new, |l| l.to_string());
        let reply = Reply::new(
            "host",
            self.core
                .eval(
                    &self.core.scripts.host,
                    code,
                    vec![token.into(), last.into()],
                )
                .await?,
        )?;
        match reply.tag()?.as_str() {
            "ok" => {
                let (snapshot, missed) = reply.welcome()?;
                Ok(Some(HostSession { snapshot, missed }))
            }
            "invalid" | "not_found" => Ok(None),
            _ => reply.unknown(),
        }
    }

    async fn command(&self, code: &JoinCode, cmd: HostCommand) -> Result<Option<CommandOutcome>> {
        let name = match cmd {
            HostCommand::Start => "start",
            HostCommand::Next => "next",
            HostCommand::Skip => "skip",
            HostCommand::End => "end",
            HostCommand::Lock => "lock",
            HostCommand::Unlock => "unlock",
        };
        let reply: String = self
            .core
            .eval(&self.core.scripts.command, code, vec![name.into()])
            .await?;
        match reply.as_str() {
            "done" => Ok(Some(CommandOutcome::Done)),
            "wrong_phase" => Ok(Some(CommandOutcome::WrongPhase)),
            "not_found" => Ok(None),
            other => Err(corrupt(format!("command: unknown reply {other:?}"))),
        }
    }

    async fn remove(&self, code: &JoinCode, player: PlayerId) -> Result<Option<RemoveOutcome>> {
        let reply: String = self
            .core
            .eval(
                &self.core.scripts.remove,
                code,
                vec![i64::from(player).into()],
            )
            .await?;
        match reply.as_str() {
            "done" => Ok(Some(RemoveOutcome::Done)),
            "wrong_phase" => Ok(Some(RemoveOutcome::WrongPhase)),
            "no_such_player" => Ok(Some(RemoveOutcome::NoSuchPlayer)),
            "not_found" => Ok(None),
            other => Err(corrupt(format!("remove: unknown reply {other:?}"))),
        }
    }

    async fn answer(
        &self,
        code: &JoinCode,
        player: PlayerId,
        question: u16,
        choice: u8,
    ) -> Result<Option<AnswerOutcome>> {
        batch::submit(&self.core, code, (player, question, choice)).await
    }

    async fn close_if_due(&self, code: &JoinCode, index: u16) -> Result<bool> {
        let closed: i64 = self
            .core
            .eval(
                &self.core.scripts.close,
                code,
                vec![i64::from(index).into()],
            )
            .await?;
        match closed {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(corrupt(format!("close: unknown reply {other}"))),
        }
    }

    async fn leaderboard_if_due(&self, code: &JoinCode) -> Result<Tick> {
        let reply: String = self
            .core
            .eval(&self.core.scripts.leaderboard, code, vec![])
            .await?;
        match reply.as_str() {
            "published" => Ok(Tick::Published),
            "soon" => Ok(Tick::TooSoon),
            "clean" => Ok(Tick::Nothing),
            "gone" => Ok(Tick::Gone),
            other => Err(corrupt(format!("leaderboard: unknown reply {other:?}"))),
        }
    }

    async fn progress(&self, code: &JoinCode) -> Result<Option<Progress>> {
        let m: Vec<Option<String>> = self
            .core
            .shared
            .client
            .hmget(
                self.core.keys(code).meta,
                vec!["phase", "players", "cur", "answered", "removed"],
            )
            .await
            .map_err(unavailable)?;
        let field = |i: usize| m.get(i).cloned().flatten();
        let num = |i: usize, what: &str| -> Result<u32> {
            field(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| corrupt(format!("progress: {what}")))
        };
        let phase = field(0);
        if matches!(phase.as_deref(), None | Some("ended")) {
            return Ok(None);
        }
        let question = if phase.as_deref() == Some("question") {
            Some(QuestionProgress {
                index: u16::try_from(num(2, "cur")?).map_err(|_| corrupt("progress: cur"))?,
                answered: num(3, "answered")?,
            })
        } else {
            None
        };
        let removed = field(4).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        Ok(Some(Progress {
            players: num(1, "players")?.saturating_sub(removed),
            question,
        }))
    }

    async fn exists(&self, code: &JoinCode) -> Result<bool> {
        self.core
            .shared
            .client
            .exists(self.core.keys(code).meta)
            .await
            .map_err(unavailable)
    }

    async fn scores(&self, code: &JoinCode) -> Result<Option<Scores>> {
        let reply = Reply::new(
            "scores",
            self.core
                .eval(&self.core.scripts.scores, code, vec![])
                .await?,
        )?;
        match reply.tag()?.as_str() {
            "ok" => {
                let (seq, desc) = reply.scores()?;
                Ok(Some(Scores { seq, desc }))
            }
            "not_found" => Ok(None),
            _ => reply.unknown(),
        }
    }

    fn delivery_stats(&self) -> DeliveryStats {
        let s = &self.core.shared;
        DeliveryStats {
            messages: s.messages.load(Ordering::Relaxed),
            gap_fills: s.gap_fills.load(Ordering::Relaxed),
            resyncs: s.resyncs.load(Ordering::Relaxed),
        }
    }

    async fn claim_seat(&self, code: &JoinCode, player: PlayerId, claim: u64) -> Result<()> {
        // On the quiz's own channel, beside its events, so that it reaches
        // exactly the nodes with members there, in one order for all.
        let shared = &self.core.shared;
        let channel = QuizKeys::new(code).channel;
        let notice = subscriber::claim_notice(player, claim);
        let sent: std::result::Result<i64, _> = if shared.clustered {
            shared.client.spublish(channel, notice).await
        } else {
            shared.client.publish(channel, notice).await
        };
        sent.map(|_| ()).map_err(unavailable)
    }

    async fn subscribe(&self, code: &JoinCode) -> Result<()> {
        subscriber::subscribe(&self.core.shared, code).await
    }

    async fn unsubscribe(&self, code: &JoinCode) -> Result<()> {
        subscriber::unsubscribe(&self.core.shared, code).await
    }

    async fn expire(&self) -> Result<Vec<JoinCode>> {
        // Keys carry their own TTLs; the gateway notices vanished quizzes.
        Ok(Vec::new())
    }

    fn not_ready_reason(&self) -> Option<String> {
        if let Some(end) = self.subscriber.end() {
            Some(format!("redis subscriber ended: {end}"))
        } else if !self.core.shared.client.is_connected() {
            Some("redis command connection down".into())
        } else if !self.core.shared.subscriber.is_connected() {
            Some("redis subscriber connection down".into())
        } else {
            None
        }
    }

    fn now_ms(&self) -> Millis {
        self.core.now_ms()
    }
}
