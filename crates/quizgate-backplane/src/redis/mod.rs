//! The cluster backplane: Redis holds every quiz; Lua scripts apply the rules
//! atomically with Redis's clock; each quiz's events go to a Redis Stream (the
//! log, for resume and gap filling) and to a Pub/Sub channel (the live path).
//!
//! Pub/Sub is at most once. The subscriber therefore tracks, per subscribed
//! quiz, the last sequence number it delivered: a jump fills the gap from the
//! log, a repeat is dropped, and after a reconnect or a lag every subscribed
//! quiz is resynchronised from the log. Delivery to the sink stays gapless and
//! in order whatever Redis does, as long as the log still holds the events.

mod keys;
mod subscriber;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::RespVersion;
use fred::types::scripts::Script;
use quizgate_domain::{
    AnswerOutcome, AnswerRecord, CommandOutcome, HostCommand, JoinCode, JoinRefused, MAX_PLAYERS,
    Millis, PlayerId, QuizDefinition, QuizSnapshot, Sequenced,
};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::keys::QuizKeys;
use crate::token::{new_code, new_secret};
use crate::{
    Backplane, BackplaneError, Clock, CreatedQuiz, EventSink, JoinResult, Result, ResumeResult,
    Session, SessionToken, SystemClock, Tick,
};

const PRELUDE: &str = include_str!("prelude.lua");

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port` for one Redis; `redis-cluster://host:port?node=host:port&…`
    /// for Redis Cluster (sharded Pub/Sub).
    pub url: String,
    pub leaderboard_interval_ms: Millis,
    pub idle_ttl_ms: Millis,
    pub ended_ttl_ms: Millis,
    /// Events kept per quiz in its log (a Redis Stream, trimmed approximately).
    pub log_capacity: usize,
    /// Each Redis command fails after this long (the client then gets `unavailable`).
    pub command_timeout: Duration,
}

struct Scripts {
    create: Script,
    join: Script,
    resume: Script,
    host: Script,
    command: Script,
    answer: Script,
    close: Script,
    leaderboard: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::from_lua(format!("{PRELUDE}\n{body}"));
        Self {
            create: s(include_str!("create.lua")),
            join: s(include_str!("join.lua")),
            resume: s(include_str!("resume.lua")),
            host: s(include_str!("host.lua")),
            command: s(include_str!("command.lua")),
            answer: s(include_str!("answer.lua")),
            close: s(include_str!("close.lua")),
            leaderboard: s(include_str!("leaderboard.lua")),
        }
    }
}

/// Shared between the backplane and its subscriber task.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) clustered: bool,
    /// Subscribed quizzes and the last sequence number delivered for each
    /// (`None` until the first event or the subscription's starting point).
    pub(crate) delivered: Mutex<HashMap<JoinCode, Option<u64>>>,
}

impl Shared {
    /// The subscribed quizzes and their last delivered sequence numbers. The
    /// lock is never held across an await, so a poisoned one is still consistent.
    pub(crate) fn delivered(&self) -> std::sync::MutexGuard<'_, HashMap<JoinCode, Option<u64>>> {
        self.delivered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct RedisBackplane {
    shared: Arc<Shared>,
    scripts: Scripts,
    config: RedisConfig,
    clock: SystemClock,
    _stop: DropGuard,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("config", &self.config)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Unavailable(e.to_string())
}

fn corrupt(what: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Corrupt(what.to_string())
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
            delivered: Mutex::new(HashMap::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(subscriber::run(Arc::clone(&shared), stop.clone()));
        Ok(Self {
            shared,
            scripts: Scripts::new(),
            config,
            clock: SystemClock,
            _stop: stop.drop_guard(),
        })
    }

    fn keys(&self, code: &JoinCode) -> QuizKeys {
        QuizKeys::new(code)
    }

    /// Runs a script with the quiz's keys and the common arguments first.
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

fn strings(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => vec![other],
    }
}

fn text(v: &Value) -> Result<String> {
    v.as_string()
        .ok_or_else(|| corrupt(format!("expected a string, got {v:?}")))
}

fn snapshot(v: &Value) -> Result<QuizSnapshot> {
    serde_json::from_str(&text(v)?).map_err(|e| corrupt(format!("snapshot: {e}")))
}

fn record(v: &Value) -> Result<AnswerRecord> {
    let raw = text(v)?;
    let mut parts = raw.split(':').map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(choice)), Some(Ok(points)), Some(Ok(total))) => Ok(AnswerRecord {
            choice: choice as u8,
            points: points as u32,
            total,
        }),
        _ => Err(corrupt(format!("answer record {raw:?}"))),
    }
}

