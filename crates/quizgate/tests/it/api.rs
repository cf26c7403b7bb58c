//! docs/openapi.yaml against the node, beyond what schemathesis checks (no
//! undocumented status): every status it lists for `POST /v1/quizzes` is one
//! a client can really get, each made happen here.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use quizgate_testkit::sample_quiz;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::node;

/// The statuses the description lists for `POST /v1/quizzes`.
fn documented() -> Result<BTreeSet<u16>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.yaml"
    ))?;
    let path = text.split("/v1/quizzes:").nth(1).context("the path")?;
    let path = path.split("\ncomponents:").next().unwrap_or(path);
    Ok(path
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('"')?
                .strip_suffix("\":")?
                .parse()
                .ok()
        })
        .collect())
}

/// Sends `request` from `source` and returns the reply's status.
async fn status_of(source: IpAddr, addr: SocketAddr, request: &str) -> Result<u16> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut s = socket.connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(quizgate_testkit::WAIT, s.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace()
        .nth(1)
        .context("a status line")?
        .parse()
        .map_err(Into::into)
}

fn post(host: &str, headers: &[&str], body: &str) -> String {
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    format!(
        "POST /v1/quizzes HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn every_status_the_api_description_lists_is_reachable() -> Result<()> {
    let node = node(&[
        ("QUIZGATE_ALLOWED_ORIGINS", "https://quiz.example.test"),
        ("QUIZGATE_ALLOWED_HOSTS", "127.0.0.1"),
        ("QUIZGATE_HTTP_BODY_TIMEOUT", "300ms"),
        ("QUIZGATE_CREATES_PER_ADDRESS", "5"),
        ("QUIZGATE_QUOTA_LIVE_QUIZZES", "2"),
    ])
    .await?;
    let full = quizgate_testkit::NodeProcess::spawn(
        crate::support::BIN,
        &[("QUIZGATE_MAX_CONNECTIONS", "1")],
    )
    .await?;
    let addr = node.ws_addr;
    let host = "127.0.0.1";
    let auth = format!("Authorization: Bearer {}", quizgate_testkit::API_KEY);
    let json = "Content-Type: application/json";
    let def = sample_quiz(1, 10_000).to_string();
    let from = |last: u8| IpAddr::from([127, 0, 0, last]);
    let mut seen = BTreeSet::new();

    // Each from an address of its own, so that the per-address creation rate
    // (5 a minute) is met only where it is meant to be.
    let cases: Vec<(u16, u8, String)> = vec![
        (201, 2, post(host, &[json, &auth], &def)),
        (400, 3, post(host, &[json, &auth], "{\"questions\": ")),
        (401, 4, post(host, &[json], &def)),
        (
            403,
            5,
            post(
                host,
                &[json, &auth, "Origin: https://evil.example.test"],
                &def,
            ),
        ),
        (
            413,
            6,
            post(host, &[json, &auth], "").replace("Content-Length: 0", "Content-Length: 300000"),
        ),
        (
            415,
            7,
            post(host, &[&auth, "Content-Type: text/plain"], &def),
        ),
        (421, 8, post("rebound.example", &[json, &auth], &def)),
    ];
    for (want, last, request) in &cases {
        let got = status_of(from(*last), addr, request).await?;
        assert_eq!(got, *want, "{}", request.lines().next().unwrap_or_default());
        seen.insert(got);
    }
    // 403 also for a credential at its quota of live quizzes (2).
    for want in [201, 403] {
        let got = status_of(from(2), addr, &post(host, &[json, &auth], &def)).await?;
        assert_eq!(got, want, "the quota");
    }
    // 408: the headers promise a body that never comes.
    let mut slow = TcpStream::connect(addr).await?;
    slow.write_all(
        post(host, &[json, &auth], "")
            .replace("Content-Length: 0", "Content-Length: 100")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(quizgate_testkit::WAIT, slow.read_to_end(&mut raw)).await??;
    let got: u16 = String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .context("status")?
        .parse()?;
    assert_eq!(got, 408);
    seen.insert(got);
    // 429: more creations from one address than it may make in a minute.
    let mut last = 0;
    for _ in 0..6 {
        last = status_of(from(9), addr, &post(host, &[json, &auth], "{}")).await?;
    }
    assert_eq!(last, 429);
    seen.insert(last);
    // 503: a node at its connection limit, its one slot held by a player.
    let mut holder =
        quizgate_testkit::Client::connect(full.ws_addr, quizgate_protocol::Encoding::Json).await?;
    holder.send(serde_json::json!({"t": "ping"})).await?;
    holder.recv().await?;
    let got = status_of(from(10), full.ws_addr, &post(host, &[json, &auth], &def)).await?;
    assert_eq!(got, 503);
    seen.insert(got);
    drop(holder);

    assert_eq!(seen, documented()?, "documented = reachable");
    Ok(())
}
