//! The points of `docs/protocol.md` a third-party client author relies on,
//! each tried from outside on both backplanes.

use anyhow::{Result, bail};
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::tungstenite::Message;
use quizgate_testkit::{Client, create_quiz, http_request, sample_quiz};
use serde_json::json;

use crate::support::{Backend, both, command, host, node_on, player, reply, resume};

/// The next reply must be an error with this code echoing this rid; returns its message.
async fn error_with_rid(c: &mut Client, code: &str, rid: u64) -> Result<String> {
    match reply(c).await? {
        ServerFrame::Error {
            code: got,
            message,
            rid: got_rid,
        } if got.as_str() == code && got_rid == Some(rid) => Ok(message),
        other => bail!("expected error {code} with rid {rid}, got {other:?}"),
    }
}

fn msgpack(v: serde_json::Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&v).expect("encode")
}

async fn every_error_echoes_the_rid_and_names_the_field(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[("QUIZGATE_FRAMES_PER_SECOND", "1000")]).await?;
    let addr = node.ws_addr;
    let (code, _) = create_quiz(addr, &sample_quiz(1, 30_000)).await?;
    let mut c = Client::connect(addr, Encoding::Json).await?;
    let cases: &[(&str, &str, u64, &str)] = &[
        (r#"{"t": "dance", "rid": 7}"#, "unknown_type", 7, "dance"),
        (
            r#"{"t": "answer", "question": 0, "choice": "b", "rid": 8}"#,
            "invalid_frame",
            8,
            r#""choice" must be an integer from 0 to 255, got a string"#,
        ),
        (
            r#"{"t": "answer", "question": 0, "choice": 300, "rid": 9}"#,
            "invalid_frame",
            9,
            r#""choice" must be an integer from 0 to 255, got 300"#,
        ),
        (
            r#"{"t": "join", "code": "ABC234", "rid": 10}"#,
            "invalid_frame",
            10,
            r#""nickname" is missing: a string"#,
        ),
        (r#"{"rid": 11}"#, "malformed_frame", 11, "no field \"t\""),
        (
            r#"{"t": 0, "rid": 12}"#,
            "malformed_frame",
            12,
            "\"t\" is an integer",
        ),
        (r#"{"t": "start", "rid": 13}"#, "not_joined", 13, "host"),
    ];
    for (raw, want, rid, needle) in cases {
        c.send_raw(Message::text(*raw)).await?;
        let message = error_with_rid(&mut c, want, *rid).await?;
        assert!(message.contains(needle), "{raw}: {message}");
        assert!(!message.contains("u8"), "no Rust types: {message}");
    }

    // MessagePack follows the same rules: an integer `t` is no variant index.
    let mut m = Client::connect(addr, Encoding::MsgPack).await?;
    m.send_raw(Message::binary(msgpack(
        json!({"t": 0, "code": code, "nickname": "sneaky", "rid": 20}),
    )))
    .await?;
    error_with_rid(&mut m, "malformed_frame", 20).await?;
    let mut trailing = msgpack(json!({"t": "ping", "rid": 21}));
    trailing.push(0xc0);
    let array = msgpack(json!(["ping"]));
    let int_key = vec![0x81, 0x00, 0xa4, b'p', b'i', b'n', b'g'];
    for bad in [trailing, array, int_key] {
        m.send_raw(Message::binary(bad.clone())).await?;
        match reply(&mut m).await? {
            ServerFrame::Error { code, .. } if code.as_str() == "malformed_frame" => {}
            other => bail!("{bad:x?}: {other:?}"),
        }
    }
    m.send(json!({"t": "ping", "rid": 22})).await?;
    assert!(matches!(
        reply(&mut m).await?,
        ServerFrame::Pong { rid: Some(22), .. }
    ));

    // A nickname with an invisible character from Unicode's lists.
    c.send(json!({"t": "join", "code": code, "nickname": "ann\u{061C}", "rid": 30}))
        .await?;
    error_with_rid(&mut c, "invalid_nickname", 30).await?;
    Ok(())
}

async fn rate_limited_frames_echo_their_rid(backend: Backend) -> Result<()> {
    // 1 frame/s, bursts of 2: the third frame at once is dropped.
    let node = node_on(backend, &[("QUIZGATE_FRAMES_PER_SECOND", "1")]).await?;
    let mut c = Client::connect(node.ws_addr, Encoding::Json).await?;
    for rid in 1..=3 {
        c.send(json!({"t": "ping", "rid": rid})).await?;
    }
    for rid in 1..=2 {
        assert!(matches!(reply(&mut c).await?, ServerFrame::Pong { rid: Some(r), .. } if r == rid));
    }
    error_with_rid(&mut c, "rate_limited", 3).await?;
    Ok(())
}

async fn hosts_resume_and_a_resume_from_the_future_gets_a_snapshot(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let addr = node.ws_addr;
    let (code, token) = create_quiz(addr, &sample_quiz(2, 30_000)).await?;
    let (mut h, welcome) = host(addr, &code, &token).await?;
    assert_eq!(welcome.resumed, None, "a first host is no resume");
    let (p, pw) = player(addr, Encoding::Json, &code, "ann").await?;
    let player_token = pw.token.clone().unwrap_or_default();
    command(&mut h, "start").await?;
    let seen = welcome.quiz.seq;
    drop(h);

    // The host comes back with the last seq it saw: the question follows.
    let mut h2 = Client::connect(addr, Encoding::MsgPack).await?;
    h2.send(json!({"t": "host", "code": code, "token": token, "last_seq": seen}))
        .await?;
    let ServerFrame::Welcome(w) = h2.recv().await? else {
        bail!("no welcome")
    };
    assert_eq!(w.resumed, Some(true));
    let q = h2
        .recv_until("the missed question", |f| {
            matches!(f, ServerFrame::Question { .. })
        })
        .await?;
    assert_eq!(
        q.seq(),
        Some(seen + 1),
        "exactly the missed events, in order"
    );
    command(&mut h2, "skip").await?;

    // A player claiming events the quiz never had gets a fresh snapshot.
    drop(p);
    let (_, w) = resume(addr, Encoding::Json, &player_token, 1_000).await?;
    assert_eq!(w.resumed, Some(false), "last_seq beyond the quiz's seq");
    assert!(w.quiz.seq < 1_000);
    Ok(())
}

async fn definition_errors_name_the_field(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let addr = node.ws_addr;
    let question = |correct: serde_json::Value| json!({"questions": [{"text": "q", "choices": ["a", "b"], "correct": correct}]});
    let cases = [
        (
            question(json!(-1)),
            "questions[0].correct",
            "integer from 0 to 255",
        ),
        (
            question(json!("1")),
            "questions[0].correct",
            "integer from 0 to 255",
        ),
        (json!({"title": 5, "questions": []}), "title", "string"),
        (
            json!({"questions": [{"text": "q", "choices": ["a", "b"], "correct": 0, "colour": 1}]}),
            "questions[0].colour",
            "unknown field",
        ),
        (json!({"questions": 3}), "questions", "an array"),
    ];
    for (body, field, words) in cases {
        let (status, text) =
            http_request(addr, "POST", "/v1/quizzes", body.to_string().as_bytes()).await?;
        assert_eq!(status, 400, "{body}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["error"], "invalid_definition", "{body}: {text}");
        assert_eq!(v["field"], field, "{body}: {text}");
        assert!(text.contains(words), "{body}: {text}");
    }
    Ok(())
}

both!(every_error_echoes_the_rid_and_names_the_field);
both!(rate_limited_frames_echo_their_rid);
both!(hosts_resume_and_a_resume_from_the_future_gets_a_snapshot);
both!(definition_errors_name_the_field);
