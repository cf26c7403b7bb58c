//! quizgate-loadgen: one process plays many players (or one host) against a
//! quizgate cluster and prints one JSON line of measurements. Stay under the
//! 20,000 open files of a process: run several processes for more players.
//!
//! Latency of an event = this machine's clock at receipt − the server's `ts`
//! on the event, so generator and nodes must share a clock (same machine).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use quizgate_protocol::{AnswerStatus, Encoding, ServerFrame};
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Debug, Parser)]
#[command(name = "quizgate-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Many players in one quiz.
    Players(PlayersArgs),
    /// The host of one quiz: starts it and runs questions at a fixed pace.
    Host(HostArgs),
}

#[derive(Debug, clap::Args)]
struct PlayersArgs {
    /// Node addresses (host:port); players are spread round-robin, and a player
    /// that loses its node reconnects to the next one.
    #[arg(long, value_delimiter = ',', required = true)]
    nodes: Vec<SocketAddr>,
    /// Loopback source addresses to connect from, round-robin.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    sources: Vec<IpAddr>,
    #[arg(long)]
    code: String,
    #[arg(long)]
    count: usize,
    /// First player number (for unique nicknames across processes).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// json, msgpack or mixed (alternating).
    #[arg(long, default_value = "mixed")]
    encoding: String,
    /// New connections per second from this process (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    connect_rate: u64,
    /// Answer each question after a random think time in this range (ms).
    #[arg(long, value_delimiter = '-')]
    think_ms: Option<Vec<u64>>,
    /// Stop after this many seconds even if the quiz has not ended.
    #[arg(long, default_value_t = 600)]
    max_secs: u64,
    /// Print `{"ready": n}` once all players joined (for orchestration).
    #[arg(long)]
    announce: bool,
    /// Start every player on the first node (the others are for reconnects).
    #[arg(long)]
    pin_first: bool,
}

#[derive(Debug, clap::Args)]
struct HostArgs {
    #[arg(long)]
    node: SocketAddr,
    #[arg(long)]
    code: String,
    #[arg(long)]
    token: String,
    /// Start once this many players have joined.
    #[arg(long)]
    players: u32,
    /// Milliseconds between host commands (each start/next opens a question,
    /// each skip closes one: two commands make a question, a reveal and a leaderboard).
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Questions to run before ending the quiz.
    #[arg(long)]
    questions: u32,
    /// Let questions run to their end (answers or deadline) instead of skipping.
    #[arg(long)]
    no_skip: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type Ws = WebSocketStream<TcpStream>;

async fn connect(source: IpAddr, node: SocketAddr, encoding: Encoding) -> Result<Ws> {
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(node))
        .await
        .context("connect timeout")??;
    stream.set_nodelay(true)?;
    let mut req = format!("ws://{node}/ws").into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(encoding.subprotocol()),
    );
    // Small buffers: this process holds thousands of sockets too.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)),
    )
    .await
    .context("handshake timeout")??;
    Ok(ws)
}

async fn send(ws: &mut Ws, encoding: Encoding, frame: serde_json::Value) -> Result<()> {
    let msg = match encoding {
        Encoding::Json => Message::text(frame.to_string()),
        Encoding::MsgPack => Message::binary(rmp_serde::to_vec_named(&frame)?),
    };
    ws.send(msg).await?;
    Ok(())
}

/// The next server frame; `None` when the connection ended.
async fn recv(ws: &mut Ws, encoding: Encoding) -> Option<ServerFrame> {
    loop {
        let msg = ws.next().await?.ok()?;
        let frame = match (msg, encoding) {
            (Message::Text(t), Encoding::Json) => serde_json::from_str(t.as_str()).ok(),
            (Message::Binary(b), Encoding::MsgPack) => rmp_serde::from_slice(&b).ok(),
            (Message::Close(_), _) => return None,
            _ => continue,
        };
        if frame.is_some() {
            return frame;
        }
    }
}

