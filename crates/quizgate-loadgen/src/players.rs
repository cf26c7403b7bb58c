//! The `players` command: many players in one process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use quizgate_protocol::{AnswerStatus, Encoding, ServerFrame};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cli::PlayersArgs;
use crate::tally::{Tally, percentiles, percentiles_us_as_ms};
use crate::ws::{Ws, connect, now_ms, recv, send};

pub(crate) struct Player {
    n: usize,
    args: Arc<PlayersArgs>,
    encoding: Encoding,
    tally: Tally,
}

impl Player {
    /// Plays until the quiz ends, reconnecting (to the next node) and resuming
    /// after any loss.
    async fn run(mut self, joined: Arc<AtomicU64>, gate: Arc<Semaphore>) -> Tally {
        let deadline = Instant::now() + Duration::from_secs(self.args.max_secs);
        let args = Arc::clone(&self.args);
        let nodes = &args.nodes;
        let source = args.sources[self.n % args.sources.len()];
        let mut node = if args.pin_first {
            0
        } else {
            self.n % nodes.len()
        };
        // After a loss, go to another node, spread by player number.
        let me = self.n;
        let next = |node: usize| (node + 1 + me % (nodes.len() - 1).max(1)) % nodes.len();
        let mut token: Option<String> = None;
        let mut last_seq = 0u64;
        let mut lost_at: Option<Instant> = None;
        let mut last_total: Option<u64> = None;
        let mut attempts = 0u32;
        let mut joins = 0u32;
        while Instant::now() < deadline {
            let started = Instant::now();
            let permit = gate.acquire().await.ok();
            let ws = connect(source, nodes[node], self.encoding).await;
            drop(permit);
            let mut ws = match ws {
                Ok(ws) => ws,
                Err(_) => {
                    attempts += 1;
                    if attempts > 50 {
                        self.tally.failures += 1;
                        return self.tally;
                    }
                    node = next(node);
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempts.min(10))))
                        .await;
                    continue;
                }
            };
            let hello = match &token {
                // A join whose welcome was lost may have succeeded: a retry takes
                // a fresh nickname rather than fighting its own ghost.
                None if joins > 0 => {
                    json!({"t": "join", "code": self.args.code, "nickname": format!("p{}~{joins}", self.n)})
                }
                None => {
                    json!({"t": "join", "code": self.args.code, "nickname": format!("p{}", self.n)})
                }
                Some(t) => json!({"t": "resume", "token": t, "last_seq": last_seq}),
            };
            // As docs/protocol.md tells clients: on `unavailable`, back off
            // (250 ms doubling to 4 s, jittered) and send the same frame again
            // on the same connection.
            let mut welcome = None;
            for retry in 0..20u64 {
                if send(&mut ws, self.encoding, hello.clone()).await.is_err() {
                    break;
                }
                if token.is_none() && retry == 0 {
                    joins += 1;
                }
                match recv(&mut ws, self.encoding).await {
                    Some(ServerFrame::Welcome(w)) => {
                        welcome = Some(w);
                        break;
                    }
                    Some(ServerFrame::Error {
                        code: quizgate_protocol::ErrorCode::Unavailable,
                        ..
                    }) => {
                        self.tally.unavailable += 1;
                        let backoff = 250u64 << retry.min(4);
                        let jitter = (self.n as u64 * 7919 + retry * 104_729) % backoff;
                        tokio::time::sleep(Duration::from_millis(backoff / 2 + jitter / 2)).await;
                    }
                    _ => break,
                }
            }
            let Some(w) = welcome else {
                attempts += 1;
                node = next(node);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            attempts = 0;
            if token.is_none() {
                self.tally
                    .connect_ms
                    .push(started.elapsed().as_millis() as u32);
                token = w.token.clone();
                last_seq = w.quiz.seq;
                joined.fetch_add(1, Ordering::Relaxed);
            } else {
                if w.resumed != Some(true) {
                    self.tally.snapshot_resumes += 1;
                    last_seq = w.quiz.seq;
                }
                if let Some(t0) = lost_at.take() {
                    self.tally.reconnects += 1;
                    self.tally.resume_ms.push(t0.elapsed().as_millis() as u32);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.play(&mut ws, &mut last_seq, &mut last_total))
                .await
                .unwrap_or(None)
            {
                Some(()) => {
                    self.tally.finished += 1;
                    return self.tally;
                }
                None => {
                    lost_at = Some(Instant::now());
                    node = next(node);
                }
            }
        }
        self.tally.failures += 1;
        self.tally
    }

    /// `Some` when the quiz ended, `None` when the connection was lost.
    async fn play(
        &mut self,
        ws: &mut Ws,
        last_seq: &mut u64,
        last_total: &mut Option<u64>,
    ) -> Option<()> {
        let mut pending: Option<(u16, Instant)> = None;
        let mut sent_at: Option<Instant> = None;
        let mut ended = false;
        loop {
            let wait = pending.map(|(_, at)| at.saturating_duration_since(Instant::now()));
            let frame = match wait {
                Some(d) => tokio::select! {
                    f = recv(ws, self.encoding) => f,
                    () = tokio::time::sleep(d) => {
                        let (q, _) = pending.take()?;
                        sent_at = Some(Instant::now());
                        if self.tally.first_answer == 0 {
                            self.tally.first_answer = now_ms();
                        }
                        self.tally.sent(q, now_ms());
                        let choice = (self.n + usize::from(q)) % 3;
                        send(ws, self.encoding, json!({"t": "answer", "question": q, "choice": choice})).await.ok()?;
                        continue;
                    }
                },
                None => recv(ws, self.encoding).await,
            }?;
            if let Some(seq) = frame.seq() {
                let ts = match &frame {
                    ServerFrame::Question { ts, .. }
                    | ServerFrame::Reveal { ts, .. }
                    | ServerFrame::Leaderboard { ts, .. }
                    | ServerFrame::Ended { ts, .. } => *ts,
                    _ => 0,
                };
                self.tally.deliveries += 1;
                self.tally
                    .delivery_ms
                    .push(now_ms().saturating_sub(ts) as u32);
                if seq <= *last_seq {
                    self.tally.dups += 1;
                } else {
                    if seq != *last_seq + 1 {
                        self.tally.gaps += seq - *last_seq - 1;
                    }
                    *last_seq = seq;
                }
            }
            match frame {
                ServerFrame::Question { question, .. } => {
                    if let Some(range) = &self.args.think_ms {
                        let (lo, hi) = (range[0], *range.get(1).unwrap_or(&range[0]));
                        let think = lo
                            + (self.n as u64 * 7919 + u64::from(question.index) * 104_729)
                                % (hi - lo + 1);
                        pending = Some((
                            question.index,
                            Instant::now() + Duration::from_millis(think),
                        ));
                    }
                }
                ServerFrame::AnswerResult(r) => {
                    if let Some(t) = sent_at.take() {
                        self.tally
                            .ack_us
                            .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        self.tally.last_ack = now_ms();
                        self.tally.acked(r.question, self.tally.last_ack);
                    }
                    match r.status {
                        AnswerStatus::Accepted => self.tally.accepted += 1,
                        AnswerStatus::Duplicate => self.tally.duplicates += 1,
                        AnswerStatus::Late | AnswerStatus::WrongPhase => self.tally.late += 1,
                    }
                    if let Some(total) = r.total {
                        *last_total = Some(last_total.map_or(total, |t| t.max(total)));
                    }
                }
                ServerFrame::Error { .. } => self.tally.unavailable += 1,
                ServerFrame::Ended { .. } => {
                    ended = true;
                    if last_total.is_none() {
                        return Some(());
                    }
                }
                // After the end, the player's own standing: the exactly-once check.
                ServerFrame::Standing { score, .. } if ended => {
                    if Some(score) != *last_total {
                        self.tally.mismatches += 1;
                    }
                    return Some(());
                }
                _ => {}
            }
        }
    }
}

