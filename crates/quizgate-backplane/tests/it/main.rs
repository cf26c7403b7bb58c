//! Conformance: one scenario against the in-process backplane and against a
//! real Redis. The Lua scripts re-implement quizgate-domain's rules; this is
//! what keeps them the same.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use quizgate_backplane::{
    Backplane, EventSink, JoinResult, MemoryBackplane, MemoryConfig, RedisBackplane, RedisConfig,
    ResumeResult, SessionToken, SystemClock,
};
use quizgate_domain::{
    AnswerOutcome, Event, HostCommand, JoinCode, JoinRefused, Question, QuizDefinition, Sequenced,
};
use quizgate_testkit::RedisServer;

#[derive(Default)]
struct Recorder(Mutex<Vec<Sequenced>>);

impl EventSink for Recorder {
    fn deliver(&self, _quiz: &JoinCode, event: Arc<Sequenced>) {
        self.0.lock().expect("lock").push((*event).clone());
    }
}

impl Recorder {
    async fn wait_for(&self, n: usize) -> Result<Vec<Sequenced>> {
        for _ in 0..200 {
            let events = self.0.lock().expect("lock").clone();
            if events.len() >= n {
                return Ok(events);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!(
            "only {} of {n} events arrived",
            self.0.lock().expect("lock").len()
        )
    }
}

fn definition() -> QuizDefinition {
    let q = |correct, limit| Question {
        text: "q".into(),
        choices: vec!["a".into(), "b".into(), "c".into()],
        correct,
        time_limit_ms: limit,
        points: 1000,
    };
    QuizDefinition {
        title: "conformance".into(),
        questions: vec![q(1, 1_000), q(2, 20_000)],
    }
}

/// What happened, without the parts that depend on the exact millisecond.
fn describe_event(e: &Sequenced) -> String {
    let body = match &e.event {
        Event::QuestionStarted {
            index,
            started_ms,
            deadline_ms,
        } => format!("started {index} limit {}", deadline_ms - started_ms),
        Event::QuestionClosed {
            index,
            correct,
            distribution,
            answered,
            reason,
        } => format!(
            "closed {index} correct {correct} {distribution:?} answered {answered} {reason:?}"
        ),
        Event::Leaderboard {
            top,
            players,
            answered,
        } => {
            let top: Vec<(u32, &str, u32)> = top
                .iter()
                .map(|s| (s.player_id, s.nickname.as_str(), s.rank))
                .collect();
            format!("leaderboard {top:?} players {players} answered {answered:?}")
        }
        Event::QuizEnded { top, players } => format!(
            "ended {:?} players {players}",
            top.iter()
                .map(|s| (s.player_id, s.rank))
                .collect::<Vec<_>>()
        ),
    };
    format!("#{} {body}", e.seq)
}

fn describe_answer(a: Option<AnswerOutcome>) -> String {
    match a {
        Some(AnswerOutcome::Accepted(r)) => {
            format!("accepted choice {} scored {}", r.choice, r.points > 0)
        }
        Some(AnswerOutcome::Duplicate(r)) => format!("duplicate choice {}", r.choice),
        other => format!("{other:?}"),
    }
}

async fn scenario(bp: &dyn Backplane, sink: &Recorder) -> Result<Vec<String>> {
    let mut log = Vec::new();
    let quiz = bp.create_quiz(definition()).await?;
    let code = quiz.code.clone();
    bp.subscribe(&code).await?;
    let joined = |r: JoinResult| match r {
        JoinResult::Joined(s) => Ok(*s),
        other => bail!("{other:?}"),
    };
    let ann = joined(bp.join(&code, "Ann").await?)?;
    let bob = joined(bp.join(&code, "bob").await?)?;
    log.push(format!(
        "ids {} {} seq {}",
        ann.player_id, bob.player_id, bob.snapshot.seq
    ));
    log.push(format!("{:?}", bp.join(&code, "ANN").await?));
    assert_eq!(
        bp.join(&code, "ANN").await?,
        JoinResult::Refused(JoinRefused::NicknameTaken)
    );
    log.push(format!(
        "wrong host token {:?}",
        bp.host(&code, "nope").await?.is_some()
    ));
    let host = bp.host(&code, &quiz.host_token).await?.expect("host");
    log.push(format!(
        "host snapshot {:?} players {} top {:?}",
        host.phase,
        host.players,
        host.top
            .iter()
            .map(|s| (s.player_id, s.score, s.rank))
            .collect::<Vec<_>>()
    ));
    log.push(format!(
        "leaderboard after joins {:?}",
        bp.leaderboard_if_due(&code).await?
    ));
    log.push(format!(
        "leaderboard again {:?}",
        bp.leaderboard_if_due(&code).await?
    ));
    log.push(format!(
        "next in lobby {:?}",
        bp.command(&code, HostCommand::Next).await?
    ));
    log.push(format!(
        "start {:?}",
        bp.command(&code, HostCommand::Start).await?
    ));
    log.push(format!(
        "ann q0 {}",
        describe_answer(bp.answer(&code, ann.player_id, 0, 1).await?)
    ));
    log.push(format!(
        "ann q0 again {}",
        describe_answer(bp.answer(&code, ann.player_id, 0, 0).await?)
    ));
    log.push(format!(
        "bob q1 {}",
        describe_answer(bp.answer(&code, bob.player_id, 1, 0).await?)
    ));
    log.push(format!(
        "bob bad choice {}",
        describe_answer(bp.answer(&code, bob.player_id, 0, 7).await?)
    ));
    log.push(format!(
        "unknown player {}",
        describe_answer(bp.answer(&code, 99, 0, 0).await?)
    ));
    log.push(format!(
        "close early {:?}",
        bp.close_if_due(&code, 0).await?
    ));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    log.push(format!(
        "bob late {}",
        describe_answer(bp.answer(&code, bob.player_id, 0, 1).await?)
    ));
    log.push(format!(
        "close {:?} {:?}",
        bp.close_if_due(&code, 0).await?,
        bp.close_if_due(&code, 0).await?
    ));
    log.push(format!(
        "next {:?}",
        bp.command(&code, HostCommand::Next).await?
    ));
    log.push(format!(
        "bob q1 {}",
        describe_answer(bp.answer(&code, bob.player_id, 1, 0).await?)
    ));
    log.push(format!(
        "leaderboard {:?}",
        bp.leaderboard_if_due(&code).await?
    ));
    log.push(format!(
        "skip {:?} skip {:?}",
        bp.command(&code, HostCommand::Skip).await?,
        bp.command(&code, HostCommand::Skip).await?
    ));
    let scores = bp.scores(&code).await?.expect("scores");
    log.push(format!(
        "order {:?}",
        scores.iter().map(|s| s.0).collect::<Vec<_>>()
    ));
    let token = SessionToken::parse(&ann.token).expect("token");
    match bp.resume(&token, 2).await? {
        ResumeResult::Resumed { session, missed } => {
            let you = session.snapshot.you.expect("you");
            assert_eq!(
                you.score,
                scores
                    .iter()
                    .find(|s| s.0 == ann.player_id)
                    .map_or(0, |s| s.1)
            );
            log.push(format!(
                "resume {:?} rank {} missed {:?}",
                session.snapshot.phase,
                you.rank,
                missed.map(|m| m.iter().map(|e| e.seq).collect::<Vec<_>>())
            ));
        }
        other => bail!("{other:?}"),
    }
    let mut forged = token.clone();
    forged.player_id = bob.player_id;
    log.push(format!("forged {:?}", bp.resume(&forged, 0).await?));
    log.push(format!(
        "next (past the last) {:?}",
        bp.command(&code, HostCommand::Next).await?
    ));
    log.push(format!(
        "end again {:?}",
        bp.command(&code, HostCommand::End).await?
    ));
    log.push(format!(
        "join after the end {:?}",
        bp.join(&code, "cy").await?
    ));
    log.push(format!("exists {:?}", bp.exists(&code).await?));
    let events = sink.wait_for(8).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        sink.0.lock().expect("lock").len(),
        8,
        "no event beyond the expected ones"
    );
    log.extend(events.iter().map(describe_event));
    Ok(log)
}

#[tokio::test]
async fn memory_and_redis_backplanes_agree() -> Result<()> {
    let redis = RedisServer::start().await?;
    let memory_sink = Arc::new(Recorder::default());
    let memory = MemoryBackplane::new(
        memory_sink.clone(),
        Arc::new(SystemClock),
        MemoryConfig {
            leaderboard_interval_ms: 250,
            ..MemoryConfig::default()
        },
    );
    let redis_sink = Arc::new(Recorder::default());
    let config = RedisConfig {
        url: redis.url(),
        leaderboard_interval_ms: 250,
        idle_ttl_ms: 3_600_000,
        ended_ttl_ms: 600_000,
        log_capacity: 1_000,
        command_timeout: Duration::from_secs(2),
    };
    let on_redis = RedisBackplane::connect(config, redis_sink.clone()).await?;
    let (a, b) = tokio::join!(
        scenario(&memory, &memory_sink),
        scenario(&on_redis, &redis_sink)
    );
    let (a, b) = (a?, b?);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "line {i}\nmemory: {a:#?}\nredis: {b:#?}");
    }
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter()
            .any(|l| l.contains("QuestionClosed") || l.contains("closed 0")),
        "{a:#?}"
    );
    Ok(())
}
