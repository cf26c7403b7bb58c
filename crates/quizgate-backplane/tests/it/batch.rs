//! Group commit on Redis: answers that arrive while a call for their quiz is in
//! flight go together in the next call, and each caller still gets its own
//! outcome, in the order the domain would judge them.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::future::join_all;
use quizgate_backplane::{Backplane, CreateLimits, JoinResult, RedisBackplane, RedisConfig};
use quizgate_domain::{AnswerOutcome, HostCommand};
use quizgate_testkit::RedisServer;

use crate::recorder::Recorder;

const PLAYERS: u32 = 300;

/// How many `EVALSHA` calls Redis has served.
async fn evalsha_calls(server: &RedisServer) -> Result<u64> {
    let stats = server.cli(&["INFO", "commandstats"]).await?;
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .context("no evalsha stats")?;
    let calls = line
        .split("calls=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .context("no calls= field")?;
    Ok(calls.parse()?)
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_answers_share_script_calls_and_each_gets_its_outcome() -> Result<()> {
    let server = RedisServer::start_ephemeral().await?;
    let bp = RedisBackplane::connect(
        RedisConfig::new(server.url()),
        Arc::new(Recorder::default()),
    )
    .await?;
    let code = bp
        .create_quiz(crate::one_question("batch"), &CreateLimits::unlimited())
        .await?
        .created()
        .expect("no quota")
        .code;
    for i in 0..PLAYERS {
        let JoinResult::Joined(_) = bp.join(&code, &format!("p{i}")).await? else {
            anyhow::bail!("p{i} not joined");
        };
    }
    bp.command(&code, HostCommand::Start).await?;
    let before = evalsha_calls(&server).await?;

    // Every player answers at once, player 7 twice; one answer is to a
    // question not asked yet.
    let mut answers: Vec<(u32, u16, u8)> = (1..=PLAYERS).map(|p| (p, 0, (p % 2) as u8)).collect();
    answers.insert(10, (7, 0, 0));
    answers.push((1, 1, 0));
    let outcomes = join_all(answers.iter().map(|&(p, q, c)| bp.answer(&code, p, q, c))).await;
    let calls = evalsha_calls(&server).await? - before;

    let mut accepted = 0;
    for (&(p, q, c), outcome) in answers.iter().zip(&outcomes) {
        match outcome.as_ref().map_err(|e| anyhow::anyhow!("{e}"))? {
            Some(AnswerOutcome::Accepted(r)) => {
                assert_eq!((r.choice, r.total > 0), (c, c == 1), "player {p}");
                accepted += 1;
            }
            // Player 7's first answer (choice 1) came earlier in the same batch.
            Some(AnswerOutcome::Duplicate(r)) => assert_eq!((p, r.choice), (7, 1)),
            // After the last player's answer closed the question.
            Some(AnswerOutcome::WrongPhase) => assert_eq!(q, 1, "player {p}"),
            other => anyhow::bail!("player {p}: {other:?}"),
        }
    }
    assert_eq!(accepted, PLAYERS);
    // One call for the first answer alone at most, then batches of up to 256.
    assert!(
        calls <= 3,
        "{} answers took {calls} script calls",
        answers.len()
    );
    Ok(())
}
