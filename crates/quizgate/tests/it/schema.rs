//! `docs/protocol.schema.json` against a real node, in both encodings: every
//! frame the node sends fits `ServerFrame` (which allows no unlisted field),
//! every client frame the node accepts fits `ClientFrame`, and every one it
//! refuses as malformed or invalid does not.

use std::collections::BTreeSet;

use anyhow::{Context, Result, anyhow, bail};
use boon::{Compiler, SchemaIndex, Schemas};
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::{Client, create_quiz, sample_quiz};
use serde_json::{Value, json};

use crate::support::{node, reply};

const SCHEMA_URL: &str = "urn:quizgate:protocol:v1";

struct Schema {
    schemas: Schemas,
    client: SchemaIndex,
    server: SchemaIndex,
    /// The `t` of every server frame the schema describes.
    server_types: BTreeSet<String>,
}

impl Schema {
    fn load() -> Result<Self> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/protocol.schema.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let server_types = doc["$defs"]["ServerFrame"]["oneOf"]
            .as_array()
            .context("ServerFrame.oneOf")?
            .iter()
            .filter_map(|r| r["$ref"].as_str()?.strip_prefix("#/$defs/"))
            .filter_map(|name| doc["$defs"][name]["properties"]["t"]["const"].as_str())
            .map(str::to_owned)
            .collect();
        let mut schemas = Schemas::new();
        let mut compiler = Compiler::new();
        compiler
            .add_resource(SCHEMA_URL, doc)
            .map_err(|e| anyhow!("{e}"))?;
        let mut compile = |def: &str| {
            compiler
                .compile(&format!("{SCHEMA_URL}#/$defs/{def}"), &mut schemas)
                .map_err(|e| anyhow!("{def}: {e}"))
        };
        let (client, server) = (compile("ClientFrame")?, compile("ServerFrame")?);
        Ok(Self {
            schemas,
            client,
            server,
            server_types,
        })
    }

    fn fits(&self, index: SchemaIndex, frame: &Value) -> Result<(), String> {
        self.schemas
            .validate(frame, index)
            .map_err(|e| format!("{e:#}"))
    }
}

/// The error codes with which the node refuses a frame the schema must refuse too.
const REFUSED: &[&str] = &[
    "malformed_frame",
    "unknown_type",
    "invalid_frame",
    "invalid_code",
    "invalid_nickname",
];

/// Client frames sent, each with whether the node accepted it.
#[derive(Default)]
struct Sent(Vec<(Value, bool)>);

impl Sent {
    /// Sends `frame`, reads the node's reply to it (skipping broadcasts) and
    /// checks that the reply is a `t` frame.
    async fn exchange(&mut self, c: &mut Client, frame: Value, t: &str) -> Result<ServerFrame> {
        c.send(frame.clone()).await?;
        let got = reply(c).await?;
        let refused =
            matches!(&got, ServerFrame::Error { code, .. } if REFUSED.contains(&code.as_str()));
        self.0.push((frame, !refused));
        let value = serde_json::to_value(&got)?;
        if value["t"] != t {
            bail!("expected {t}, got {value}");
        }
        Ok(got)
    }
}

