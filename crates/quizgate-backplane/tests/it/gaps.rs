//! The Redis subscriber when Pub/Sub loses a message: the quiz's events still
//! reach the sink gapless and in order (the gap is read from the log), and a
//! quiz whose gap cannot be read holds back only itself.

use std::sync::Arc;

use anyhow::Result;
use quizgate_backplane::{Backplane, CreateLimits, RedisBackplane, RedisConfig};
use quizgate_domain::{Event, HostCommand, JoinCode, Sequenced};
use quizgate_testkit::RedisServer;

use crate::recorder::Recorder;

fn lost_event() -> Event {
    Event::Leaderboard {
        top: Vec::new(),
        players: 0,
    }
}

/// A leaderboard event as the scripts would write it.
fn leaderboard(seq: u64) -> Result<String> {
    Ok(serde_json::to_string(&Sequenced {
        seq,
        ts_ms: 1,
        event: lost_event(),
        trace: None,
    })?)
}

/// The sequence numbers, which must run 1, 2, 3, … without a gap or repeat.
fn gapless(events: &[Sequenced]) -> Vec<u64> {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.iter().zip(1..).all(|(s, i)| *s == i),
        "not gapless and in order: {seqs:?}"
    );
    seqs
}

/// Logs event `seq` of the quiz as a script would, but publishes nothing:
/// its Pub/Sub message is "lost".
async fn log_unpublished(server: &RedisServer, code: &JoinCode, seq: u64) -> Result<()> {
    let id = format!("{seq}-1");
    server
        .cli(&[
            "XADD",
            &format!("{{q:{code}}}:log"),
            &id,
            "e",
            &leaderboard(seq)?,
        ])
        .await?;
    server
        .cli(&["HINCRBY", &format!("{{q:{code}}}:meta"), "seq", "1"])
        .await?;
    Ok(())
}

async fn quiz(bp: &RedisBackplane) -> Result<JoinCode> {
    let code = bp
        .create_quiz(crate::one_question("gaps"), &CreateLimits::unlimited())
        .await?
        .created()
        .expect("no quota")
        .code;
    bp.subscribe(&code).await?;
    Ok(code)
}

#[tokio::test]
async fn a_lost_message_is_read_from_the_log_and_delivered_in_order() -> Result<()> {
    let server = RedisServer::start_ephemeral().await?;
    let sink = Arc::new(Recorder::default());
    let bp = RedisBackplane::connect(RedisConfig::new(server.url()), sink.clone()).await?;
    let a = quiz(&bp).await?;

    bp.command(&a, HostCommand::Start).await?;
    sink.events(&a, 1).await?;
    // Event 2 is logged but its Pub/Sub message is lost: nobody publishes it.
    log_unpublished(&server, &a, 2).await?;
    // Event 3 arrives live and reveals the gap.
    bp.command(&a, HostCommand::Skip).await?;

    let events = sink.events(&a, 3).await?;
    gapless(&events);
    assert_eq!(
        events[1].event,
        lost_event(),
        "the lost event, read from the log"
    );
    assert!(matches!(events[2].event, Event::QuestionClosed { .. }));
    // And the live path takes over again.
    let before = sink.now(&a).len();
    bp.command(&a, HostCommand::End).await?;
    let events = sink.events(&a, before + 1).await?;
    gapless(&events);
    assert!(matches!(events[before].event, Event::QuizEnded { .. }));
    Ok(())
}

#[tokio::test]
async fn a_gap_that_cannot_be_read_holds_back_its_own_quiz_only() -> Result<()> {
    let server = RedisServer::start_ephemeral().await?;
    let sink = Arc::new(Recorder::default());
    let bp = RedisBackplane::connect(RedisConfig::new(server.url()), sink.clone()).await?;
    let (a, b) = (quiz(&bp).await?, quiz(&bp).await?);

    bp.command(&a, HostCommand::Start).await?;
    sink.events(&a, 1).await?;
    // A's log becomes unreadable, and A's next message arrives ahead of a gap.
    let log = format!("{{q:{a}}}:log");
    server.cli(&["RENAME", &log, "saved-log"]).await?;
    server.cli(&["SET", &log, "not a stream"]).await?;
    server
        .cli(&["PUBLISH", &format!("{{q:{a}}}:events"), &leaderboard(3)?])
        .await?;

    // B is served all along.
    bp.command(&b, HostCommand::Start).await?;
    bp.command(&b, HostCommand::Skip).await?;
    gapless(&sink.events(&b, 2).await?);
    // A delivered nothing past its gap.
    assert_eq!(
        gapless(&sink.now(&a)),
        [1],
        "no event delivered across a gap"
    );

    // Once the log is readable, the next event of A fills the gap.
    server.cli(&["DEL", &log]).await?;
    server.cli(&["RENAME", "saved-log", &log]).await?;
    log_unpublished(&server, &a, 2).await?;
    bp.command(&a, HostCommand::Skip).await?;
    let events = sink.events(&a, 3).await?;
    gapless(&events);
    // The fake message 3 published earlier was never delivered: the log's was.
    assert!(matches!(events[2].event, Event::QuestionClosed { .. }));
    let before = events.len();
    bp.command(&a, HostCommand::End).await?;
    let events = sink.events(&a, before + 1).await?;
    gapless(&events);
    assert!(matches!(events[before].event, Event::QuizEnded { .. }));
    Ok(())
}