pub(crate) async fn players(args: PlayersArgs) -> Result<serde_json::Value> {
    let args = Arc::new(args);
    let joined = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(512));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.count {
        let encoding = match args.encoding.as_str() {
            "json" => Encoding::Json,
            "msgpack" => Encoding::MsgPack,
            _ if i % 2 == 0 => Encoding::Json,
            _ => Encoding::MsgPack,
        };
        let p = Player {
            n: args.offset + i,
            args: Arc::clone(&args),
            encoding,
            tally: Tally::default(),
        };
        tasks.spawn(p.run(Arc::clone(&joined), Arc::clone(&gate)));
        // Pace connections: player i connects at i / connect_rate seconds.
        if let Some(us) = (1_000_000 * (i as u64 + 1)).checked_div(args.connect_rate) {
            tokio::time::sleep_until((started + Duration::from_micros(us)).into()).await;
        }
    }
    // Bounded: every player task ends by max_secs.
    let mut announced = false;
    let mut connect_secs = None;
    let mut total = Tally::default();
    loop {
        if connect_secs.is_none() && joined.load(Ordering::Relaxed) as usize >= args.count {
            connect_secs = Some(started.elapsed().as_secs_f64());
            if args.announce && !announced {
                announced = true;
                println!("{}", json!({"ready": args.count}));
            }
        }
        tokio::select! {
            t = tasks.join_next() => match t {
                Some(t) => total.merge(t?),
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let connect_secs = connect_secs.unwrap_or(started.elapsed().as_secs_f64());
    let questions = total.windows();
    Ok(json!({
        "players": args.count,
        "joined": joined.load(Ordering::Relaxed),
        "connect_secs": connect_secs,
        "connects_per_sec": args.count as f64 / connect_secs.max(1e-9),
        "connect_ms": percentiles(total.connect_ms),
        "deliveries": total.deliveries,
        "delivery_ms": percentiles(total.delivery_ms),
        "gaps": total.gaps,
        "dups": total.dups,
        "accepted": total.accepted,
        "duplicates": total.duplicates,
        "late": total.late,
        "errors": total.unavailable,
        "ack_ms": percentiles_us_as_ms(total.ack_us),
        "questions": questions,
        "first_answer_ms": total.first_answer,
        "last_ack_ms": total.last_ack,
        "reconnects": total.reconnects,
        "resume_ms": percentiles(total.resume_ms),
        "snapshot_resumes": total.snapshot_resumes,
        "failures": total.failures,
        "finished": total.finished,
        "score_mismatches": total.mismatches,
        "secs": started.elapsed().as_secs_f64(),
    }))
}
