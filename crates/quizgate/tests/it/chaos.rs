//! The chaos test: the `make cluster` shape (Redis with AOF, three nodes,
//! HAProxy from `deploy/haproxy/haproxy.cfg`) with hundreds of players in
//! several quizzes answering continuously, while one node is killed, one is
//! drained, and Redis is restarted. Afterwards every acknowledged answer is in
//! the final scores exactly once, every client's event stream is gapless, and
//! every client got back in.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use quizgate_domain::Phase;
use quizgate_protocol::{AnswerStatus, Encoding, ErrorCode, ServerFrame};
use quizgate_testkit::{Client, Haproxy, NodeProcess, RedisServer, create_quiz};
use serde_json::json;

use crate::support::BIN;

const QUIZZES: usize = 4;
const PLAYERS_PER_QUIZ: usize = 50;
const QUESTIONS: usize = 8;
const TIME_LIMIT_MS: u64 = 2_000;
/// Every client gives up after this long: the test is bounded.
const GIVE_UP: Duration = Duration::from_secs(90);

fn node_env(redis: &str) -> Vec<(&'static str, String)> {
    vec![
        ("QUIZGATE_REDIS_URL", redis.to_owned()),
        ("QUIZGATE_REDIS_COMMAND_TIMEOUT", "500ms".into()),
        ("QUIZGATE_DRAIN_WINDOW", "1s".into()),
        ("QUIZGATE_SHUTDOWN_GRACE", "5s".into()),
        ("QUIZGATE_LEADERBOARD_INTERVAL", "250ms".into()),
        ("QUIZGATE_LOG", "warn,quizgate=info".into()),
        // Behind deploy/haproxy/haproxy.cfg, which sends PROXY v2 headers.
        ("QUIZGATE_PROXY_PROTOCOL", "true".into()),
    ]
}

