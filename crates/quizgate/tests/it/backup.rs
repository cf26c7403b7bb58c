//! The backup and restore of docs/operations.md, end to end: an RDB snapshot
//! taken from the live Redis mid-quiz, the Redis lost, a fresh one started
//! from the snapshot, and the quiz going on from it on a new node.

use anyhow::{Context, Result, bail};
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::{RedisServer, create_quiz, sample_quiz};
use serde_json::json;

use crate::support::{answer, command, host, player, redis_node, reply, resume};

#[tokio::test]
async fn a_backup_taken_mid_quiz_restores_into_a_fresh_redis_and_the_quiz_goes_on() -> Result<()> {
    let redis = RedisServer::start().await?;
    let node = redis_node(&redis.url(), &[]).await?;
    let addr = node.ws_addr;
    let (code, host_token) = create_quiz(addr, &sample_quiz(2, 60_000)).await?;
    let (mut host_client, _) = host(addr, &code, &host_token).await?;
    let (mut ann, ann_welcome) = player(addr, Encoding::Json, &code, "ann").await?;
    let (_bob, bob_welcome) = player(addr, Encoding::Json, &code, "bob").await?;
    command(&mut host_client, "start").await?;
    let scored = answer(&mut ann, 0, 0).await?; // question 0's right choice is 0
    let ann_points = scored.total.context("ann's total")?;
    assert!(ann_points > 0);

    // Back up: an RDB snapshot streamed from the live server.
    let dir = std::env::temp_dir().join(format!("quizgate-backup-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let snapshot = dir.join("dump.rdb");
    let out = tokio::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--rdb"])
        .arg(&snapshot)
        .output()
        .await?;
    if !out.status.success() {
        bail!("redis-cli --rdb: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The Redis and the node are lost.
    drop((node, host_client, ann, redis));

    // Restore: a fresh Redis loads the snapshot (AOF off while it loads, then
    // on, which rewrites the AOF from what was loaded).
    let dir_arg = dir.to_str().context("path")?;
    let fresh = RedisServer::start_with(&[
        "--appendonly",
        "no",
        "--dir",
        dir_arg,
        "--dbfilename",
        "dump.rdb",
    ])
    .await?;
    let aof = fresh.cli(&["CONFIG", "SET", "appendonly", "yes"]).await?;
    assert!(aof.contains("OK"), "{aof}");
    let node = redis_node(&fresh.url(), &[]).await?;
    let addr = node.ws_addr;

    // Everyone comes back with what they had, and the quiz goes on.
    let ann_token = ann_welcome.token.context("ann's token")?;
    let (mut ann, welcome) = resume(addr, Encoding::Json, &ann_token, 0).await?;
    let you = welcome.quiz.you.context("ann's view")?;
    assert_eq!(you.score, ann_points, "the score from before the backup");
    assert!(you.answer.is_some(), "and her answer to the open question");
    let (mut host_client, _) = host(addr, &code, &host_token).await?;
    let bob_token = bob_welcome.token.context("bob's token")?;
    let (mut bob, _) = resume(addr, Encoding::Json, &bob_token, 0).await?;
    answer(&mut bob, 0, 1).await?;
    // Bob was the last to answer: the question closes, then the next one.
    ann.recv_until("the reveal", |f| matches!(f, ServerFrame::Reveal { .. }))
        .await?;
    command(&mut host_client, "next").await?;
    let q = ann
        .recv_until("the next question", |f| {
            matches!(f, ServerFrame::Question { .. })
        })
        .await?;
    assert!(matches!(q, ServerFrame::Question { ref question, .. } if question.index == 1));
    ann.send(json!({"t": "ping"})).await?;
    assert!(matches!(reply(&mut ann).await?, ServerFrame::Pong { .. }));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
