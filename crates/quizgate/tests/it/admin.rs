use std::time::Duration;

use anyhow::Result;
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::{Client, NodeProcess, create_quiz, http_request, sample_quiz};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::support::{BIN, node, player, raw_websocket, readyz_turns};

#[tokio::test]
async fn health_readiness_and_metrics() -> Result<()> {
    let node = node(&[]).await?;
    let admin = node.admin_addr;
    let (status, body) = http_request(admin, "GET", "/healthz", b"").await?;
    assert_eq!(
        (status, body.trim()),
        (200, concat!("ok quizgate ", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(http_request(admin, "GET", "/readyz", b"").await?.0, 200);
    let (code, _) = create_quiz(node.ws_addr, &sample_quiz(1, 10_000)).await?;
    let (_ann, _) = player(node.ws_addr, Encoding::Json, &code, "ann").await?;
    let (status, body) = http_request(admin, "GET", "/metrics", b"").await?;
    assert_eq!(status, 200);
    for line in [
        "quizgate_connections 1",
        "quizgate_frames_in_total{type=\"join\"} 1",
        "quizgate_rooms 1",
        "quizgate_handshakes_total{result=\"ok\"} 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from\n{body}"
        );
    }
    assert!(
        body.contains("process_resident_memory_bytes"),
        "process metrics"
    );
    assert_eq!(http_request(admin, "GET", "/nope", b"").await?.0, 404);
    assert_eq!(http_request(admin, "POST", "/healthz", b"").await?.0, 405);
    // The admin port is not the public one.
    assert_eq!(
        http_request(node.ws_addr, "GET", "/metrics", b"").await?.0,
        404
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_turns_readyz_503_and_closes_clients_with_1001() -> Result<()> {
    let mut node = node(&[
        ("QUIZGATE_DRAIN_WINDOW", "1s"),
        ("QUIZGATE_SHUTDOWN_GRACE", "10s"),
    ])
    .await?;
    let (code, _) = create_quiz(node.ws_addr, &sample_quiz(1, 10_000)).await?;
    let (mut ann, _) = player(node.ws_addr, Encoding::Json, &code, "ann").await?;
    node.signal("TERM")?;
    // Readiness turns at once, while connections are still being drained.
    readyz_turns(node.admin_addr, 503).await?;
    assert_eq!(ann.closed().await?, 1001);
    assert!(node.wait_exit(Duration::from_secs(10)).await?.success());
    assert!(node.logs().iter().any(|l| l.contains("\"draining\"")));
    Ok(())
}

#[tokio::test]
async fn bad_settings_stop_start_up_with_64_naming_the_setting() -> Result<()> {
    let cases = [
        ("QUIZGATE_LISTEN", "not-an-address", "QUIZGATE_LISTEN"),
        (
            "QUIZGATE_ADMIN_LISTEN",
            "127.0.0.1:99999",
            "QUIZGATE_ADMIN_LISTEN",
        ),
        ("QUIZGATE_PING_INTERVAL", "soon", "QUIZGATE_PING_INTERVAL"),
        ("QUIZGATE_PING_INTERVAL", "0s", "QUIZGATE_PING_INTERVAL"),
        ("QUIZGATE_OUTBOUND_QUEUE", "0", "QUIZGATE_OUTBOUND_QUEUE"),
        ("QUIZGATE_LOG_FORMAT", "xml", "QUIZGATE_LOG_FORMAT"),
        ("QUIZGATE_DRAIN_WINDOW", "1h", "QUIZGATE_DRAIN_WINDOW"),
        ("QUIZGATE_API_KEYS", "ops:not-a-hash", "QUIZGATE_API_KEYS"),
        (
            "QUIZGATE_ALLOWED_ORIGINS",
            "evil.test/*",
            "QUIZGATE_ALLOWED_ORIGINS",
        ),
        (
            "QUIZGATE_ALLOWED_HOSTS",
            "quiz.example.com:443",
            "QUIZGATE_ALLOWED_HOSTS",
        ),
        (
            "QUIZGATE_API_KEYS",
            &format!("{}:rooms=3", quizgate_testkit::API_KEY_ENTRY),
            "rooms",
        ),
        (
            "QUIZGATE_QUOTA_LIVE_QUIZZES",
            "0",
            "QUIZGATE_QUOTA_LIVE_QUIZZES",
        ),
        (
            "QUIZGATE_QUOTA_DEFINITION_BYTES",
            "300000",
            "QUIZGATE_QUOTA_DEFINITION_BYTES",
        ),
        ("QUIZGATE_JOIN_TIMEOUT", "0s", "QUIZGATE_JOIN_TIMEOUT"),
        ("QUIZGATE_SESSION_KEYS", "k1:abcd", "QUIZGATE_SESSION_KEYS"),
        // Checked before Redis is reached: a cluster never starts open by mistake.
        (
            "QUIZGATE_REDIS_URL",
            "redis://127.0.0.1:1",
            "QUIZGATE_API_KEYS",
        ),
    ];
    for (name, value, named) in cases {
        let out = tokio::process::Command::new(BIN)
            .env(name, value)
            .output()
            .await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{name}={value}: {stderr}");
        assert!(stderr.contains(named), "{name}={value}: {stderr}");
    }
    // TLS files that are not a certificate and a key: checked as the node
    // loads them, still before it serves anything.
    let not_pem = std::env::temp_dir().join(format!("quizgate-not-pem-{}", std::process::id()));
    std::fs::write(&not_pem, "not a certificate")?;
    let bad_tls = tokio::process::Command::new(BIN)
        .env("QUIZGATE_LISTEN", "127.0.0.1:0")
        .env("QUIZGATE_ADMIN_LISTEN", "127.0.0.1:0")
        .env("QUIZGATE_TLS_CERT", &not_pem)
        .env("QUIZGATE_TLS_KEY", &not_pem)
        .output()
        .await?;
    let _ = std::fs::remove_file(&not_pem);
    let stderr = String::from_utf8_lossy(&bad_tls.stderr);
    assert_eq!(bad_tls.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("QUIZGATE_TLS_CERT"), "{stderr}");
    let no_session_key = tokio::process::Command::new(BIN)
        .env("QUIZGATE_API_KEYS", quizgate_testkit::API_KEY_ENTRY)
        .env("QUIZGATE_REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&no_session_key.stderr);
    assert_eq!(no_session_key.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("QUIZGATE_SESSION_KEYS"), "{stderr}");
    let leaky = tokio::process::Command::new(BIN)
        .env("QUIZGATE_SESSION_KEYS", "a-secret-without-its-id")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&leaky.stderr);
    assert_eq!(leaky.status.code(), Some(64), "{stderr}");
    assert!(
        !stderr.contains("a-secret"),
        "a key is never echoed: {stderr}"
    );
    let both = tokio::process::Command::new(BIN)
        .env("QUIZGATE_API_KEYS", quizgate_testkit::API_KEY_ENTRY)
        .env("QUIZGATE_OPEN_CREATE", "true")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert_eq!(both.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("QUIZGATE_OPEN_CREATE"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_two_ping_intervals() -> Result<()> {
    let node = node(&[("QUIZGATE_PING_INTERVAL", "300ms")]).await?;
    // A raw socket that never answers pings.
    let mut silent = raw_websocket(node.ws_addr).await?;
    // A real client answers pings automatically while it reads.
    let mut live = Client::connect(node.ws_addr, Encoding::Json).await?;
    // Keep the live client reading (and so answering pings) while we wait for
    // the silent one to be dropped.
    let mut dropped = false;
    let mut buf = [0u8; 256];
    for rid in 0..50 {
        live.send(json!({"t": "ping", "rid": rid})).await?;
        assert!(
            matches!(live.recv().await?, ServerFrame::Pong { .. }),
            "live connection still served"
        );
        match tokio::time::timeout(Duration::from_millis(100), silent.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                dropped = true;
                break;
            }
            _ => {}
        }
    }
    assert!(dropped, "silent connection not dropped within 5 s");
    // Reading for three ping intervals: tungstenite answers each ping by itself.
    let idle = live
        .recv_within(Duration::from_millis(900))
        .await
        .expect_err("nothing to receive")
        .to_string();
    assert!(idle.contains("no frame in time"), "{idle}");
    live.send(json!({"t": "ping", "rid": 99})).await?;
    assert!(
        matches!(live.recv().await?, ServerFrame::Pong { rid: Some(99), .. }),
        "a client that reads survives"
    );
    Ok(())
}

#[tokio::test]
async fn a_node_at_its_connection_limit_closes_with_1013() -> Result<()> {
    let node = NodeProcess::spawn(BIN, &[("QUIZGATE_MAX_CONNECTIONS", "1")]).await?;
    let mut first = Client::connect(node.ws_addr, Encoding::Json).await?;
    // The slot is taken just after the 101: wait until the first connection is
    // served, or under load the second handshake could take the slot first.
    first.send(json!({"t": "ping"})).await?;
    assert!(matches!(first.recv().await?, ServerFrame::Pong { .. }));
    let mut second = Client::connect(node.ws_addr, Encoding::Json).await?;
    assert_eq!(second.closed().await?, 1013);
    first.send(json!({"t": "ping"})).await?;
    assert!(matches!(first.recv().await?, ServerFrame::Pong { .. }));
    Ok(())
}

#[tokio::test]
async fn a_keep_alive_scraper_does_not_hold_up_a_drain() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut node = node(&[
        ("QUIZGATE_DRAIN_WINDOW", "0s"),
        ("QUIZGATE_SHUTDOWN_GRACE", "30s"),
    ])
    .await?;
    // A scraper that keeps its connection open between scrapes.
    let mut scraper = tokio::net::TcpStream::connect(node.admin_addr).await?;
    scraper
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await?;
    let mut buf = [0u8; 256];
    let n = scraper.read(&mut buf).await?;
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let started = std::time::Instant::now();
    node.signal("TERM")?;
    assert!(node.wait_exit(Duration::from_secs(15)).await?.success());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the drain waited {:?} for an idle admin connection",
        started.elapsed()
    );
    Ok(())
}
