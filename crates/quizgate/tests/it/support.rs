use std::net::SocketAddr;

use anyhow::{Result, bail};
use quizgate_protocol::{Encoding, ServerFrame, Welcome};
use quizgate_testkit::{Client, NodeProcess};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_quizgate");

/// Which backplane a test node runs on. The end-to-end suite runs each test
/// on both (see `both!`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Embedded,
    Redis,
}

/// A node with what it needs: for `Backend::Redis`, its own `redis-server`.
pub(crate) struct TestNode {
    node: NodeProcess,
    _redis: Option<quizgate_testkit::RedisServer>,
}

impl std::ops::Deref for TestNode {
    type Target = NodeProcess;
    fn deref(&self) -> &NodeProcess {
        &self.node
    }
}

/// A node on `backend` (see [`node`] for the defaults).
pub(crate) async fn node_on(backend: Backend, extra: &[(&str, &str)]) -> Result<TestNode> {
    match backend {
        Backend::Embedded => Ok(TestNode {
            node: node(extra).await?,
            _redis: None,
        }),
        Backend::Redis => {
            let redis = quizgate_testkit::RedisServer::start_ephemeral().await?;
            Ok(TestNode {
                node: redis_node(&redis.url(), extra).await?,
                _redis: Some(redis),
            })
        }
    }
}

/// Runs an end-to-end test (`async fn name(backend: Backend) -> Result<()>`)
/// once on an embedded node and once on a Redis-backed one.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn embedded() -> anyhow::Result<()> {
                super::$name(crate::support::Backend::Embedded).await
            }
            #[tokio::test]
            async fn redis() -> anyhow::Result<()> {
                super::$name(crate::support::Backend::Redis).await
            }
        }
    };
}
pub(crate) use both;

/// A node with a short leaderboard interval, so tests see coalescing quickly.
pub(crate) async fn node(extra: &[(&str, &str)]) -> Result<NodeProcess> {
    let mut env = vec![("QUIZGATE_LEADERBOARD_INTERVAL", "100ms")];
    env.extend_from_slice(extra);
    NodeProcess::spawn(BIN, &env).await
}

pub(crate) async fn host(addr: SocketAddr, code: &str, token: &str) -> Result<(Client, Welcome)> {
    let mut c = Client::connect(addr, Encoding::Json).await?;
    c.send(json!({"t": "host", "code": code, "token": token}))
        .await?;
    match c.recv().await? {
        ServerFrame::Welcome(w) => Ok((c, *w)),
        other => bail!("host got {other:?}"),
    }
}

pub(crate) async fn player(
    addr: SocketAddr,
    encoding: Encoding,
    code: &str,
    nickname: &str,
) -> Result<(Client, Welcome)> {
    let mut c = Client::connect(addr, encoding).await?;
    c.send(json!({"t": "join", "code": code, "nickname": nickname}))
        .await?;
    match c.recv().await? {
        ServerFrame::Welcome(w) => Ok((c, *w)),
        other => bail!("{nickname} got {other:?}"),
    }
}

/// The next frame that is not a push (broadcast, standing, progress): the
/// reply to a request.
pub(crate) async fn reply(c: &mut Client) -> Result<ServerFrame> {
    c.recv_until("a reply", |f| !f.is_push()).await
}

pub(crate) async fn expect_error(c: &mut Client, code: &str) -> Result<String> {
    match reply(c).await? {
        ServerFrame::Error {
            code: got, message, ..
        } if got.as_str() == code => Ok(message),
        other => bail!("expected error {code}, got {other:?}"),
    }
}

/// A WebSocket handshake done by hand, leaving a raw socket that can send
/// frames no real client library would.
pub(crate) async fn raw_websocket(addr: SocketAddr) -> Result<TcpStream> {
    raw_websocket_on(addr, "/ws").await
}

/// The same on `path`; a refused upgrade fails with the status line.
pub(crate) async fn raw_websocket_on(addr: SocketAddr, path: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: quizgate\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 || head.len() > 4096 {
            bail!("handshake ended early: {}", String::from_utf8_lossy(&head));
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        bail!("no upgrade: {}", String::from_utf8_lossy(&head));
    }
    Ok(s)
}

/// The next server frame on a raw socket: (opcode, payload), within the kit's wait.
pub(crate) async fn raw_frame(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    tokio::time::timeout(quizgate_testkit::WAIT, read_frame(s)).await?
}

