//! Attacks from docs/security.md, each small and bounded, each beside a
//! legitimate quiz that must stay prompt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::tungstenite::Message;
use quizgate_testkit::{
    Client, NodeProcess, create_quiz, http_request, http_request_with, sample_quiz,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Backend, answer, both, command, expect_error, host, node, node_on, player, raw_close_code,
    raw_frame, raw_websocket, raw_websocket_on, redis_node, reply, resume, sample, scrape,
};

/// A host and a player in a started quiz: the legitimate traffic that an
/// attack beside it must not slow down.
struct Bystander {
    code: String,
    host: Client,
    player: Client,
}

impl Bystander {
    async fn start(addr: SocketAddr) -> Result<Self> {
        let (code, token) = create_quiz(addr, &sample_quiz(3, 60_000)).await?;
        let (host, _) = host(addr, &code, &token).await?;
        let (player, _) = player(addr, Encoding::Json, &code, "bystander").await?;
        Ok(Self { code, host, player })
    }

    /// The player's ping round trip, which must stay well under a second.
    async fn still_prompt(&mut self) -> Result<()> {
        let t = Instant::now();
        self.player.send(json!({"t": "ping", "rid": 7})).await?;
        let got = reply(&mut self.player).await?;
        let took = t.elapsed();
        if !matches!(got, ServerFrame::Pong { .. }) || took > Duration::from_secs(1) {
            bail!("bystander's ping: {got:?} after {took:?}");
        }
        Ok(())
    }
}

/// `refused_total{reason}` as the node counts it.
async fn refused(node: &NodeProcess, reason: &str) -> Result<u64> {
    metric(
        node,
        &format!("quizgate_refused_total{{reason=\"{reason}\"}}"),
    )
    .await
}

/// One sample of the node's metrics, by name and labels; 0 if absent.
async fn metric(node: &NodeProcess, name: &str) -> Result<u64> {
    Ok(sample(&scrape(node.admin_addr).await?, name) as u64)
}