async fn spawn_node(redis: &str, at: Option<(SocketAddr, SocketAddr)>) -> Result<NodeProcess> {
    let mut env = node_env(redis);
    if let Some((ws, admin)) = at {
        env.push(("QUIZGATE_LISTEN", ws.to_string()));
        env.push(("QUIZGATE_ADMIN_LISTEN", admin.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    NodeProcess::spawn(BIN, &env).await
}

/// Jittered exponential backoff, as docs/protocol.md tells clients to do.
async fn backoff(attempt: u32, seed: u64) {
    let cap = 50u64 << attempt.min(4); // 50 ms … 800 ms
    let jitter = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % cap;
    tokio::time::sleep(Duration::from_millis(cap / 2 + jitter / 2)).await;
}

#[derive(Debug, Default)]
struct PlayerReport {
    code: String,
    player_id: u32,
    /// question → points, from `accepted` or `duplicate` acks (or the snapshot).
    acks: BTreeMap<u16, u32>,
    reconnects: u32,
    slowest_reconnect: Duration,
    ended: bool,
    problems: Vec<String>,
}

/// A player that never gives up: joins, answers every question, and after any
/// disconnect reconnects through the load balancer and resumes.
async fn play(
    lb: SocketAddr,
    source: IpAddr,
    code: String,
    nickname: String,
    seed: u64,
) -> PlayerReport {
    let mut rep = PlayerReport {
        code: code.clone(),
        ..PlayerReport::default()
    };
    let encoding = if seed.is_multiple_of(2) {
        Encoding::Json
    } else {
        Encoding::MsgPack
    };
    let started = Instant::now();
    let mut token: Option<String> = None;
    let mut last_seq = 0u64;
    let mut lost_at: Option<Instant> = None;
    let mut attempt = 0u32;
    // The last answer sent whose result has not come yet.
    let mut sent: Option<u16> = None;
    'connection: while started.elapsed() < GIVE_UP {
        let Ok(mut c) = Client::connect_from(source, lb, encoding).await else {
            attempt += 1;
            backoff(attempt, seed).await;
            continue;
        };
        let hello = match &token {
            None => json!({"t": "join", "code": code, "nickname": nickname}),
            Some(t) => json!({"t": "resume", "token": t, "last_seq": last_seq}),
        };
        let welcome = match c.send(hello).await {
            Ok(()) => c.recv().await,
            Err(e) => Err(e),
        };
        let w = match welcome {
            Ok(ServerFrame::Welcome(w)) => w,
            Ok(ServerFrame::Error {
                code: ErrorCode::Unavailable,
                ..
            })
            | Err(_) => {
                attempt += 1;
                backoff(attempt, seed).await;
                continue;
            }
            Ok(other) => {
                rep.problems.push(format!("hello answered with {other:?}"));
                return rep;
            }
        };
        attempt = 0;
        if let Some(t0) = lost_at.take() {
            rep.reconnects += 1;
            rep.slowest_reconnect = rep.slowest_reconnect.max(t0.elapsed());
        }
        if token.is_none() {
            token = w.token.clone();
            rep.player_id = w.player_id.unwrap_or(0);
            last_seq = w.quiz.seq;
        } else if w.resumed != Some(true) {
            rep.problems.push(format!(
                "resume fell back to a snapshot at seq {}",
                w.quiz.seq
            ));
            last_seq = w.quiz.seq;
        }
        // An answer whose ack was lost with the connection shows in the snapshot.
        if let (Some(you), Some(q)) = (&w.quiz.you, &w.quiz.question)
            && let Some(a) = you.answer
        {
            rep.acks.entry(q.index).or_insert(a.points);
        }
        // An answer sent and never acknowledged is sent again (docs/protocol.md,
        // Reconnecting, step 4), even after the quiz ended: its result says
        // whether it was taken.
        let unsettled = sent.filter(|q| !rep.acks.contains_key(q));
        if w.quiz.phase == Phase::Ended {
            rep.ended = true;
            if unsettled.is_none() {
                return rep;
            }
        }
        let mut pending = unsettled.or_else(|| {
            w.quiz
                .question
                .as_ref()
                .filter(|q| w.quiz.phase == Phase::Question && !rep.acks.contains_key(&q.index))
                .map(|q| q.index)
        });
        loop {
            if let Some(q) = pending.take() {
                // Think, then answer.
                tokio::time::sleep(Duration::from_millis(
                    100 + (seed * 37 + u64::from(q) * 101) % 600,
                ))
                .await;
                if c.send(
                    json!({"t": "answer", "question": q, "choice": (seed + u64::from(q)) % 3}),
                )
                .await
                .is_err()
                {
                    lost_at = Some(Instant::now());
                    continue 'connection;
                }
                sent = Some(q);
            }
            let frame = match c.recv_within(Duration::from_secs(15)).await {
                Ok(f) => f,
                Err(_) => {
                    lost_at = Some(Instant::now());
                    continue 'connection;
                }
            };
            if let Some(seq) = frame.seq() {
                if seq != last_seq + 1 {
                    rep.problems
                        .push(format!("expected seq {}, got {seq}", last_seq + 1));
                }
                last_seq = last_seq.max(seq);
            }
            match frame {
                ServerFrame::Question { question, .. }
                    if !rep.acks.contains_key(&question.index) =>
                {
                    pending = Some(question.index)
                }
                ServerFrame::AnswerResult(r) => {
                    match r.status {
                        AnswerStatus::Accepted | AnswerStatus::Duplicate => {
                            let points = r.points.unwrap_or(0);
                            if let Some(old) = rep.acks.insert(r.question, points)
                                && old != points
                            {
                                rep.problems.push(format!(
                                    "question {}: acked {old} then {points}",
                                    r.question
                                ));
                            }
                        }
                        AnswerStatus::Late | AnswerStatus::WrongPhase => {}
                    }
                    if sent == Some(r.question) {
                        sent = None;
                        if rep.ended {
                            return rep;
                        }
                    }
                }
                // Redis did not answer in time: the answer may or may not have
                // been taken. Retry it even if its question has closed since:
                // a taken one comes back `duplicate` with its points.
                ServerFrame::Error {
                    code: ErrorCode::Unavailable,
                    ..
                } => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    pending = sent
                        .or_else(|| current_question(&c))
                        .filter(|q| !rep.acks.contains_key(q));
                }
                // The quiz ended while an answer was in flight (a retry after
                // `unavailable`, say): its result still tells whether it was
                // taken, so read on until it comes.
                ServerFrame::Ended { .. } => {
                    rep.ended = true;
                    if sent.is_none() && pending.is_none() {
                        return rep;
                    }
                }
                _ => {}
            }
        }
    }
    rep.problems.push("gave up".into());
    rep
}

/// The index of the last question this client was asked, if it is not revealed yet.
fn current_question(c: &Client) -> Option<u16> {
    let mut open = None;
    for f in &c.events {
        match f {
            ServerFrame::Question { question, .. } => open = Some(question.index),
            ServerFrame::Reveal { index, .. } if Some(*index) == open => open = None,
            _ => {}
        }
    }
    open
}

/// A host that drives its quiz to the end through every failure.
async fn host(lb: SocketAddr, code: String, token: String, players: u32) -> Result<()> {
    let started = Instant::now();
    let mut attempt = 0u32;
    while started.elapsed() < GIVE_UP {
        let Ok(mut c) = Client::connect(lb, Encoding::Json).await else {
            attempt += 1;
            backoff(attempt, 7).await;
            continue;
        };
        let w = match c
            .send(json!({"t": "host", "code": code, "token": token}))
            .await
        {
            Ok(()) => c.recv().await,
            Err(e) => Err(e),
        };
        let Ok(ServerFrame::Welcome(w)) = w else {
            attempt += 1;
            backoff(attempt, 7).await;
            continue;
        };
        attempt = 0;
        let mut want: Option<&str> = match w.quiz.phase {
            Phase::Ended => return Ok(()),
            Phase::Lobby if w.quiz.players >= players => Some("start"),
            Phase::Reveal => Some("next"),
            _ => None,
        };
        loop {
            if let Some(cmd) = want.take() {
                if cmd == "next" {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                if c.send(json!({"t": cmd})).await.is_err() {
                    break;
                }
            }
            let Ok(frame) = c.recv_within(Duration::from_secs(15)).await else {
                break;
            };
            match frame {
                ServerFrame::Progress {
                    players: n,
                    index: None,
                    ..
                } if w.quiz.phase == Phase::Lobby
                    && n >= players
                    && c.events
                        .iter()
                        .all(|f| !matches!(f, ServerFrame::Question { .. })) =>
                {
                    want = Some("start")
                }
                ServerFrame::Reveal { .. } => want = Some("next"),
                ServerFrame::Ended { .. } => return Ok(()),
                ServerFrame::Error {
                    code: ErrorCode::Unavailable,
                    ..
                } => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break; // reconnect and decide again from the snapshot
                }
                _ => {}
            }
        }
    }
    bail!("host of {code} gave up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_drain_and_redis_restart_lose_nothing() -> Result<()> {
    let mut redis = RedisServer::start().await?;
    let url = redis.url();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(spawn_node(&url, None).await?);
    }
    let addrs: Vec<(SocketAddr, SocketAddr)> =
        nodes.iter().map(|n| (n.ws_addr, n.admin_addr)).collect();
    let cfg = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/haproxy/haproxy.cfg"
    );
    let lb = Haproxy::start(cfg, [addrs[0], addrs[1], addrs[2]]).await?;

    let mut quizzes = Vec::new();
    for _ in 0..QUIZZES {
        quizzes.push(
            create_quiz(
                lb.addr,
                &quizgate_testkit::sample_quiz(QUESTIONS, TIME_LIMIT_MS),
            )
            .await?,
        );
    }
    let mut players = tokio::task::JoinSet::new();
    for (qi, (code, _)) in quizzes.iter().enumerate() {
        for pi in 0..PLAYERS_PER_QUIZ {
            let n = qi * PLAYERS_PER_QUIZ + pi;
            // Many source addresses, so that source hashing spreads players over the nodes.
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % 60) as u8));
            players.spawn(play(
                lb.addr,
                source,
                code.clone(),
                format!("p{pi}"),
                n as u64,
            ));
        }
    }
    let mut hosts = tokio::task::JoinSet::new();
    for (code, token) in &quizzes {
        hosts.spawn(host(
            lb.addr,
            code.clone(),
            token.clone(),
            PLAYERS_PER_QUIZ as u32,
        ));
    }

    // The chaos, while questions run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    nodes[0].signal("KILL")?;
    nodes[0].wait_exit(Duration::from_secs(5)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[0] = spawn_node(&url, Some(addrs[0])).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[1].signal("TERM")?;
    let drained = nodes[1].wait_exit(Duration::from_secs(10)).await?;
    assert!(drained.success(), "drained node exits cleanly");
    nodes[1] = spawn_node(&url, Some(addrs[1])).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await?;

    while let Some(h) = hosts.join_next().await {
        h??;
    }
    let mut reports = Vec::new();
    while let Some(r) = players.join_next().await {
        reports.push(r?);
    }

    // Every acknowledged answer is in the final scores exactly once.
    let mut checked = 0;
    for (code, _) in &quizzes {
        let scores = crate::support::redis_scores(&redis, code).await?;
        for rep in reports.iter().filter(|r| &r.code == code) {
            let acked: u64 = rep.acks.values().map(|p| u64::from(*p)).sum();
            assert_eq!(
                scores.get(&rep.player_id).copied(),
                Some(acked),
                "{code} player {}: {rep:?}",
                rep.player_id
            );
            checked += rep.acks.len();
        }
    }
    let problems: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(move |p| format!("{} p{}: {p}", r.code, r.player_id))
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(reports.iter().all(|r| r.ended), "every player saw the end");
    let reconnected: Vec<&PlayerReport> = reports.iter().filter(|r| r.reconnects > 0).collect();
    let slowest = reports
        .iter()
        .map(|r| r.slowest_reconnect)
        .max()
        .unwrap_or_default();
    println!(
        "chaos: {} players, {checked} acknowledged answers all scored once, {} players reconnected ({} reconnects), slowest back in {} ms",
        reports.len(),
        reconnected.len(),
        reports.iter().map(|r| r.reconnects).sum::<u32>(),
        slowest.as_millis()
    );
    assert!(!reconnected.is_empty(), "the chaos did disconnect players");
    assert!(
        checked > reports.len() * QUESTIONS / 2,
        "players answered continuously: {checked}"
    );
    Ok(())
}