/// Reads raw frames until a close frame, all within the kit's wait; returns its code.
pub(crate) async fn raw_close_code(s: &mut TcpStream) -> Result<u16> {
    let read = async {
        loop {
            let (opcode, payload) = read_frame(s).await?;
            if opcode == 0x8 {
                return Ok::<_, anyhow::Error>(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    };
    tokio::time::timeout(quizgate_testkit::WAIT, read).await?
}

async fn read_frame(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr).await?;
    let len = match hdr[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await?;
            usize::from(u16::from_be_bytes(l))
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    Ok((hdr[0] & 0x0f, payload))
}

/// The node's metrics, scraped from its admin port.
pub(crate) async fn scrape(admin: SocketAddr) -> Result<String> {
    let (status, body) = quizgate_testkit::http_request(admin, "GET", "/metrics", b"").await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok(body)
}

/// One sample's value in a scrape, by its name and labels as exposed; 0 if absent.
pub(crate) fn sample(metrics: &str, name: &str) -> f64 {
    let prefix = format!("{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A node on the given Redis.
pub(crate) async fn redis_node(url: &str, extra: &[(&str, &str)]) -> Result<NodeProcess> {
    let mut env = vec![
        ("QUIZGATE_REDIS_URL", url),
        ("QUIZGATE_REDIS_COMMAND_TIMEOUT", "500ms"),
    ];
    env.extend_from_slice(extra);
    node(&env).await
}

pub(crate) async fn answer(
    c: &mut Client,
    question: u16,
    choice: u8,
) -> Result<quizgate_protocol::AnswerResult> {
    c.send(json!({"t": "answer", "question": question, "choice": choice}))
        .await?;
    match reply(c).await? {
        ServerFrame::AnswerResult(r) => Ok(r),
        other => bail!("expected an answer result, got {other:?}"),
    }
}

pub(crate) async fn command(host: &mut Client, t: &str) -> Result<()> {
    host.send(json!({"t": t})).await?;
    match reply(host).await? {
        ServerFrame::Ack { command, .. } if command == t => Ok(()),
        other => bail!("{t}: {other:?}"),
    }
}

/// Resumes a player's session on a new connection.
pub(crate) async fn resume(
    addr: SocketAddr,
    encoding: Encoding,
    token: &str,
    last_seq: u64,
) -> Result<(Client, Welcome)> {
    let mut c = Client::connect(addr, encoding).await?;
    c.send(json!({"t": "resume", "token": token, "last_seq": last_seq}))
        .await?;
    match c.recv().await? {
        ServerFrame::Welcome(w) => Ok((c, *w)),
        other => bail!("resume got {other:?}"),
    }
}

/// Checks that each client's broadcasts are gapless after its welcome and that
/// all clients saw the same frame for every sequence number they share.
pub(crate) fn assert_same_ordered_streams(clients: &[(&Client, u64)]) {
    let mut by_seq = std::collections::HashMap::new();
    for (c, from) in clients {
        let seqs = c.seqs();
        let want: Vec<u64> = (from + 1..=from + seqs.len() as u64).collect();
        assert_eq!(seqs, want, "gapless after the welcome");
        for f in &c.events {
            let seq = f.seq().unwrap_or(0);
            let seen = by_seq.entry(seq).or_insert_with(|| f.clone());
            assert_eq!(seen, f, "seq {seq} differs between clients");
        }
    }
}

/// Every player's score in a quiz, read straight from Redis (the sorted set
/// holds negated points under zero-padded player ids; see ARCHITECTURE.md).
pub(crate) async fn redis_scores(
    redis: &quizgate_testkit::RedisServer,
    code: &str,
) -> Result<std::collections::BTreeMap<u32, u64>> {
    let raw = redis
        .cli(&[
            "ZRANGE",
            &format!("{{q:{code}}}:scores"),
            "0",
            "-1",
            "WITHSCORES",
        ])
        .await?;
    let lines: Vec<&str> = raw.lines().collect();
    lines
        .chunks(2)
        .map(|p| {
            let score = p
                .get(1)
                .ok_or_else(|| anyhow::anyhow!("score missing in {raw:?}"))?;
            Ok((p[0].parse()?, score.trim_start_matches('-').parse()?))
        })
        .collect()
}

/// Waits (bounded) until the node's `/readyz` answers `status`.
pub(crate) async fn readyz_turns(admin: SocketAddr, status: u16) -> Result<()> {
    quizgate_testkit::wait_until(
        &format!("/readyz answers {status}"),
        quizgate_testkit::WAIT,
        || async move {
            let got = quizgate_testkit::http_request(admin, "GET", "/readyz", b"")
                .await?
                .0;
            if got != status {
                bail!("it answers {got}");
            }
            Ok(())
        },
    )
    .await
}