#[tokio::test]
async fn pages_from_other_origins_cannot_connect_or_create() -> Result<()> {
    let node = node(&[(
        "QUIZGATE_ALLOWED_ORIGINS",
        "https://quiz.example.test, http://localhost:8080",
    )])
    .await?;
    let addr = node.ws_addr;
    let mut bystander = Bystander::start(addr).await?;

    let other = [("Origin", "https://evil.example.test")];
    let err = Client::connect_with_headers(addr, Encoding::Json, &other)
        .await
        .expect_err("a page on another site is refused");
    assert!(err.to_string().contains("403"), "{err}");
    let def = sample_quiz(1, 10_000).to_string();
    let json = ("Content-Type", "application/json");
    let key = bearer();
    let key = ("Authorization", key.as_str());
    let (status, body) = http_request_with(
        addr,
        "POST",
        "/v1/quizzes",
        &[json, key, other[0]],
        def.as_bytes(),
    )
    .await?;
    assert_eq!(
        (status, body.contains("origin_not_allowed")),
        (403, true),
        "{body}"
    );

    let allowed = [("Origin", "https://quiz.example.test")];
    Client::connect_with_headers(addr, Encoding::Json, &allowed).await?;
    let (status, body) = http_request_with(
        addr,
        "POST",
        "/v1/quizzes",
        &[json, key, allowed[0]],
        def.as_bytes(),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    // Native clients send no Origin at all.
    Client::connect(addr, Encoding::MsgPack).await?;

    assert_eq!(refused(&node, "origin").await?, 2);
    bystander.still_prompt().await?;
    bystander.host.send(json!({"t": "start"})).await?;
    Ok(())
}

#[tokio::test]
async fn an_http_connection_carries_one_request() -> Result<()> {
    // Clients that pool connections (Node's fetch and WebSocket share one
    // pool) would send an upgrade on a kept-alive HTTP connection; what tells
    // HTTP from WebSocket is a connection's first request, so each HTTP
    // request gets its own connection.
    let node = node(&[]).await?;
    let def = sample_quiz(1, 10_000).to_string();
    let mut s = TcpStream::connect(node.ws_addr).await?;
    let two = format!(
        "POST /v1/quizzes HTTP/1.1\r\nHost: quizgate\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nContent-Length: {}\r\n\r\n{def}\
         GET /ws HTTP/1.1\r\nHost: quizgate\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        bearer(),
        def.len()
    );
    s.write_all(two.as_bytes()).await?;
    let reply = read_to_end(&mut s).await?;
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    assert_eq!(
        reply.matches("HTTP/1.1").count(),
        1,
        "one reply, then the end: {reply}"
    );
    // The upgrade works on a connection of its own.
    raw_websocket(node.ws_addr).await?;
    Ok(())
}

#[tokio::test]
async fn requests_for_other_host_names_are_refused() -> Result<()> {
    // A page whose DNS name was rebound to the node's address still sends
    // its own name in Host.
    let node = node(&[("QUIZGATE_ALLOWED_HOSTS", "127.0.0.1, quizgate")]).await?;
    let addr = node.ws_addr;
    let mut bystander = Bystander::start(addr).await?;
    let def = sample_quiz(1, 10_000).to_string();
    for request in [
        format!(
            "POST /v1/quizzes HTTP/1.1\r\nHost: rebound.example:{}\r\nContent-Type: application/json\r\n\
             Authorization: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{def}",
            addr.port(),
            bearer(),
            def.len()
        ),
        "GET /ws HTTP/1.1\r\nHost: rebound.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .to_owned(),
    ] {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(request.as_bytes()).await?;
        let reply = read_to_end(&mut s).await?;
        assert!(reply.starts_with("HTTP/1.1 421"), "{reply}");
        assert!(reply.contains("QUIZGATE_ALLOWED_HOSTS"), "{reply}");
    }
    // Its own names, with any port.
    raw_websocket(addr).await?;
    create_quiz(addr, &sample_quiz(1, 10_000)).await?;
    assert_eq!(refused(&node, "host").await?, 2);
    bystander.still_prompt().await?;
    Ok(())
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut_off_and_counted() -> Result<()> {
    let node = node(&[
        ("QUIZGATE_MAX_CONNECTIONS", "5"),
        ("QUIZGATE_HANDSHAKE_TIMEOUT", "3s"),
        ("QUIZGATE_HTTP_BODY_TIMEOUT", "500ms"),
        ("QUIZGATE_JOIN_TIMEOUT", "1s"),
    ])
    .await?;
    let addr = node.ws_addr;
    let mut bystander = Bystander::start(addr).await?; // 2 of the 5 slots

    // A body that never finishes: 408 once the body timeout passes.
    let mut trickle = TcpStream::connect(addr).await?;
    let head = format!(
        "POST /v1/quizzes HTTP/1.1\r\nHost: q\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nContent-Length: 100\r\n\r\n{{\"title\":",
        bearer()
    );
    trickle.write_all(head.as_bytes()).await?;
    let t = Instant::now();
    let answer = read_to_end(&mut trickle).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    // Well before the defaults (10 s, 30 s), even on a loaded machine.
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

    // Half-sent requests hold slots, HTTP ones too, until their header
    // deadline: the node is full meanwhile, for HTTP and WebSocket alike.
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"POST /v1/quizzes HTTP/1.1\r\nHost").await?;
        idle.push(s);
    }
    quizgate_testkit::wait_until("every slot taken", Duration::from_secs(5), || async {
        match metric(&node, "quizgate_client_connections").await? {
            5 => Ok(()),
            n => bail!("{n} slots taken"),
        }
    })
    .await?;
    let (status, body) = http_request(addr, "GET", "/nothing", b"").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("connection limit"), "{body}");
    let mut late = Client::connect(addr, Encoding::Json).await?;
    assert_eq!(late.closed().await?, 1013, "no slot for a WebSocket either");
    bystander.still_prompt().await?;
    for s in &mut idle {
        let answer = read_to_end(s).await?;
        assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    }

    // A WebSocket that never joins is closed at its deadline; one that joins stays.
    let mut lurker = Client::connect(addr, Encoding::Json).await?;
    let (mut joiner, _) = {
        let (code, token) = create_quiz(addr, &sample_quiz(1, 10_000)).await?;
        drop(token);
        player(addr, Encoding::MsgPack, &code, "joiner").await?
    };
    let t = Instant::now();
    assert_eq!(lurker.closed().await?, 4408);
    // Well before the defaults (10 s, 30 s), even on a loaded machine.
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    joiner.send(json!({"t": "ping"})).await?;
    assert!(matches!(
        reply(&mut joiner).await?,
        ServerFrame::Pong { .. }
    ));

    bystander.still_prompt().await?;
    assert_eq!(refused(&node, "body_timeout").await?, 1);
    assert!(refused(&node, "join_timeout").await? >= 1);
    Ok(())
}

#[tokio::test]
async fn control_frames_and_empty_fragments_count_against_the_frame_rate() -> Result<()> {
    let node = node(&[("QUIZGATE_FRAMES_PER_SECOND", "5")]).await?;
    let mut bystander = Bystander::start(node.ws_addr).await?;
    let mut raw = raw_websocket(node.ws_addr).await?;
    // Masked, empty pings: 2 + 4 bytes each. A burst of 10, then 50 over the
    // rate are tolerated; the next one closes the connection.
    let ping = [0x89u8, 0x80, 1, 2, 3, 4];
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 200)
        .collect();
    // The node may close before it read everything: a failed write is fine.
    let _ = raw.write_all(&flood).await;
    assert_eq!(raw_close_code(&mut raw).await?, 1008);
    bystander.still_prompt().await?;

    // Empty continuation frames of a message that never ends: tungstenite
    // would take them for ever without a message; they count as frames.
    let start = [0x01u8, 0x81, 1, 2, 3, 4, b'{' ^ 1];
    let empty = [0x00u8, 0x80, 1, 2, 3, 4];
    let fragments: Vec<u8> = start
        .iter()
        .chain(empty.iter().cycle().take(empty.len() * 200))
        .copied()
        .collect();
    let mut raw = raw_websocket(node.ws_addr).await?;
    let _ = raw.write_all(&fragments).await;
    assert_eq!(raw_close_code(&mut raw).await?, 1008);

    // The same sent with the handshake request, in one write: the frames are
    // counted from the request's end, whatever the first one's bytes say.
    let mut raw = TcpStream::connect(node.ws_addr).await?;
    let mut all =
        b"GET /ws HTTP/1.1\r\nHost: quizgate\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .to_vec();
    // A first frame whose payload, read as a header, would skip 2^62 bytes.
    all.extend_from_slice(&[0x01, 0x8a, 1, 2, 3, 4]);
    all.extend_from_slice(&[0x80 ^ 1, 0xff ^ 2, 0x40 ^ 3, 0, 0, 0, 0, 0, 0, 0]);
    all.extend_from_slice(&fragments);
    let _ = raw.write_all(&all).await;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        head.push(raw.read_u8().await?);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    assert_eq!(raw_close_code(&mut raw).await?, 1008);
    bystander.still_prompt().await?;
    Ok(())
}

