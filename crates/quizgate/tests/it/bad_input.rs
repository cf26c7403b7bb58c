use anyhow::Result;
use quizgate_protocol::{AnswerStatus, Encoding, ServerFrame};
use quizgate_testkit::tungstenite::Message;
use quizgate_testkit::tungstenite::protocol::frame::Frame;
use quizgate_testkit::tungstenite::protocol::frame::coding::{Data, OpCode};
use quizgate_testkit::{Client, create_quiz, http_request, sample_quiz};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::support::{
    Backend, both, expect_error, host, node_on, player, raw_close_code, raw_websocket, reply,
};

/// Every kind of bad frame, each on its own connection, while a quiz is running:
/// each gets its error or close code, and the quiz goes on for the others.
async fn bad_frames_get_clear_errors_and_the_quiz_goes_on(backend: Backend) -> Result<()> {
    // A generous rate limit, so that only the rules under test answer.
    let node = node_on(backend, &[("QUIZGATE_FRAMES_PER_SECOND", "1000")]).await?;
    let addr = node.ws_addr;
    let (code, token) = create_quiz(addr, &sample_quiz(2, 30_000)).await?;
    let (mut host, _) = host(addr, &code, &token).await?;
    let (mut good, _) = player(addr, Encoding::MsgPack, &code, "good").await?;
    let (mut other, _) = player(addr, Encoding::Json, &code, "other").await?;

    // Out of phase: next in the lobby; answers before the first question.
    host.send(json!({"t": "next"})).await?;
    expect_error(&mut host, "wrong_phase").await?;
    other
        .send(json!({"t": "answer", "question": 0, "choice": 0}))
        .await?;
    assert!(
        matches!(reply(&mut other).await?, ServerFrame::AnswerResult(r) if r.status == AnswerStatus::WrongPhase)
    );
    host.send(json!({"t": "start"})).await?;
    assert!(matches!(reply(&mut host).await?, ServerFrame::Ack { .. }));

    // Frame-level errors answer with an error frame and keep the connection.
    let json_cases: &[(&str, &str)] = &[
        ("{", "malformed_frame"),
        ("[1, 2, 3]", "malformed_frame"),
        (r#"{"type": "join"}"#, "malformed_frame"),
        (r#"{"t": "dance"}"#, "unknown_type"),
        (r#"{"t": "join", "code": "ABC234"}"#, "invalid_frame"),
        (
            r#"{"t": "answer", "question": 0, "choice": "b"}"#,
            "invalid_frame",
        ),
        (
            r#"{"t": "answer", "question": 0, "choice": 0}"#,
            "not_joined",
        ),
        (r#"{"t": "start"}"#, "not_joined"),
    ];
    let mut c = Client::connect(addr, Encoding::Json).await?;
    for (raw, want) in json_cases {
        c.send_raw(Message::text(*raw)).await?;
        let message = expect_error(&mut c, want).await?;
        assert!(!message.is_empty(), "{raw}");
    }
    let missing = {
        c.send_raw(Message::text(r#"{"t": "join", "code": "ABC234"}"#))
            .await?;
        expect_error(&mut c, "invalid_frame").await?
    };
    assert!(
        missing.contains("nickname"),
        "the message names the missing field: {missing}"
    );

    // Joining wrong.
    let join_cases: &[(&str, &str, &str)] = &[
        ("ZZZZZZ", "ann", "quiz_not_found"),
        ("nope", "ann", "invalid_code"),
        (&code, "", "invalid_nickname"),
        (&code, "   ", "invalid_nickname"),
        (
            &code,
            "a-name-that-is-far-too-long-for-a-leaderboard",
            "invalid_nickname",
        ),
        (&code, "bell\u{7}", "invalid_nickname"),
        (&code, "evil\u{202E}", "invalid_nickname"),
        (&code, "GOOD", "nickname_taken"),
    ];
    for (quiz, nick, want) in join_cases {
        c.send(json!({"t": "join", "code": quiz, "nickname": nick}))
            .await?;
        expect_error(&mut c, want).await?;
    }
    c.send(json!({"t": "host", "code": code, "token": "not-the-token"}))
        .await?;
    expect_error(&mut c, "invalid_token").await?;
    c.send(json!({"t": "resume", "token": format!("{code}.1.{}", "0".repeat(32)), "last_seq": 0}))
        .await?;
    expect_error(&mut c, "invalid_token").await?;
    c.send(json!({"t": "resume", "token": "garbage", "last_seq": 0}))
        .await?;
    expect_error(&mut c, "invalid_token").await?;

    // A player: host commands, a bad choice, joining twice.
    let (mut p, _) = player(addr, Encoding::Json, &code, "pat").await?;
    for t in ["start", "next", "skip", "end"] {
        p.send(json!({"t": t})).await?;
        expect_error(&mut p, "not_host").await?;
    }
    p.send(json!({"t": "answer", "question": 0, "choice": 5}))
        .await?;
    expect_error(&mut p, "invalid_choice").await?;
    p.send(json!({"t": "join", "code": code, "nickname": "pat2"}))
        .await?;
    expect_error(&mut p, "already_joined").await?;
    p.send(json!({"t": "ping", "rid": 4})).await?;
    assert!(
        matches!(reply(&mut p).await?, ServerFrame::Pong { rid: Some(4), .. }),
        "still served"
    );

    // MessagePack that does not decode.
    let mut m = Client::connect(addr, Encoding::MsgPack).await?;
    m.send_raw(Message::binary(vec![0xc1, 0x00])).await?;
    expect_error(&mut m, "malformed_frame").await?;
    m.send(json!({"t": "join", "code": code})).await?;
    expect_error(&mut m, "invalid_frame").await?;

    // Transport-level errors close with the matching code.
    let mut wrong_type = Client::connect(addr, Encoding::Json).await?;
    wrong_type.send_raw(Message::binary(vec![1, 2, 3])).await?;
    assert_eq!(
        wrong_type.closed().await?,
        1003,
        "binary frame on a JSON connection"
    );
    let mut wrong_type = Client::connect(addr, Encoding::MsgPack).await?;
    wrong_type.send_raw(Message::text("{}")).await?;
    assert_eq!(
        wrong_type.closed().await?,
        1003,
        "text frame on a MessagePack connection"
    );
    let mut too_big = Client::connect(addr, Encoding::Json).await?;
    too_big
        .send_raw(Message::text(format!(
            r#"{{"t":"ping","pad":"{}"}}"#,
            "x".repeat(8192)
        )))
        .await?;
    assert_eq!(too_big.closed().await?, 1009);
    let mut bad_utf8 = Client::connect(addr, Encoding::Json).await?;
    bad_utf8
        .send_raw(Message::Frame(Frame::message(
            vec![0xff, 0xfe, 0xfd],
            OpCode::Data(Data::Text),
            true,
        )))
        .await?;
    assert_eq!(bad_utf8.closed().await?, 1007);
    let mut unmasked = raw_websocket(addr).await?;
    unmasked.write_all(&[0x81, 0x02, b'h', b'i']).await?; // a client frame must be masked
    assert_eq!(raw_close_code(&mut unmasked).await?, 1002);
    let mut spammer = Client::connect(addr, Encoding::Json).await?;
    for _ in 0..21 {
        spammer.send_raw(Message::text("{")).await?;
    }
    assert_eq!(spammer.closed().await?, 1008, "too many bad frames");

    // Meanwhile the quiz went on: the good players answer and see the reveal.
    for c in [&mut good, &mut other] {
        c.recv_until("question 0", |f| matches!(f, ServerFrame::Question { .. }))
            .await?;
    }
    good.send(json!({"t": "answer", "question": 0, "choice": 0}))
        .await?;
    assert!(
        matches!(reply(&mut good).await?, ServerFrame::AnswerResult(r) if r.status == AnswerStatus::Accepted)
    );
    host.send(json!({"t": "skip"})).await?;
    for c in [&mut good, &mut other] {
        c.recv_until("reveal", |f| matches!(f, ServerFrame::Reveal { .. }))
            .await?;
    }
    other
        .send(json!({"t": "answer", "question": 0, "choice": 0}))
        .await?;
    assert!(
        matches!(reply(&mut other).await?, ServerFrame::AnswerResult(r) if r.status == AnswerStatus::Late),
        "answer to a closed question"
    );
    Ok(())
}

async fn flooding_is_rate_limited(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[("QUIZGATE_FRAMES_PER_SECOND", "5")]).await?;
    let mut c = Client::connect(node.ws_addr, Encoding::Json).await?;
    for i in 0..15 {
        c.send(json!({"t": "ping", "rid": i})).await?;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..15 {
        match reply(&mut c).await? {
            ServerFrame::Pong { .. } => pongs += 1,
            ServerFrame::Error { code, .. } if code.as_str() == "rate_limited" => limited += 1,
            other => anyhow::bail!("{other:?}"),
        }
    }
    assert_eq!(
        (pongs, limited),
        (10, 5),
        "a burst of twice the rate, then errors"
    );
    Ok(())
}

async fn subprotocols_choose_the_encoding(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let (_, chosen) = Client::connect_with(node.ws_addr, None).await?;
    assert_eq!(chosen, None, "no subprotocol: JSON");
    let (_, chosen) = Client::connect_with(node.ws_addr, Some("mqtt, quizgate.v1.msgpack")).await?;
    assert_eq!(chosen.as_deref(), Some("quizgate.v1.msgpack"));
    let refused = Client::connect_with(node.ws_addr, Some("mqtt")).await;
    let err = refused
        .expect_err("unknown subprotocol is refused")
        .to_string();
    assert!(err.contains("400"), "{err}");
    Ok(())
}

async fn the_quiz_api_explains_bad_requests(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let addr = node.ws_addr;
    let mut bad_def = sample_quiz(2, 10_000);
    bad_def["questions"][1]["correct"] = json!(7);
    let huge = vec![b' '; 300 * 1024];
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "POST",
            "/v1/quizzes",
            b"{not json".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/v1/quizzes",
            br#"{"questions": []}"#.to_vec(),
            400,
            "invalid_definition",
        ),
        (
            "POST",
            "/v1/quizzes",
            bad_def.to_string().into_bytes(),
            400,
            "questions[1].correct",
        ),
        (
            "POST",
            "/v1/quizzes",
            br#"{"questions": [], "colour": 1}"#.to_vec(),
            400,
            "unknown field",
        ),
        ("POST", "/v1/quizzes", huge, 413, "too_large"),
        ("GET", "/v1/quizzes", Vec::new(), 405, "method_not_allowed"),
        ("POST", "/v2/everything", Vec::new(), 404, "not_found"),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, text) = http_request(addr, method, path, &body).await?;
        assert_eq!(got, status, "{method} {path}: {text}");
        assert!(text.contains(needle), "{method} {path}: {text}");
    }
    let (status, body) = http_request(
        addr,
        "POST",
        "/v1/quizzes",
        sample_quiz(1, 10_000).to_string().as_bytes(),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let code = v["code"].as_str().unwrap_or_default();
    assert_eq!(code.len(), 6);
    assert!(
        code.chars()
            .all(|ch| quizgate_domain::JOIN_CODE_ALPHABET.contains(ch)),
        "{code}"
    );
    Ok(())
}

both!(bad_frames_get_clear_errors_and_the_quiz_goes_on);
both!(flooding_is_rate_limited);
both!(subprotocols_choose_the_encoding);
both!(the_quiz_api_explains_bad_requests);