pub(crate) fn parse_event(raw: &[u8]) -> Result<Sequenced> {
    serde_json::from_slice(raw).map_err(|e| corrupt(format!("event: {e}")))
}

#[async_trait]
impl Backplane for RedisBackplane {
    async fn create_quiz(&self, def: QuizDefinition) -> Result<CreatedQuiz> {
        let json = serde_json::to_string(&def).map_err(corrupt)?;
        // Bounded: a collision among ~595 million codes is rare; eight in a row is a fault.
        for _ in 0..8 {
            let code = new_code();
            let host = new_secret();
            let created: i64 = self
                .eval(
                    &self.scripts.create,
                    &code,
                    vec![
                        json.clone().into(),
                        host.clone().into(),
                        (def.questions.len() as i64).into(),
                    ],
                )
                .await?;
            if created == 1 {
                return Ok(CreatedQuiz {
                    code,
                    host_token: host,
                });
            }
        }
        Err(BackplaneError::Unavailable(
            "no free join code found".into(),
        ))
    }

    async fn definition(&self, code: &JoinCode) -> Result<Option<Arc<QuizDefinition>>> {
        let raw: Option<String> = self
            .shared
            .client
            .get(self.keys(code).def)
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
        let reply: Value = self
            .eval(
                &self.scripts.join,
                code,
                vec![
                    nickname.into(),
                    key.into(),
                    secret.clone().into(),
                    i64::from(MAX_PLAYERS).into(),
                ],
            )
            .await?;
        let items = strings(reply);
        Ok(match text(&items[0])?.as_str() {
            "ok" => {
                let player_id = items
                    .get(1)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| corrupt("join: player id"))?
                    as PlayerId;
                let snapshot = snapshot(items.get(2).ok_or_else(|| corrupt("join: snapshot"))?)?;
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
                    snapshot,
                }))
            }
            "taken" => JoinResult::Refused(JoinRefused::NicknameTaken),
            "ended" => JoinResult::Refused(JoinRefused::QuizEnded),
            "full" => JoinResult::Refused(JoinRefused::QuizFull),
            _ => JoinResult::NotFound,
        })
    }

    async fn resume(&self, token: &SessionToken, last_seq: u64) -> Result<ResumeResult> {
        let args = vec![
            i64::from(token.player_id).into(),
            token.secret.clone().into(),
            (last_seq as i64).into(),
        ];
        let items = strings(self.eval(&self.scripts.resume, &token.code, args).await?);
        if text(&items[0])? != "ok" {
            return Ok(ResumeResult::InvalidToken);
        }
        let snapshot = snapshot(items.get(1).ok_or_else(|| corrupt("resume: snapshot"))?)?;
        let filled = items.get(2).and_then(Value::as_i64) == Some(1);
        let missed = if filled {
            let mut events = Vec::with_capacity(items.len().saturating_sub(3));
            for v in &items[3..] {
                events.push(Arc::new(parse_event(text(v)?.as_bytes())?));
            }
            Some(events)
        } else {
            None
        };
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

    async fn host(&self, code: &JoinCode, token: &str) -> Result<Option<QuizSnapshot>> {
        let items = strings(
            self.eval(&self.scripts.host, code, vec![token.into()])
                .await?,
        );
        if text(&items[0])? != "ok" {
            return Ok(None);
        }
        snapshot(items.get(1).ok_or_else(|| corrupt("host: snapshot"))?).map(Some)
    }

    async fn command(&self, code: &JoinCode, cmd: HostCommand) -> Result<Option<CommandOutcome>> {
        let name = match cmd {
            HostCommand::Start => "start",
            HostCommand::Next => "next",
            HostCommand::Skip => "skip",
            HostCommand::End => "end",
        };
        let reply: String = self
            .eval(&self.scripts.command, code, vec![name.into()])
            .await?;
        Ok(match reply.as_str() {
            "done" => Some(CommandOutcome::Done),
            "wrong_phase" => Some(CommandOutcome::WrongPhase),
            _ => None,
        })
    }

    async fn answer(
        &self,
        code: &JoinCode,
        player: PlayerId,
        question: u16,
        choice: u8,
    ) -> Result<Option<AnswerOutcome>> {
        let args = vec![
            i64::from(player).into(),
            i64::from(question).into(),
            i64::from(choice).into(),
        ];
        let items = strings(self.eval(&self.scripts.answer, code, args).await?);
        let rec = || {
            items
                .get(1)
                .ok_or_else(|| corrupt("answer: record"))
                .and_then(record)
        };
        Ok(Some(match text(&items[0])?.as_str() {
            "accepted" => AnswerOutcome::Accepted(rec()?),
            "duplicate" => AnswerOutcome::Duplicate(rec()?),
            "late" => AnswerOutcome::Late,
            "wrong_phase" => AnswerOutcome::WrongPhase,
            "invalid_choice" => AnswerOutcome::InvalidChoice,
            _ => return Ok(None),
        }))
    }

    async fn close_if_due(&self, code: &JoinCode, index: u16) -> Result<bool> {
        let closed: i64 = self
            .eval(&self.scripts.close, code, vec![i64::from(index).into()])
            .await?;
        Ok(closed == 1)
    }

    async fn leaderboard_if_due(&self, code: &JoinCode) -> Result<Tick> {
        let reply: String = self.eval(&self.scripts.leaderboard, code, vec![]).await?;
        Ok(match reply.as_str() {
            "published" => Tick::Published,
            "soon" => Tick::TooSoon,
            "gone" => Tick::Gone,
            _ => Tick::Nothing,
        })
    }

    async fn exists(&self, code: &JoinCode) -> Result<bool> {
        self.shared
            .client
            .exists(self.keys(code).meta)
            .await
            .map_err(unavailable)
    }

    async fn scores(&self, code: &JoinCode) -> Result<Option<Vec<(PlayerId, u64)>>> {
        let keys = self.keys(code);
        let raw: Vec<(String, f64)> = self
            .shared
            .client
            .zrange(keys.scores, 0, -1, None, false, None, true)
            .await
            .map_err(unavailable)?;
        if raw.is_empty()
            && !self
                .shared
                .client
                .exists::<bool, _>(keys.meta)
                .await
                .map_err(unavailable)?
        {
            return Ok(None);
        }
        raw.into_iter()
            .map(|(member, score)| {
                member
                    .parse::<PlayerId>()
                    .map(|id| (id, (-score) as u64))
                    .map_err(|_| corrupt(format!("score member {member:?}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    async fn subscribe(&self, code: &JoinCode) -> Result<()> {
        subscriber::subscribe(&self.shared, code).await
    }

    async fn unsubscribe(&self, code: &JoinCode) -> Result<()> {
        subscriber::unsubscribe(&self.shared, code).await
    }

    async fn expire(&self) -> Result<Vec<JoinCode>> {
        // Keys carry their own TTLs; the gateway notices vanished quizzes.
        Ok(Vec::new())
    }

    fn is_ready(&self) -> bool {
        self.shared.client.is_connected() && self.shared.subscriber.is_connected()
    }

    fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }
}