#[tokio::test]
async fn the_quiz_api_takes_json_only() -> Result<()> {
    let node = node(&[]).await?;
    let def = sample_quiz(1, 10_000).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let key = bearer();
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .chain([("Authorization", key.as_str())])
            .collect();
        let (status, body) = http_request_with(
            node.ws_addr,
            "POST",
            "/v1/quizzes",
            &headers,
            def.as_bytes(),
        )
        .await?;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert!(body.contains("unsupported_media_type"), "{body}");
    }
    let key = bearer();
    let charset = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Authorization", key.as_str()),
    ];
    let (status, body) = http_request_with(
        node.ws_addr,
        "POST",
        "/v1/quizzes",
        &charset,
        def.as_bytes(),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    Ok(())
}

#[tokio::test]
async fn only_holders_of_an_api_key_create_quizzes() -> Result<()> {
    // Two keys at once: the old one still works while clients move to the new.
    // next = sha256("qgk_next")
    let keys = format!(
        "{},next:eff5e007a040737b49f27967e7768c777dafb0d4c361dab9279683fb38acdb87",
        quizgate_testkit::API_KEY_ENTRY
    );
    let node = node(&[("QUIZGATE_API_KEYS", keys.as_str())]).await?;
    let def = sample_quiz(1, 10_000).to_string();
    let json = ("Content-Type", "application/json");
    let create = |auth: Option<&'static str>| {
        let def = def.clone();
        async move {
            let headers: Vec<(&str, &str)> = std::iter::once(json)
                .chain(auth.map(|a| ("Authorization", a)))
                .collect();
            http_request_with(
                node.ws_addr,
                "POST",
                "/v1/quizzes",
                &headers,
                def.as_bytes(),
            )
            .await
        }
    };
    let bearer_kit: &'static str = bearer().leak();
    assert_eq!(create(Some(bearer_kit)).await?.0, 201);
    assert_eq!(create(Some("Bearer qgk_next")).await?.0, 201);
    for auth in [None, Some("Bearer qgk_guess"), Some("Basic cWdrX25leHQ=")] {
        let (status, body) = create(auth).await?;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(body.contains("unauthorized"), "{body}");
    }
    assert_eq!(refused(&node, "unauthorized").await?, 3);
    assert!(
        node.logs()
            .iter()
            .any(|l| l.contains("quiz created") && l.contains("\"next\"")),
        "the key's name is logged with the quiz it created"
    );
    Ok(())
}

/// `POST /v1/quizzes` with a bearer; the status and the body.
async fn create_with(addr: SocketAddr, bearer: &str, def: &str) -> Result<(u16, String)> {
    let auth = format!("Bearer {bearer}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    http_request_with(addr, "POST", "/v1/quizzes", &headers, def.as_bytes()).await
}

#[tokio::test]
async fn each_credential_keeps_to_its_quota_across_the_cluster() -> Result<()> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let redis = quizgate_testkit::RedisServer::start_ephemeral().await?;
    // The test kit's key may hold 2 live quizzes of 1 player and 3,000 bytes;
    // JWTs get the node's defaults unless their `quota` claim says otherwise.
    let keys = format!(
        "{}:live_quizzes=2:players=1:definition_bytes=3000",
        quizgate_testkit::API_KEY_ENTRY
    );
    let secret = "0f".repeat(32);
    let jwt_keys = format!("hs256:shared:{secret}");
    let env = [
        ("QUIZGATE_API_KEYS", keys.as_str()),
        ("QUIZGATE_JWT_KEYS", jwt_keys.as_str()),
        ("QUIZGATE_QUOTA_LIVE_QUIZZES", "3"),
    ];
    let a = redis_node(&redis.url(), &env).await?;
    let b = redis_node(&redis.url(), &env).await?;
    let key = quizgate_testkit::API_KEY;
    let def = sample_quiz(2, 60_000).to_string();

    let (status, first) = create_with(a.ws_addr, key, &def).await?;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        create_with(b.ws_addr, key, &def).await?.0,
        201,
        "on another node"
    );
    let (status, body) = create_with(a.ws_addr, key, &def).await?;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("quota_exceeded") && body.contains("2 live quizzes"),
        "{body}"
    );
    assert_eq!(refused(&a, "live_quizzes").await?, 1);

    // Its quizzes admit one player.
    let first: serde_json::Value = serde_json::from_str(&first)?;
    let code = first["code"].as_str().context("code")?;
    let token = first["host_token"].as_str().context("token")?;
    player(b.ws_addr, Encoding::Json, code, "ann").await?;
    let mut bob = Client::connect(a.ws_addr, Encoding::Json).await?;
    bob.send(json!({"t": "join", "code": code, "nickname": "bob"}))
        .await?;
    expect_error(&mut bob, "quiz_full").await?;

    // Its definitions hold 3,000 bytes.
    let big = sample_quiz(40, 60_000).to_string();
    assert!(big.len() > 3000);
    let (status, body) = create_with(a.ws_addr, key, &big).await?;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("3000 bytes"), "{body}");

    // Ending a quiz gives its place back, on any node.
    let (mut h, _) = host(a.ws_addr, code, token).await?;
    command(&mut h, "end").await?;
    assert_eq!(create_with(b.ws_addr, key, &def).await?.0, 201);
    assert_eq!(create_with(b.ws_addr, key, &def).await?.0, 403);

    // A JWT's own quota (1), and the node's default for one without (3).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let jwt = |sub: &str, quota: serde_json::Value| -> Result<String> {
        let claims = json!({"sub": sub, "aud": "quizgate", "exp": now + 300, "quota": quota});
        let key = EncodingKey::from_secret(&quizgate_jwt_secret(&secret));
        Ok(encode(&Header::new(Algorithm::HS256), &claims, &key)?)
    };
    let small = jwt("tenant-a", json!({"live_quizzes": 1}))?;
    assert_eq!(create_with(a.ws_addr, &small, &def).await?.0, 201);
    assert_eq!(create_with(b.ws_addr, &small, &def).await?.0, 403);
    let plain = jwt("tenant-b", json!({}))?;
    for want in [201, 201, 201, 403] {
        assert_eq!(create_with(a.ws_addr, &plain, &def).await?.0, want);
    }
    let odd = jwt("tenant-c", json!({"rooms": 9}))?;
    assert_eq!(
        create_with(a.ws_addr, &odd, &def).await?.0,
        401,
        "a quota claim the node cannot read"
    );
    Ok(())
}

