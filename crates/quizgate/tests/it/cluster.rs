//! Several node processes sharing one real Redis (and a Redis Cluster).

use std::time::Duration;

use anyhow::Result;
use quizgate_domain::CloseReason;
use quizgate_protocol::{AnswerStatus, Encoding, ServerFrame};
use quizgate_testkit::{
    NodeProcess, RedisCluster, RedisServer, create_quiz, http_request, sample_quiz,
};

use crate::support::{
    answer, assert_same_ordered_streams, command, expect_error, host, player, readyz_turns,
    redis_node, resume,
};

fn is_reveal(index: u16) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Reveal { index: i, .. } if *i == index)
}

fn is_question(index: u16) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Question { question, .. } if question.index == index)
}

async fn nodes(url: &str, n: usize) -> Result<Vec<NodeProcess>> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(redis_node(url, &[]).await?);
    }
    Ok(nodes)
}

#[tokio::test]
async fn a_quiz_spread_over_three_nodes_is_one_quiz() -> Result<()> {
    let redis = RedisServer::start().await?;
    let nodes = nodes(&redis.url(), 3).await?;
    // The quiz is created through one node and hosted from another.
    let (code, token) = create_quiz(nodes[2].ws_addr, &sample_quiz(2, 20_000)).await?;
    let (mut host, _) = host(nodes[0].ws_addr, &code, &token).await?;
    let mut players = Vec::new();
    for i in 0..6 {
        let enc = if i % 2 == 0 {
            Encoding::Json
        } else {
            Encoding::MsgPack
        };
        players.push(player(nodes[i % 3].ws_addr, enc, &code, &format!("p{i}")).await?);
    }
    assert_eq!(
        players
            .iter()
            .map(|(_, w)| w.player_id.unwrap_or(0))
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    let mut totals = [0u64; 6];
    for q in 0..2u16 {
        command(&mut host, if q == 0 { "start" } else { "next" }).await?;
        for (c, _) in players.iter_mut() {
            c.recv_until("question", is_question(q)).await?;
        }
        for (i, (c, _)) in players.iter_mut().enumerate() {
            let r = answer(c, q, ((i + q as usize) % 3) as u8).await?;
            assert_eq!(r.status, AnswerStatus::Accepted, "p{i} q{q}");
            totals[i] = r.total.unwrap_or(0);
        }
        for (c, _) in players.iter_mut() {
            let ServerFrame::Reveal {
                reason, answered, ..
            } = c.recv_until("reveal", is_reveal(q)).await?
            else {
                unreachable!()
            };
            assert_eq!((reason, answered), (CloseReason::AllAnswered, 6));
        }
    }
    command(&mut host, "next").await?;
    for (c, _) in players.iter_mut() {
        let ServerFrame::Ended { top, .. } = c
            .recv_until("the end", |f| matches!(f, ServerFrame::Ended { .. }))
            .await?
        else {
            unreachable!()
        };
        for s in &top {
            assert_eq!(
                s.score,
                totals[(s.player_id - 1) as usize],
                "final score of {} = its last acknowledged total",
                s.nickname
            );
        }
    }
    let streams: Vec<(&quizgate_testkit::Client, u64)> =
        players.iter().map(|(c, w)| (c, w.quiz.seq)).collect();
    assert_same_ordered_streams(&streams);
    Ok(())
}

#[tokio::test]
async fn racing_duplicate_answers_on_three_nodes_count_once() -> Result<()> {
    let redis = RedisServer::start().await?;
    let nodes = nodes(&redis.url(), 3).await?;
    let (code, token) = create_quiz(nodes[0].ws_addr, &sample_quiz(1, 30_000)).await?;
    let (mut host, _) = host(nodes[0].ws_addr, &code, &token).await?;
    let (_ann, w) = player(nodes[0].ws_addr, Encoding::Json, &code, "ann").await?;
    let (_bob, _) = player(nodes[1].ws_addr, Encoding::Json, &code, "bob").await?;
    let ann_token = w.token.clone().unwrap_or_default();
    command(&mut host, "start").await?;
    // A client that lost its replies resumes through every node at once and
    // sends its answer again on each. The newest connection takes the
    // session and the others close with 4409, maybe before their answer's
    // result: whatever comes back must say one answer, counted once.
    let attempt = |node: &NodeProcess, encoding| {
        let (addr, token) = (node.ws_addr, ann_token.clone());
        async move {
            let (mut c, _) = resume(addr, encoding, &token, 0).await?;
            answer(&mut c, 0, 0).await
        }
    };
    let (a, b, c) = tokio::join!(
        attempt(&nodes[0], Encoding::Json),
        attempt(&nodes[1], Encoding::MsgPack),
        attempt(&nodes[2], Encoding::Json)
    );
    // Then once more, alone: by now the answer is in.
    let last = attempt(&nodes[1], Encoding::Json).await?;
    assert_eq!(last.status, AnswerStatus::Duplicate, "{last:?}");
    let results: Vec<_> = [a, b, c].into_iter().filter_map(Result::ok).collect();
    assert!(
        results
            .iter()
            .filter(|r| r.status == AnswerStatus::Accepted)
            .count()
            <= 1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|r| r.points == last.points && r.choice == Some(0)),
        "the same result for all: {results:?} and {last:?}"
    );
    let scores = crate::support::redis_scores(&redis, &code).await?;
    assert_eq!(
        scores.get(&w.player_id.unwrap_or(0)),
        Some(&u64::from(last.points.unwrap_or(0))),
        "scored once in Redis: {scores:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_deadline_fires_once_when_the_hosts_node_dies() -> Result<()> {
    let redis = RedisServer::start().await?;
    let mut nodes = nodes(&redis.url(), 3).await?;
    let (code, token) = create_quiz(nodes[1].ws_addr, &sample_quiz(1, 1_500)).await?;
    let (mut host, _) = host(nodes[0].ws_addr, &code, &token).await?;
    let (mut b, bw) = player(nodes[1].ws_addr, Encoding::Json, &code, "b").await?;
    let (mut c, cw) = player(nodes[2].ws_addr, Encoding::MsgPack, &code, "c").await?;
    command(&mut host, "start").await?;
    nodes[0].signal("KILL")?;
    nodes[0].wait_exit(Duration::from_secs(5)).await?;
    for p in [&mut b, &mut c] {
        let ServerFrame::Reveal { reason, .. } = p.recv_until("reveal", is_reveal(0)).await? else {
            unreachable!()
        };
        assert_eq!(reason, CloseReason::Deadline);
    }
    // Both surviving nodes try to close it; the streams show exactly one close.
    for p in [&mut b, &mut c] {
        p.recv_until("leaderboard", |f| {
            matches!(f, ServerFrame::Leaderboard { .. })
        })
        .await?;
    }
    assert_eq!(answer(&mut b, 0, 0).await?.status, AnswerStatus::Late);
    assert_same_ordered_streams(&[(&b, bw.quiz.seq), (&c, cw.quiz.seq)]);
    assert_eq!(
        b.events
            .iter()
            .filter(|f| matches!(f, ServerFrame::Reveal { .. }))
            .count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_player_resumes_on_another_node_mid_question() -> Result<()> {
    let redis = RedisServer::start().await?;
    let nodes = nodes(&redis.url(), 2).await?;
    let (code, token) = create_quiz(nodes[0].ws_addr, &sample_quiz(2, 30_000)).await?;
    let (mut host, _) = host(nodes[0].ws_addr, &code, &token).await?;
    let (mut ann, w) = player(nodes[0].ws_addr, Encoding::Json, &code, "ann").await?;
    let (mut bob, bw) = player(nodes[1].ws_addr, Encoding::Json, &code, "bob").await?;
    command(&mut host, "start").await?;
    ann.recv_until("question", is_question(0)).await?;
    let first = answer(&mut ann, 0, 0).await?;
    let last_seen = ann.seqs().last().copied().unwrap_or(w.quiz.seq);
    drop(ann); // the phone loses its connection
    assert_eq!(answer(&mut bob, 0, 1).await?.status, AnswerStatus::Accepted); // closes q0 while ann is away
    let (mut back, rw) = resume(
        nodes[1].ws_addr,
        Encoding::MsgPack,
        &w.token.clone().unwrap_or_default(),
        last_seen,
    )
    .await?;
    assert_eq!(rw.resumed, Some(true));
    assert_eq!(rw.player_id, w.player_id);
    let reveal = back.recv_until("the missed reveal", is_reveal(0)).await?;
    assert!(
        reveal.seq() > Some(last_seen),
        "the reveal happened while away"
    );
    assert_eq!(
        back.seqs().first().copied(),
        Some(last_seen + 1),
        "the first missed event comes first"
    );
    let retry = answer(&mut back, 0, 0).await?;
    assert_eq!(
        (retry.status, retry.points),
        (AnswerStatus::Duplicate, first.points),
        "acknowledged again, scored once"
    );
    command(&mut host, "next").await?;
    back.recv_until("question 1", is_question(1)).await?;
    let from = last_seen;
    assert_same_ordered_streams(&[(&back, from)]);
    // A forged token (right player, wrong secret) is refused.
    let forged = format!("{code}.{}.{}", w.player_id.unwrap_or(1), "0".repeat(32));
    let mut evil = quizgate_testkit::Client::connect(nodes[1].ws_addr, Encoding::Json).await?;
    evil.send(serde_json::json!({"t": "resume", "token": forged, "last_seq": 0}))
        .await?;
    expect_error(&mut evil, "invalid_token").await?;
    // Another player's seat with this player's secret is refused too.
    let ann_secret = w
        .token
        .as_deref()
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default();
    let swapped = format!("{code}.{}.{ann_secret}", bw.player_id.unwrap_or(2));
    evil.send(serde_json::json!({"t": "resume", "token": swapped, "last_seq": 0}))
        .await?;
    expect_error(&mut evil, "invalid_token").await?;
    Ok(())
}

#[tokio::test]
async fn nodes_survive_a_redis_restart_mid_quiz() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let nodes = nodes(&redis.url(), 2).await?;
    let (code, token) = create_quiz(nodes[0].ws_addr, &sample_quiz(2, 60_000)).await?;
    let (mut host, _) = host(nodes[0].ws_addr, &code, &token).await?;
    let (mut ann, aw) = player(nodes[0].ws_addr, Encoding::Json, &code, "ann").await?;
    let (mut bob, bw) = player(nodes[1].ws_addr, Encoding::MsgPack, &code, "bob").await?;
    command(&mut host, "start").await?;
    for p in [&mut ann, &mut bob] {
        p.recv_until("question", is_question(0)).await?;
    }
    let acked = answer(&mut ann, 0, 0).await?;
    assert_eq!(acked.status, AnswerStatus::Accepted);

    redis.stop().await?;
    // Writes fail with a clear, retryable error; sockets stay open; not ready.
    bob.send(serde_json::json!({"t": "answer", "question": 0, "choice": 1}))
        .await?;
    expect_error(&mut bob, "unavailable").await?;
    // Each node notices the lost connection on its own; wait (bounded) for it.
    for n in &nodes {
        readyz_turns(n.admin_addr, 503).await?;
    }

    redis.restart().await?;
    for n in &nodes {
        readyz_turns(n.admin_addr, 200).await?;
    }
    // The acknowledged answer survived; the retried one counts; the quiz goes on.
    assert_eq!(
        answer(&mut ann, 0, 2).await?.status,
        AnswerStatus::Duplicate
    );
    assert_eq!(answer(&mut bob, 0, 1).await?.status, AnswerStatus::Accepted); // the last answer closes q0
    for p in [&mut ann, &mut bob] {
        p.recv_until("reveal", is_reveal(0)).await?;
    }
    command(&mut host, "next").await?;
    for p in [&mut ann, &mut bob] {
        p.recv_until("question 1", is_question(1)).await?;
    }
    assert_same_ordered_streams(&[(&ann, aw.quiz.seq), (&bob, bw.quiz.seq)]);
    Ok(())
}

#[tokio::test]
async fn a_quiz_runs_on_redis_cluster_with_sharded_pubsub() -> Result<()> {
    let cluster = RedisCluster::start(3).await?;
    let url = cluster.url();
    let nodes = nodes(&url, 2).await?;
    let (code, token) = create_quiz(nodes[0].ws_addr, &sample_quiz(1, 30_000)).await?;
    let (mut host, _) = host(nodes[1].ws_addr, &code, &token).await?;
    let (mut ann, aw) = player(nodes[0].ws_addr, Encoding::Json, &code, "ann").await?;
    let (mut bob, bw) = player(nodes[1].ws_addr, Encoding::MsgPack, &code, "bob").await?;
    command(&mut host, "start").await?;
    for p in [&mut ann, &mut bob] {
        p.recv_until("question", is_question(0)).await?;
    }
    assert_eq!(answer(&mut ann, 0, 0).await?.status, AnswerStatus::Accepted);
    assert_eq!(answer(&mut bob, 0, 0).await?.status, AnswerStatus::Accepted);
    for p in [&mut ann, &mut bob] {
        p.recv_until("reveal", is_reveal(0)).await?;
    }
    assert_same_ordered_streams(&[(&ann, aw.quiz.seq), (&bob, bw.quiz.seq)]);
    Ok(())
}

#[tokio::test]
async fn a_resume_past_the_trimmed_log_gets_a_snapshot_and_is_told_so() -> Result<()> {
    let redis = RedisServer::start().await?;
    let node = redis_node(&redis.url(), &[("QUIZGATE_EVENT_LOG_CAPACITY", "16")]).await?;
    let (code, token) = create_quiz(node.ws_addr, &sample_quiz(8, 30_000)).await?;
    let (mut host, _) = host(node.ws_addr, &code, &token).await?;
    let (ann, w) = player(node.ws_addr, Encoding::Json, &code, "ann").await?;
    let ann_token = w.token.clone().unwrap_or_default();
    drop(ann);
    // Eight skipped questions: 24 events, more than the log keeps.
    command(&mut host, "start").await?;
    for q in 0..8 {
        host.recv_until("question", is_question(q)).await?;
        command(&mut host, "skip").await?;
        host.recv_until("reveal", is_reveal(q)).await?;
        if q < 7 {
            command(&mut host, "next").await?;
        }
    }
    let (mut back, rw) = resume(node.ws_addr, Encoding::MsgPack, &ann_token, w.quiz.seq).await?;
    assert_eq!(
        rw.resumed,
        Some(false),
        "the gap cannot be filled: said explicitly"
    );
    assert_eq!(rw.quiz.phase, quizgate_domain::Phase::Reveal);
    assert_eq!(
        rw.quiz.question.as_ref().map(|q| q.index),
        Some(7),
        "a fresh snapshot of where the quiz is"
    );
    assert!(rw.quiz.seq >= 24);
    // From the snapshot on, the stream is live and gapless again.
    command(&mut host, "next").await?;
    back.recv_until("the end", |f| matches!(f, ServerFrame::Ended { .. }))
        .await?;
    assert_same_ordered_streams(&[(&back, rw.quiz.seq)]);
    // A resume within the log still replays.
    let (_again, aw) = resume(node.ws_addr, Encoding::Json, &ann_token, rw.quiz.seq).await?;
    assert_eq!(aw.resumed, Some(true));
    Ok(())
}

#[tokio::test]
async fn a_call_that_finds_no_free_slot_is_refused_before_it_reaches_redis() -> Result<()> {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]).await?;
    let node = redis_node(
        &redis.url(),
        &[
            ("QUIZGATE_REDIS_COMMAND_TIMEOUT", "10s"),
            ("QUIZGATE_MAX_INFLIGHT_CALLS", "1"),
            ("QUIZGATE_CALL_QUEUE_TIMEOUT", "300ms"),
        ],
    )
    .await?;
    let (code, token) = create_quiz(node.ws_addr, &sample_quiz(1, 60_000)).await?;
    // The host makes the room exist on the node, so the joins below only wait
    // on their own backplane call.
    let (_host, _) = host(node.ws_addr, &code, &token).await?;
    let mut ann = quizgate_testkit::Client::connect(node.ws_addr, Encoding::Json).await?;
    let mut bob = quizgate_testkit::Client::connect(node.ws_addr, Encoding::Json).await?;

    // Redis stalls for 1.5 s: ann's join takes the only slot and waits in Redis.
    let port = redis.port.to_string();
    // Test-only: awaited below.
    #[allow(clippy::disallowed_methods)]
    let stall = tokio::spawn(async move {
        tokio::process::Command::new("redis-cli")
            .args(["-p", &port, "DEBUG", "SLEEP", "1.5"])
            .output()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    ann.send(serde_json::json!({"t": "join", "code": code, "nickname": "ann"}))
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    bob.send(serde_json::json!({"t": "join", "code": code, "nickname": "bob"}))
        .await?;
    // Bob is told to retry while ann's call is still in Redis.
    let message = expect_error(&mut bob, "unavailable").await?;
    assert!(message.contains("busy"), "{message}");
    assert!(
        ann.recv_within(Duration::from_millis(1)).await.is_err(),
        "ann's join is still waiting on Redis"
    );
    match ann.recv().await? {
        ServerFrame::Welcome(w) => assert_eq!(w.player_id, Some(1)),
        other => panic!("ann got {other:?}"),
    }
    stall.await??;
    // Nothing of bob's refused join reached Redis: his retry takes his nickname.
    bob.send(serde_json::json!({"t": "join", "code": code, "nickname": "bob"}))
        .await?;
    match bob.recv().await? {
        ServerFrame::Welcome(w) => assert_eq!(w.player_id, Some(2)),
        other => panic!("bob got {other:?}"),
    }
    let (_, metrics) = http_request(node.admin_addr, "GET", "/metrics", b"").await?;
    assert!(
        metrics.contains("quizgate_backplane_errors_total{call=\"join\",kind=\"busy\"} 1"),
        "{metrics}"
    );
    Ok(())
}