/// A whole quiz with every reply, broadcast and error the schema lists.
async fn play(
    addr: std::net::SocketAddr,
    encoding: Encoding,
    sent: &mut Sent,
) -> Result<Vec<Client>> {
    let (code, token) = create_quiz(addr, &sample_quiz(2, 60_000)).await?;
    let mut host = Client::connect(addr, encoding).await?;
    let mut ann = Client::connect(addr, encoding).await?;
    let mut bob = Client::connect(addr, encoding).await?;
    let mut odd = Client::connect(addr, encoding).await?;

    // Refused before any join.
    for frame in [
        json!({"t": 1, "rid": 1}),
        json!({"rid": 2}),
        json!({"t": "dance", "rid": 3}),
        json!({"t": "answer", "question": -1, "choice": 0, "rid": 4}),
        json!({"t": "answer", "question": 0, "choice": 256}),
        json!({"t": "answer", "question": 0}),
        json!({"t": "join", "code": code, "nickname": 7}),
        json!({"t": "join", "code": "0OIL1U", "nickname": "zed"}),
        json!({"t": "join", "code": code, "nickname": "   "}),
        json!({"t": "join", "code": code, "nickname": "z\u{200B}ed"}),
        json!({"t": "join", "code": code, "nickname": "z\u{061C}ed"}),
        json!({"t": "resume", "token": "x", "last_seq": -1}),
        json!({"t": "ping", "rid": 1_u64 << 60}),
    ] {
        sent.exchange(&mut odd, frame, "error").await?;
    }
    // Accepted, though the answer is an error: no such quiz, no join.
    sent.exchange(
        &mut odd,
        json!({"t": "answer", "question": 0, "choice": 0, "rid": 5, "mine": true}),
        "error",
    )
    .await?;
    sent.exchange(&mut odd, json!({"t": "ping", "rid": 6}), "pong")
        .await?;
    sent.exchange(
        &mut odd,
        json!({"t": "join", "code": "ZZZZZZ", "nickname": "zed"}),
        "error",
    )
    .await?;

    let lower = code.to_lowercase();
    sent.exchange(
        &mut host,
        json!({"t": "host", "code": lower, "token": token, "rid": 1}),
        "welcome",
    )
    .await?;
    sent.exchange(
        &mut ann,
        json!({"t": "join", "code": code, "nickname": "ann", "rid": 1}),
        "welcome",
    )
    .await?;
    let welcome = sent
        .exchange(
            &mut bob,
            json!({"t": "join", "code": code, "nickname": "bob"}),
            "welcome",
        )
        .await?;
    let ServerFrame::Welcome(w) = welcome else {
        bail!("bob: {welcome:?}")
    };
    let bob_token = w.token.context("bob's token")?;
    sent.exchange(
        &mut odd,
        json!({"t": "join", "code": code, "nickname": "ANN"}),
        "error",
    )
    .await?;
    // In the lobby the host hears the player count.
    host.recv_until("progress in the lobby", |f| {
        matches!(
            f,
            ServerFrame::Progress {
                players: 2,
                index: None,
                ..
            }
        )
    })
    .await?;
    // The host removes a third player and locks the lobby for a while.
    let mut cy = Client::connect(addr, encoding).await?;
    let welcome = sent
        .exchange(
            &mut cy,
            json!({"t": "join", "code": code, "nickname": "cy"}),
            "welcome",
        )
        .await?;
    let ServerFrame::Welcome(w) = welcome else {
        bail!("cy: {welcome:?}")
    };
    let cy_id = w.player_id.context("cy's id")?;
    sent.exchange(&mut host, json!({"t": "kick", "rid": 5}), "error")
        .await?;
    sent.exchange(&mut host, json!({"t": "kick", "player_id": 99}), "error")
        .await?;
    sent.exchange(&mut host, json!({"t": "kick", "player_id": cy_id}), "ack")
        .await?;
    assert_eq!(
        cy.closed().await?,
        4403,
        "a removed player's connection closes"
    );
    sent.exchange(&mut host, json!({"t": "lock", "rid": 6}), "ack")
        .await?;
    sent.exchange(
        &mut odd,
        json!({"t": "join", "code": code, "nickname": "dee"}),
        "error",
    )
    .await?;
    sent.exchange(&mut host, json!({"t": "unlock"}), "ack")
        .await?;
    sent.exchange(&mut host, json!({"t": "next", "rid": 2}), "error")
        .await?;
    sent.exchange(&mut ann, json!({"t": "start"}), "error")
        .await?;
    sent.exchange(
        &mut ann,
        json!({"t": "answer", "question": 0, "choice": 0}),
        "answer_result",
    )
    .await?;

    sent.exchange(&mut host, json!({"t": "start", "rid": 3}), "ack")
        .await?;
    sent.exchange(
        &mut ann,
        json!({"t": "answer", "question": 0, "choice": 0, "rid": 2}),
        "answer_result",
    )
    .await?;
    sent.exchange(
        &mut ann,
        json!({"t": "answer", "question": 0, "choice": 1}),
        "answer_result",
    )
    .await?;
    // The host hears how many have answered.
    host.recv_until("progress", |f| {
        matches!(
            f,
            ServerFrame::Progress {
                answered: Some(1),
                ..
            }
        )
    })
    .await?;
    sent.exchange(
        &mut bob,
        json!({"t": "answer", "question": 0, "choice": 9}),
        "error",
    )
    .await?;
    sent.exchange(
        &mut bob,
        json!({"t": "answer", "question": 1, "choice": 0}),
        "answer_result",
    )
    .await?;
    // Bob's answer closes the question: reveal, leaderboard, standings.
    sent.exchange(
        &mut bob,
        json!({"t": "answer", "question": 0, "choice": 2}),
        "answer_result",
    )
    .await?;
    ann.recv_until("a standing", |f| matches!(f, ServerFrame::Standing { .. }))
        .await?;

    sent.exchange(&mut host, json!({"t": "next"}), "ack")
        .await?;
    sent.exchange(&mut host, json!({"t": "skip"}), "ack")
        .await?;
    sent.exchange(
        &mut ann,
        json!({"t": "answer", "question": 1, "choice": 1}),
        "answer_result",
    )
    .await?;
    // Bob comes back on a new connection and is replayed what he missed.
    drop(bob);
    let mut bob = Client::connect(addr, encoding).await?;
    sent.exchange(
        &mut bob,
        json!({"t": "resume", "token": bob_token, "last_seq": 1, "rid": 7}),
        "welcome",
    )
    .await?;
    sent.exchange(&mut host, json!({"t": "end", "rid": 4}), "ack")
        .await?;
    for c in [&mut host, &mut ann, &mut bob] {
        c.recv_until("ended", |f| matches!(f, ServerFrame::Ended { .. }))
            .await?;
    }
    ann.recv_until("the final standing", |f| {
        matches!(f, ServerFrame::Standing { .. })
    })
    .await?;
    Ok(vec![host, ann, bob, odd])
}

#[tokio::test]
async fn the_schema_describes_every_frame_a_node_sends_and_accepts() -> Result<()> {
    let schema = Schema::load()?;
    let node = node(&[]).await?;
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        let mut sent = Sent::default();
        let clients = play(node.ws_addr, encoding, &mut sent).await?;

        let mut seen = BTreeSet::new();
        for value in clients.iter().flat_map(|c| &c.received) {
            if let Err(e) = schema.fits(schema.server, value) {
                bail!("{encoding:?}: the node sent a frame outside the schema: {value}\n{e}");
            }
            seen.insert(value["t"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(
            seen, schema.server_types,
            "{encoding:?}: every server frame type was seen"
        );

        let (mut accepted, mut refused) = (0, 0);
        for (frame, ok) in &sent.0 {
            match (ok, schema.fits(schema.client, frame)) {
                (true, Ok(())) => accepted += 1,
                (false, Err(_)) => refused += 1,
                (true, Err(e)) => {
                    bail!("{encoding:?}: accepted by the node, refused by the schema: {frame}\n{e}")
                }
                (false, Ok(())) => {
                    bail!("{encoding:?}: refused by the node, accepted by the schema: {frame}")
                }
            }
        }
        assert!(
            accepted >= 20 && refused >= 12,
            "{encoding:?}: {accepted} accepted, {refused} refused"
        );
    }
    Ok(())
}