#[tokio::test]
async fn hosts_create_quizzes_with_jwts_from_a_shared_or_a_public_key() -> Result<()> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    // An Ed25519 key pair, as an identity provider would have; the node gets
    // the public half only.
    let dir = std::env::temp_dir().join(format!("quizgate-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (private, public) = (dir.join("ed.pem"), dir.join("ed.pub.pem"));
    let genkey = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&private)
        .status()?;
    let pubkey = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()?;
    assert!(
        genkey.success() && pubkey.success(),
        "openssl made the key pair"
    );
    let secret = "0f".repeat(32);
    let keys = format!("hs256:shared:{secret},eddsa:idp:{}", public.display());
    let node = node(&[("QUIZGATE_JWT_KEYS", keys.as_str())]).await?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = |aud: &str, exp: u64, nbf: u64| json!({"sub": "host-app", "aud": aud, "exp": exp, "nbf": nbf});
    let hs = |claims: serde_json::Value| -> Result<String> {
        let key = EncodingKey::from_secret(&quizgate_jwt_secret(&secret));
        Ok(encode(&Header::new(Algorithm::HS256), &claims, &key)?)
    };
    let ed = |claims: serde_json::Value| -> Result<String> {
        let key = EncodingKey::from_ed_pem(&std::fs::read(&private)?)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("idp".into());
        Ok(encode(&header, &claims, &key)?)
    };
    let good = claims("quizgate", now + 300, now - 10);
    let cases = [
        (hs(good.clone())?, 201),
        (ed(good.clone())?, 201),
        (hs(claims("quizgate", now - 120, now - 300))?, 401), // expired
        (hs(claims("elsewhere", now + 300, now - 10))?, 401), // another audience
        (hs(claims("quizgate", now + 900, now + 600))?, 401), // not yet valid
        (hs(json!({"sub": "x", "aud": "quizgate"}))?, 401),   // no exp
        (format!("{}x", hs(good.clone())?), 401),             // tampered
        (
            // Signed with a key the node does not have.
            encode(
                &Header::new(Algorithm::HS256),
                &good,
                &EncodingKey::from_secret(&[7u8; 32]),
            )?,
            401,
        ),
    ];
    let def = sample_quiz(1, 10_000).to_string();
    for (token, want) in cases {
        let bearer = format!("Bearer {token}");
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", bearer.as_str()),
        ];
        let (status, body) = http_request_with(
            node.ws_addr,
            "POST",
            "/v1/quizzes",
            &headers,
            def.as_bytes(),
        )
        .await?;
        assert_eq!(status, want, "{token}: {body}");
    }
    assert!(
        node.logs()
            .iter()
            .any(|l| l.contains("quiz created") && l.contains("jwt:host-app")),
        "the token's subject is logged"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The HS256 secret's bytes, as the node reads `hs256:ID:SECRET-HEX`.
fn quizgate_jwt_secret(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_embedded_node_without_keys_is_open_and_says_so() -> Result<()> {
    let node = node(&[("QUIZGATE_API_KEYS", "")]).await?;
    let def = sample_quiz(1, 10_000).to_string();
    let json = [("Content-Type", "application/json")];
    let (status, body) =
        http_request_with(node.ws_addr, "POST", "/v1/quizzes", &json, def.as_bytes()).await?;
    assert_eq!(status, 201, "{body}");
    assert!(
        node.logs()
            .iter()
            .any(|l| l.contains("anyone who reaches the public port")),
        "{:?}",
        node.logs()
    );
    Ok(())
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_never_reach_redis() -> Result<()> {
    let redis = quizgate_testkit::RedisServer::start_ephemeral().await?;
    let node = redis_node(&redis.url(), &[("QUIZGATE_SESSION_TTL", "2s")]).await?;
    let addr = node.ws_addr;
    let (one, one_host) = create_quiz(addr, &sample_quiz(2, 60_000)).await?;
    let (two, two_host) = create_quiz(addr, &sample_quiz(2, 60_000)).await?;
    let (_ann, welcome) = player(addr, Encoding::Json, &one, "ann").await?;
    let ann = welcome.token.context("a player's welcome has a token")?;
    let (_bob, welcome) = player(addr, Encoding::Json, &two, "bob").await?;
    let bob = welcome.token.context("token")?;

    // The same quiz from another cluster: same key id, another secret.
    let other_redis = quizgate_testkit::RedisServer::start_ephemeral().await?;
    let other_key = "test:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let other = redis_node(&other_redis.url(), &[("QUIZGATE_SESSION_KEYS", other_key)]).await?;
    let (_, foreign_host) = create_quiz(other.ws_addr, &sample_quiz(1, 60_000)).await?;

    let scripts = || async { evalsha_calls(&redis).await };
    let before = scripts().await?;
    let mut c = Client::connect(addr, Encoding::Json).await?;
    let forged_player = ann.replacen(".1.", ".2.", 1);
    let cases = [
        (
            json!({"t": "resume", "token": forged_player, "last_seq": 0}),
            "forged",
        ),
        (
            json!({"t": "resume", "token": "ABC234.1.00", "last_seq": 0}),
            "not a session token",
        ),
        (
            json!({"t": "host", "code": one, "token": two_host}),
            "another quiz",
        ),
        (
            json!({"t": "host", "code": one, "token": ann}),
            "another quiz",
        ),
        (
            json!({"t": "resume", "token": one_host, "last_seq": 0}),
            "not a session token",
        ),
        (
            json!({"t": "host", "code": one, "token": foreign_host}),
            "forged",
        ),
    ];
    for (frame, want) in cases {
        c.send(frame.clone()).await?;
        let message = expect_error(&mut c, "invalid_token").await?;
        assert!(message.contains(want), "{frame}: {message}");
    }
    assert_eq!(scripts().await?, before, "no Redis call for a bad token");
    assert_eq!(refused(&node, "token").await?, 6);

    // A genuine token works until its expiry, then never again.
    resume(addr, Encoding::Json, &bob, 0).await?;
    let (mut host, _) = host(addr, &one, &one_host).await?;
    host.send(json!({"t": "ping"})).await?;
    quizgate_testkit::wait_until("the token expires", Duration::from_secs(5), || async {
        let mut c = Client::connect(addr, Encoding::Json).await?;
        c.send(json!({"t": "resume", "token": bob, "last_seq": 0}))
            .await?;
        match reply(&mut c).await? {
            ServerFrame::Error { message, .. } if message.contains("expired") => Ok(()),
            other => bail!("{other:?}"),
        }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn one_address_cannot_take_every_slot_guess_codes_or_flood_creations() -> Result<()> {
    let node = node(&[
        ("QUIZGATE_MAX_CONNECTIONS_PER_ADDRESS", "3"),
        ("QUIZGATE_JOINS_PER_ADDRESS", "2"),
        ("QUIZGATE_CREATES_PER_ADDRESS", "3"),
    ])
    .await?;
    let addr = node.ws_addr;
    let mut bystander = Bystander::start(addr).await?; // from 127.0.0.1
    let ip = |s: &str| -> Result<std::net::IpAddr> { Ok(s.parse()?) };

    // Connections: three from one address, not a fourth; others unaffected.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(Client::connect_from(ip("127.0.0.2")?, addr, Encoding::Json).await?);
    }
    let err = Client::connect_from(ip("127.0.0.2")?, addr, Encoding::Json)
        .await
        .expect_err("a fourth connection from one address");
    assert!(err.to_string().contains("429"), "{err}");
    drop(held.pop());
    quizgate_testkit::wait_until("a slot comes back", Duration::from_secs(2), || async {
        Client::connect_from(ip("127.0.0.2")?, addr, Encoding::Json).await
    })
    .await?;

    // Guessing codes: 20 attempts of burst, each miss costs 10.
    let mut guesser = Client::connect_from(ip("127.0.0.3")?, addr, Encoding::Json).await?;
    let (mut missed, mut limited) = (0, 0);
    for i in 0..10 {
        let code = format!("ZZZZ{}{}", (b'2' + i % 8) as char, (b'2' + i / 8) as char);
        guesser
            .send(json!({"t": "join", "code": code, "nickname": format!("g{i}")}))
            .await?;
        match reply(&mut guesser).await? {
            ServerFrame::Error { code, .. } if code.as_str() == "quiz_not_found" => missed += 1,
            ServerFrame::Error { code, .. } if code.as_str() == "rate_limited" => limited += 1,
            other => bail!("{other:?}"),
        }
    }
    assert_eq!((missed, limited), (2, 8), "two misses use the burst up");
    // A player from elsewhere still joins at once.
    let code = bystander.code.clone();
    let mut other = Client::connect_from(ip("127.0.0.4")?, addr, Encoding::MsgPack).await?;
    other
        .send(json!({"t": "join", "code": code, "nickname": "elsewhere"}))
        .await?;
    assert!(matches!(reply(&mut other).await?, ServerFrame::Welcome(_)));

    // Creations: the bystander's took one of three.
    for _ in 0..2 {
        create_quiz(addr, &sample_quiz(1, 10_000)).await?;
    }
    let (status, body) = http_request(
        addr,
        "POST",
        "/v1/quizzes",
        sample_quiz(1, 10_000).to_string().as_bytes(),
    )
    .await?;
    assert_eq!(
        (status, body.contains("rate_limited")),
        (429, true),
        "{body}"
    );

    assert!(refused(&node, "address_connections").await? >= 1);
    assert_eq!(refused(&node, "address_joins").await?, 8);
    assert_eq!(refused(&node, "address_creations").await?, 1);
    bystander.still_prompt().await?;
    Ok(())
}

#[tokio::test]
async fn behind_a_balancer_limits_apply_to_the_client_the_proxy_header_names() -> Result<()> {
    let node = node(&[
        ("QUIZGATE_PROXY_PROTOCOL", "true"),
        ("QUIZGATE_MAX_CONNECTIONS_PER_ADDRESS", "1"),
    ])
    .await?;
    let addr = node.ws_addr;
    // All from 127.0.0.1, as from a balancer; the headers name the clients.
    let via = |header: Vec<u8>| async move {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(&header).await?;
        Client::handshake_over(s, addr, Encoding::Json).await
    };
    let v1 = |ip: &str| format!("PROXY TCP4 {ip} 127.0.0.1 40000 8080\r\n").into_bytes();
    let _first = via(v1("203.0.113.7")).await?;
    let _second = via(v2(&[203, 0, 113, 8])).await?;
    let err = via(v1("203.0.113.7"))
        .await
        .expect_err("one connection per client address");
    assert!(err.to_string().contains("429"), "{err}");
    let err = via(v2(&[203, 0, 113, 8]))
        .await
        .expect_err("the v2 header names a client too");
    assert!(err.to_string().contains("429"), "{err}");
    // Without a header, or with garbage, the connection is closed.
    assert!(Client::connect(addr, Encoding::Json).await.is_err());
    assert!(via(b"PROXY NONSENSE\r\n".to_vec()).await.is_err());
    assert_eq!(refused(&node, "proxy_header").await?, 2);
    // HTTP comes through the header as well.
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&v1("203.0.113.9")).await?;
    s.write_all(b"GET /nothing HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n")
        .await?;
    let answer = read_to_end(&mut s).await?;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    Ok(())
}

/// A PROXY protocol v2 header for a TCP/IPv4 client.
fn v2(client: &[u8; 4]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]); // v2 PROXY, TCP over IPv4, 12 bytes
    h.extend_from_slice(client);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&8080u16.to_be_bytes());
    h
}

#[tokio::test]
async fn a_session_is_live_on_one_connection_the_newest_on_any_node() -> Result<()> {
    let redis = quizgate_testkit::RedisServer::start_ephemeral().await?;
    let a = redis_node(&redis.url(), &[]).await?;
    let b = redis_node(&redis.url(), &[]).await?;
    let (code, host_token) = create_quiz(a.ws_addr, &sample_quiz(2, 60_000)).await?;
    let (mut host, _) = host(a.ws_addr, &code, &host_token).await?;
    let (mut first, welcome) = player(a.ws_addr, Encoding::Json, &code, "ann").await?;
    let token = welcome.token.context("token")?;
    // On another node: the older connection there is closed.
    let (mut second, _) = resume(b.ws_addr, Encoding::MsgPack, &token, 0).await?;
    assert_eq!(
        first.closed().await?,
        4409,
        "the older connection, on the other node, is closed"
    );
    // The newer one plays on; a third on its node takes over in turn, and a
    // fourth back on the first node from that.
    host.send(json!({"t": "start"})).await?;
    second
        .recv_until("the question", |f| {
            matches!(f, ServerFrame::Question { .. })
        })
        .await?;
    let (mut third, _) = resume(b.ws_addr, Encoding::Json, &token, 0).await?;
    assert_eq!(second.closed().await?, 4409, "on the same node");
    let (mut fourth, _) = resume(a.ws_addr, Encoding::Json, &token, 0).await?;
    assert_eq!(third.closed().await?, 4409, "across nodes again");
    fourth.send(json!({"t": "ping"})).await?;
    assert!(matches!(
        reply(&mut fourth).await?,
        ServerFrame::Pong { .. }
    ));
    let closes = |node: &NodeProcess| {
        let admin = node.admin_addr;
        async move {
            let metrics = quizgate_testkit::http_request(admin, "GET", "/metrics", b"").await?;
            Ok::<_, anyhow::Error>(sample(&metrics.1, "quizgate_closes_total{code=\"4409\"}"))
        }
    };
    assert_eq!((closes(&a).await?, closes(&b).await?), (1.0, 2.0));
    Ok(())
}

/// Bots pour into a quiz; the host locks the lobby, removes one, and plays on.
async fn the_host_removes_players_and_locks_the_lobby(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let addr = node.ws_addr;
    let (code, host_token) = create_quiz(addr, &sample_quiz(2, 60_000)).await?;
    let (mut host, _) = host(addr, &code, &host_token).await?;
    let (mut ann, _) = player(addr, Encoding::Json, &code, "ann").await?;
    let mut bots = Vec::new();
    for i in 0..5 {
        let (bot, welcome) = player(addr, Encoding::MsgPack, &code, &format!("bot{i}")).await?;
        bots.push((
            bot,
            welcome.player_id.context("id")?,
            welcome.token.context("token")?,
        ));
    }
    command(&mut host, "lock").await?;
    let mut late = Client::connect(addr, Encoding::Json).await?;
    late.send(json!({"t": "join", "code": code, "nickname": "bot9"}))
        .await?;
    expect_error(&mut late, "quiz_locked").await?;

    let (mut bot, bot_id, bot_token) = bots.remove(0);
    host.send(json!({"t": "kick", "player_id": bot_id, "rid": 3}))
        .await?;
    assert!(matches!(reply(&mut host).await?, ServerFrame::Ack { .. }));
    let removed = ann
        .recv_until("the removal", |f| matches!(f, ServerFrame::Removed { .. }))
        .await?;
    assert!(matches!(removed, ServerFrame::Removed { player_id, .. } if player_id == bot_id));
    assert_eq!(bot.closed().await?, 4403);
    // The removed player cannot come back with its token.
    let mut back = Client::connect(addr, Encoding::Json).await?;
    back.send(json!({"t": "resume", "token": bot_token, "last_seq": 0}))
        .await?;
    expect_error(&mut back, "removed").await?;

    // The quiz goes on without it: everyone else answering closes a question.
    command(&mut host, "unlock").await?;
    command(&mut host, "start").await?;
    answer(&mut ann, 0, 0).await?;
    for (b, _, _) in &mut bots {
        answer(b, 0, 0).await?;
    }
    let reveal = ann
        .recv_until("the reveal", |f| matches!(f, ServerFrame::Reveal { .. }))
        .await?;
    assert!(
        matches!(reveal, ServerFrame::Reveal { answered: 5, .. }),
        "{reveal:?}"
    );
    let board = ann
        .recv_until("the leaderboard", |f| {
            matches!(f, ServerFrame::Leaderboard { .. })
        })
        .await?;
    let ServerFrame::Leaderboard { top, players, .. } = board else {
        bail!("{board:?}")
    };
    assert_eq!(players, 5);
    assert!(top.iter().all(|s| s.player_id != bot_id), "{top:?}");
    Ok(())
}

both!(the_host_removes_players_and_locks_the_lobby);

/// A self-signed certificate for `localhost` and its key, made by openssl.
fn self_signed(
    dir: &std::path::Path,
    name: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate (webpki refuses a CA as one).
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "openssl req");
    Ok((cert, key))
}