/// What one player measured.
#[derive(Debug, Default)]
struct Tally {
    connect_ms: Vec<u32>,
    /// Unix ms of the first answer sent and the last ack received.
    first_answer: u64,
    last_ack: u64,
    delivery_ms: Vec<u32>,
    ack_ms: Vec<u32>,
    deliveries: u64,
    gaps: u64,
    dups: u64,
    accepted: u64,
    duplicates: u64,
    late: u64,
    unavailable: u64,
    reconnects: u64,
    resume_ms: Vec<u32>,
    snapshot_resumes: u64,
    failures: u64,
    finished: u64,
    /// Players whose final standing disagrees with their last acknowledged total.
    mismatches: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.connect_ms.extend(o.connect_ms);
        if o.first_answer > 0 {
            self.first_answer = if self.first_answer == 0 {
                o.first_answer
            } else {
                self.first_answer.min(o.first_answer)
            };
        }
        self.last_ack = self.last_ack.max(o.last_ack);
        self.delivery_ms.extend(o.delivery_ms);
        self.ack_ms.extend(o.ack_ms);
        self.resume_ms.extend(o.resume_ms);
        self.deliveries += o.deliveries;
        self.gaps += o.gaps;
        self.dups += o.dups;
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.unavailable += o.unavailable;
        self.reconnects += o.reconnects;
        self.snapshot_resumes += o.snapshot_resumes;
        self.failures += o.failures;
        self.finished += o.finished;
        self.mismatches += o.mismatches;
    }
}

fn percentiles(mut v: Vec<u32>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    json!({"n": v.len(), "p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": v[v.len() - 1]})
}

struct Player {
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
                        self.tally.ack_ms.push(t.elapsed().as_millis() as u32);
                        self.tally.last_ack = now_ms();
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

async fn players(args: PlayersArgs) -> Result<serde_json::Value> {
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
        "ack_ms": percentiles(total.ack_ms),
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

async fn host(args: HostArgs) -> Result<serde_json::Value> {
    // Bounded retries: the host may arrive in the middle of a join storm.
    let mut ws = None;
    for attempt in 0..20u64 {
        match connect(IpAddr::from([127, 0, 0, 1]), args.node, Encoding::Json).await {
            Ok(w) => {
                ws = Some(w);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await,
        }
    }
    let mut ws = ws.context("host could not connect")?;
    send(
        &mut ws,
        Encoding::Json,
        json!({"t": "host", "code": args.code, "token": args.token}),
    )
    .await?;
    let Some(ServerFrame::Welcome(w)) = recv(&mut ws, Encoding::Json).await else {
        bail!("host not welcomed")
    };
    let mut players = w.quiz.players;
    // Bounded by the players' own patience.
    let waiting = Instant::now();
    while players < args.players && waiting.elapsed() < Duration::from_secs(600) {
        if let Some(ServerFrame::Leaderboard { players: n, .. }) =
            tokio::time::timeout(Duration::from_secs(1), recv(&mut ws, Encoding::Json))
                .await
                .ok()
                .flatten()
        {
            players = n;
        }
    }
    let started = Instant::now();
    let mut commands = 0u64;
    let drain = |ws: &mut Ws| {
        // Read whatever arrived, without waiting.
        while let Some(Some(Ok(_))) = futures_util::FutureExt::now_or_never(ws.next()) {}
    };
    for q in 0..args.questions {
        let cmd = if q == 0 { "start" } else { "next" };
        send(&mut ws, Encoding::Json, json!({"t": cmd})).await?;
        commands += 1;
        if args.no_skip {
            // Wait for the question to close by itself, then pause.
            loop {
                match tokio::time::timeout(Duration::from_secs(400), recv(&mut ws, Encoding::Json))
                    .await
                {
                    Ok(Some(ServerFrame::Reveal { .. })) => break,
                    Ok(Some(_)) => {}
                    _ => bail!("no reveal"),
                }
            }
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
            drain(&mut ws);
            send(&mut ws, Encoding::Json, json!({"t": "skip"})).await?;
            commands += 1;
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
            drain(&mut ws);
        }
    }
    send(&mut ws, Encoding::Json, json!({"t": "end"})).await?;
    commands += 1;
    // Read until the end is broadcast: exiting with unread data would reset the
    // connection, and the server could lose the `end` with it.
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(f) = recv(&mut ws, Encoding::Json).await {
            if matches!(f, ServerFrame::Ended { .. }) {
                break;
            }
        }
    })
    .await;
    Ok(json!({"commands": commands, "secs": started.elapsed().as_secs_f64(), "players": players}))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(async {
        match cli.cmd {
            Cmd::Players(a) => players(a).await,
            Cmd::Host(a) => host(a).await,
        }
    })?;
    println!("{out}");
    Ok(())
}
