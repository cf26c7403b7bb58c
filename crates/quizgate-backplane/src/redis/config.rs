//! How a node reaches Redis and the quiz settings its scripts are given.

use std::sync::Arc;
use std::time::Duration;

use quizgate_domain::Millis;

use crate::Clock;

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
    /// Most players one quiz admits.
    pub max_players: u32,
    /// The clock that decides. `None` (the default, and the only sane setting in a
    /// cluster) is Redis's own `TIME`; tests pass a manual clock, whose time
    /// every script then uses instead.
    pub clock: Option<Arc<dyn Clock>>,
}

impl RedisConfig {
    /// The URL, the embedded store's defaults for the quiz settings, a 2 s
    /// command timeout and Redis's own clock.
    pub fn new(url: impl Into<String>) -> Self {
        let quiz = crate::MemoryConfig::default();
        Self {
            url: url.into(),
            leaderboard_interval_ms: quiz.leaderboard_interval_ms,
            idle_ttl_ms: quiz.idle_ttl_ms,
            ended_ttl_ms: quiz.ended_ttl_ms,
            log_capacity: quiz.log_capacity,
            command_timeout: Duration::from_secs(2),
            max_players: quiz.max_players,
            clock: None,
        }
    }
}