#[tokio::test]
async fn tls_clients_play_a_quiz_against_a_tls_node_through_a_certificate_change() -> Result<()> {
    use quizgate_testkit::{request_over, tls};
    let dir = std::env::temp_dir().join(format!("quizgate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (first_cert, first_key) = self_signed(&dir, "first")?;
    let (second_cert, second_key) = self_signed(&dir, "second")?;
    let (cert, key) = (dir.join("node.crt"), dir.join("node.key"));
    std::fs::copy(&first_cert, &cert)?;
    std::fs::copy(&first_key, &key)?;
    // The clients trust both certificates.
    let trust = dir.join("trust.pem");
    std::fs::write(
        &trust,
        [std::fs::read(&first_cert)?, std::fs::read(&second_cert)?].concat(),
    )?;
    let node = node(&[
        ("QUIZGATE_TLS_CERT", cert.to_str().context("path")?),
        ("QUIZGATE_TLS_KEY", key.to_str().context("path")?),
        ("QUIZGATE_TLS_RELOAD_INTERVAL", "100ms"),
    ])
    .await?;
    let addr = node.ws_addr;

    // Create over HTTPS, then host and play over WSS, in both encodings.
    let def = sample_quiz(2, 60_000).to_string();
    let key_header = bearer();
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", key_header.as_str()),
    ];
    let stream = tls::connect(addr, &trust).await?;
    let (status, body) = request_over(
        stream,
        addr,
        "POST",
        "/v1/quizzes",
        &headers,
        def.as_bytes(),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body)?;
    let (code, host_token) = (
        created["code"].as_str().context("code")?,
        created["host_token"].as_str().context("token")?,
    );
    let mut host = Client::connect_tls(addr, Encoding::Json, &trust).await?;
    host.send(json!({"t": "host", "code": code, "token": host_token}))
        .await?;
    assert!(matches!(reply(&mut host).await?, ServerFrame::Welcome(_)));
    let mut players = Vec::new();
    for (i, encoding) in [Encoding::Json, Encoding::MsgPack].into_iter().enumerate() {
        let mut p = Client::connect_tls(addr, encoding, &trust).await?;
        p.send(json!({"t": "join", "code": code, "nickname": format!("p{i}")}))
            .await?;
        assert!(matches!(reply(&mut p).await?, ServerFrame::Welcome(_)));
        players.push(p);
    }
    command(&mut host, "start").await?;
    for p in &mut players {
        p.recv_until("the question", |f| {
            matches!(f, ServerFrame::Question { .. })
        })
        .await?;
        answer(p, 0, 0).await?;
    }
    for p in &mut players {
        p.recv_until("the reveal", |f| matches!(f, ServerFrame::Reveal { .. }))
            .await?;
        p.recv_until("the leaderboard", |f| {
            matches!(f, ServerFrame::Leaderboard { .. })
        })
        .await?;
    }

    // A new certificate: new connections get it, live ones play on.
    let before = tls::peer_certificate(addr, &trust).await?;
    std::fs::copy(&second_cert, &cert)?;
    std::fs::copy(&second_key, &key)?;
    quizgate_testkit::wait_until(
        "the new certificate is served",
        Duration::from_secs(5),
        || async {
            let now = tls::peer_certificate(addr, &trust).await?;
            anyhow::ensure!(now != before, "still the first certificate");
            Ok(())
        },
    )
    .await?;
    command(&mut host, "next").await?;
    for p in &mut players {
        p.recv_until("the second question", |f| {
            matches!(f, ServerFrame::Question { .. })
        })
        .await?;
        p.send(json!({"t": "ping"})).await?;
        assert!(matches!(reply(p).await?, ServerFrame::Pong { .. }));
    }
    // A client that does not speak TLS gets nothing.
    assert!(Client::connect(addr, Encoding::Json).await.is_err());
    assert!(refused(&node, "tls").await? >= 1);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One masked client frame.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    let mask = [9u8, 8, 7, 6];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn the_echo_endpoint_for_conformance_suites_is_off_unless_asked() -> Result<()> {
    let off = node(&[]).await?;
    let refused = raw_websocket_on(off.ws_addr, "/ws/echo")
        .await
        .expect_err("off by default");
    assert!(refused.to_string().contains("404"), "{refused}");

    let on = node(&[("QUIZGATE_ECHO_ENDPOINT", "true")]).await?;
    let mut s = raw_websocket_on(on.ws_addr, "/ws/echo").await?;
    s.write_all(&client_frame(true, 0x1, b"hello")).await?;
    assert_eq!(raw_frame(&mut s).await?, (0x1, b"hello".to_vec()));
    s.write_all(&client_frame(true, 0x2, &[0, 159, 146, 150]))
        .await?;
    assert_eq!(raw_frame(&mut s).await?, (0x2, vec![0, 159, 146, 150]));
    // A fragmented message comes back whole; a ping is answered in between.
    s.write_all(&client_frame(false, 0x1, b"frag")).await?;
    s.write_all(&client_frame(true, 0x9, b"p")).await?;
    s.write_all(&client_frame(true, 0x0, b"mented")).await?;
    assert_eq!(raw_frame(&mut s).await?, (0xA, b"p".to_vec()));
    assert_eq!(raw_frame(&mut s).await?, (0x1, b"fragmented".to_vec()));
    // The /ws limits: too big, then (on another connection) not UTF-8.
    s.write_all(&client_frame(true, 0x2, &vec![7u8; 5000]))
        .await?;
    assert_eq!(raw_close_code(&mut s).await?, 1009);
    let mut s = raw_websocket_on(on.ws_addr, "/ws/echo").await?;
    s.write_all(&client_frame(true, 0x1, &[0xff, 0xfe])).await?;
    assert_eq!(raw_close_code(&mut s).await?, 1007);
    Ok(())
}

#[tokio::test]
async fn the_costliest_frames_from_many_connections_leave_a_quiz_prompt() -> Result<()> {
    let node = node(&[]).await?;
    let addr = node.ws_addr;
    let mut bystander = Bystander::start(addr).await?;
    // The worst 4 KiB frames there are for each decoder (docs/benchmarks.md):
    // MessagePack map32/array32 headers declaring 2^32-1 elements, a map of
    // 2,000 tiny fields, and a JSON object of 380 fields.
    let mut headers = vec![0x82, 0xa1, b't', 0xa4, b'j', b'o', b'i', b'n', 0xa1, b'x'];
    headers.extend(std::iter::repeat_n([0xdd, 0xff, 0xff, 0xff, 0xff], 800).flatten());
    headers.truncate(4096);
    let mut wide = vec![0xde, 0x07, 0xd0];
    for i in 0..2000u32 {
        wide.extend_from_slice(&[0xa1, b'a' + (i % 26) as u8, (i % 128) as u8]);
    }
    wide.truncate(4096);
    let fields: Vec<String> = (0..380).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let json_frame = format!(r#"{{"t":"join",{}}}"#, fields.join(","));
    let mut attackers = Vec::new();
    for i in 0..30 {
        let encoding = if i % 3 == 2 {
            Encoding::Json
        } else {
            Encoding::MsgPack
        };
        attackers.push((Client::connect(addr, encoding).await?, i));
    }
    for round in 0..20 {
        for (c, i) in &mut attackers {
            let msg = match *i % 3 {
                0 => Message::binary(headers.clone()),
                1 => Message::binary(wide.clone()),
                _ => Message::text(json_frame.clone()),
            };
            c.send_raw(msg).await?;
        }
        if round % 5 == 4 {
            bystander.still_prompt().await?;
        }
    }
    // Each got its errors (malformed or invalid), none took the node down.
    for (c, _) in &mut attackers {
        let got = reply(c).await?;
        assert!(matches!(got, ServerFrame::Error { .. }), "{got:?}");
    }
    bystander.still_prompt().await?;
    Ok(())
}

/// How many scripts Redis ran (every quiz rule is one `EVALSHA`).
async fn evalsha_calls(redis: &quizgate_testkit::RedisServer) -> Result<u64> {
    let stats = redis.cli(&["INFO", "commandstats"]).await?;
    Ok(stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(Ok(0), str::parse)?)
}

/// The `Authorization` value for the kit's API key.
fn bearer() -> String {
    format!("Bearer {}", quizgate_testkit::API_KEY)
}

/// Everything the server sends until it closes (bounded by the kit's wait).
async fn read_to_end(s: &mut TcpStream) -> Result<String> {
    let mut out = Vec::new();
    tokio::time::timeout(quizgate_testkit::WAIT, s.read_to_end(&mut out))
        .await
        .context("the server did not close")??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
