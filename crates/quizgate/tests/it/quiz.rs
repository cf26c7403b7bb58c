use anyhow::{Result, bail};
use quizgate_domain::{CloseReason, Phase};
use quizgate_protocol::{AnswerStatus, Encoding, Role, ServerFrame};
use quizgate_testkit::{Client, create_quiz};
use serde_json::json;

use crate::support::{Backend, both, host, node_on, player, reply};

fn is_question(index: u16) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Question { question, .. } if question.index == index)
}

fn is_reveal(index: u16) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Reveal { index: i, .. } if *i == index)
}

async fn answer(
    c: &mut Client,
    question: u16,
    choice: u8,
) -> Result<quizgate_protocol::AnswerResult> {
    c.send(json!({"t": "answer", "question": question, "choice": choice, "rid": 7}))
        .await?;
    match reply(c).await? {
        ServerFrame::AnswerResult(r) => {
            assert_eq!((r.rid, r.question), (Some(7), question));
            Ok(r)
        }
        other => bail!("expected an answer result, got {other:?}"),
    }
}

async fn command(host: &mut Client, t: &str) -> Result<()> {
    host.send(json!({"t": t, "rid": 3})).await?;
    match reply(host).await? {
        ServerFrame::Ack {
            rid: Some(3),
            command,
        } if command == t => Ok(()),
        other => bail!("{t}: {other:?}"),
    }
}

/// Three questions: q0 is answered by everyone (closes early), q1 is skipped by
/// the host, q2 runs into its deadline. Four players in two encodings.
async fn a_whole_quiz_in_both_encodings(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let addr = node.ws_addr;
    let q = |text: &str, correct: u8, limit: u64| json!({"text": text, "choices": ["a", "b", "c"], "correct": correct, "time_limit_ms": limit, "points": 1000});
    let def = json!({"title": "Trio", "questions": [q("Q0", 0, 20_000), q("Q1", 1, 20_000), q("Q2", 2, 1_500)]});
    let (code, token) = create_quiz(addr, &def).await?;

    let (mut host, hw) = host(addr, &code, &token).await?;
    assert_eq!(
        (
            hw.role,
            hw.quiz.phase,
            hw.quiz.question_count,
            hw.title.as_str()
        ),
        (Role::Host, Phase::Lobby, 3, "Trio")
    );
    let mut players = Vec::new();
    for (nick, enc) in [
        ("ann", Encoding::Json),
        ("bob", Encoding::MsgPack),
        ("cy", Encoding::Json),
        ("dee", Encoding::MsgPack),
    ] {
        let (c, w) = player(addr, enc, &code, nick).await?;
        assert_eq!(w.role, Role::Player);
        assert_eq!(w.quiz.phase, Phase::Lobby);
        assert!(
            w.token
                .as_deref()
                .is_some_and(|t| t.starts_with(&format!("{code}."))),
            "{w:?}"
        );
        assert_eq!(w.quiz.you.as_ref().map(|y| y.nickname.as_str()), Some(nick));
        players.push((c, w));
    }
    let ids: Vec<u32> = players
        .iter()
        .map(|(_, w)| w.player_id.unwrap_or(0))
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);

    // Question 0: everyone answers, so it closes before its deadline.
    command(&mut host, "start").await?;
    for (c, _) in players.iter_mut() {
        let ServerFrame::Question { question, .. } =
            c.recv_until("question 0", is_question(0)).await?
        else {
            unreachable!()
        };
        assert_eq!(
            (
                question.text.as_str(),
                question.count,
                question.choices.len()
            ),
            ("Q0", 3, 3)
        );
        assert_eq!(question.deadline_ms - question.started_ms, 20_000);
    }
    let first = answer(&mut players[0].0, 0, 0).await?;
    assert_eq!(first.status, AnswerStatus::Accepted);
    let points = first.points.unwrap_or(0);
    assert!((500..=1000).contains(&points), "{points}");
    assert_eq!(first.total, Some(u64::from(points)));
    let retry = answer(&mut players[0].0, 0, 1).await?;
    assert_eq!(
        (retry.status, retry.choice, retry.points),
        (AnswerStatus::Duplicate, Some(0), Some(points)),
        "scored once, first answer stands"
    );
    assert_eq!(
        answer(&mut players[1].0, 0, 1).await?.points,
        Some(0),
        "wrong answer"
    );
    assert_eq!(
        answer(&mut players[2].0, 0, 0).await?.status,
        AnswerStatus::Accepted
    );
    assert_eq!(
        answer(&mut players[3].0, 0, 2).await?.status,
        AnswerStatus::Accepted
    );
    for c in players
        .iter_mut()
        .map(|(c, _)| c)
        .chain(std::iter::once(&mut host))
    {
        let ServerFrame::Reveal {
            correct,
            distribution,
            answered,
            reason,
            ..
        } = c.recv_until("reveal 0", is_reveal(0)).await?
        else {
            unreachable!()
        };
        assert_eq!(
            (correct, distribution, answered, reason),
            (0, vec![2, 1, 1], 4, CloseReason::AllAnswered)
        );
    }
    // Each player hears its own standing after the reveal's leaderboard.
    let ServerFrame::Standing {
        score,
        rank,
        players: n,
    } = players[1]
        .0
        .recv_until("bob's standing", |f| {
            matches!(f, ServerFrame::Standing { .. })
        })
        .await?
    else {
        unreachable!()
    };
    assert_eq!(
        (score, rank, n),
        (0, 3, 4),
        "bob answered wrong: shares third place with dee"
    );

    // Question 1: the host skips it; an answer after the skip is late.
    command(&mut host, "next").await?;
    for (c, _) in players.iter_mut() {
        c.recv_until("question 1", is_question(1)).await?;
    }
    assert_eq!(
        answer(&mut players[1].0, 1, 1).await?.status,
        AnswerStatus::Accepted
    );
    command(&mut host, "skip").await?;
    for (c, _) in players.iter_mut() {
        let ServerFrame::Reveal {
            reason, answered, ..
        } = c.recv_until("reveal 1", is_reveal(1)).await?
        else {
            unreachable!()
        };
        assert_eq!((reason, answered), (CloseReason::Skipped, 1));
    }
    assert_eq!(
        answer(&mut players[0].0, 1, 1).await?.status,
        AnswerStatus::Late
    );
    assert_eq!(
        answer(&mut players[0].0, 2, 1).await?.status,
        AnswerStatus::WrongPhase,
        "not asked yet"
    );

    // Question 2: nobody answers; the server's deadline closes it.
    command(&mut host, "next").await?;
    for (c, _) in players.iter_mut() {
        c.recv_until("question 2", is_question(2)).await?;
    }
    for (c, _) in players.iter_mut() {
        let ServerFrame::Reveal { reason, ts, .. } = c.recv_until("reveal 2", is_reveal(2)).await?
        else {
            unreachable!()
        };
        assert_eq!(reason, CloseReason::Deadline);
        assert!(ts > 0);
    }
    assert_eq!(
        answer(&mut players[2].0, 2, 2).await?.status,
        AnswerStatus::Late
    );

    // Past the last question: the end, with the podium.
    let mut final_top = Vec::new();
    command(&mut host, "next").await?;
    for (c, _) in players.iter_mut() {
        let ServerFrame::Ended {
            top, players: n, ..
        } = c
            .recv_until("the end", |f| matches!(f, ServerFrame::Ended { .. }))
            .await?
        else {
            unreachable!()
        };
        assert_eq!(n, 4);
        assert_eq!(top.len(), 4);
        assert_eq!(top[0].rank, 1);
        assert!(top[0].score >= top[1].score && top[1].score >= top[2].score);
        let bob = top
            .iter()
            .find(|s| s.nickname == "bob")
            .map_or(0, |s| s.score);
        assert!(
            (500..=1000).contains(&bob),
            "bob scored only question 1: {bob}"
        );
        final_top = top;
    }

    // After the end, every player hears its own final standing, changed or not.
    for (c, w) in players.iter_mut() {
        let ServerFrame::Standing {
            score, players: n, ..
        } = c
            .recv_until("final standing", |f| {
                matches!(f, ServerFrame::Standing { .. })
            })
            .await?
        else {
            unreachable!()
        };
        assert_eq!(n, 4);
        let final_score = final_top
            .iter()
            .find(|s| Some(s.player_id) == w.player_id)
            .map(|s| s.score);
        assert_eq!(
            Some(score),
            final_score,
            "the standing agrees with the final leaderboard"
        );
    }

    // Every player saw a gapless sequence after its welcome, and all of them
    // saw the same frames for the same sequence numbers.
    let common_from = players.iter().map(|(_, w)| w.quiz.seq).max().unwrap_or(0) + 1;
    for (c, w) in &players {
        let seqs = c.seqs();
        let want: Vec<u64> = (w.quiz.seq + 1..=w.quiz.seq + seqs.len() as u64).collect();
        assert_eq!(seqs, want, "gapless after welcome");
    }
    let reference: Vec<&ServerFrame> = players[0]
        .0
        .events
        .iter()
        .filter(|f| f.seq() >= Some(common_from))
        .collect();
    for (c, _) in &players[1..] {
        let theirs: Vec<&ServerFrame> = c
            .events
            .iter()
            .filter(|f| f.seq() >= Some(common_from))
            .collect();
        assert_eq!(theirs, reference, "{:?} saw other events", c.encoding);
    }
    Ok(())
}

/// In the lobby and while a question is open, players get no broadcast (only
/// their own acks); hosts follow the player and answer counts (`progress`),
/// coalesced. The leaderboard comes with the reveal.
async fn hosts_get_progress_and_the_leaderboard_waits_for_the_reveal(
    backend: Backend,
) -> Result<()> {
    let node = node_on(backend, &[("QUIZGATE_LEADERBOARD_INTERVAL", "300ms")]).await?;
    let addr = node.ws_addr;
    let (code, token) = create_quiz(addr, &quizgate_testkit::sample_quiz(1, 30_000)).await?;
    let (mut host, _) = host(addr, &code, &token).await?;
    let mut players = Vec::new();
    for i in 0..6 {
        players.push(
            player(addr, Encoding::Json, &code, &format!("p{i}"))
                .await?
                .0,
        );
    }
    // In the lobby the host follows the count; players get no broadcast.
    host.recv_until("progress with 6 players", |f| {
        matches!(
            f,
            ServerFrame::Progress {
                players: 6,
                index: None,
                answered: None
            }
        )
    })
    .await?;
    command(&mut host, "start").await?;
    let started = std::time::Instant::now();
    // Five of six answer at once: one question, many answers, few progress frames.
    for c in players.iter_mut().take(5) {
        c.recv_until("question", is_question(0)).await?;
        assert_eq!(answer(c, 0, 0).await?.status, AnswerStatus::Accepted);
    }
    host.recv_until("progress with 5 answers", |f| {
        matches!(
            f,
            ServerFrame::Progress {
                index: Some(0),
                answered: Some(5),
                players: 6
            }
        )
    })
    .await?;
    let elapsed_ms = started.elapsed().as_millis() as usize;
    let progress = host
        .received
        .iter()
        .filter(|v| v["t"] == "progress" && v.get("index").is_some())
        .count();
    assert!(
        progress <= elapsed_ms / 300 + 1,
        "{progress} progress frames in {elapsed_ms} ms"
    );
    command(&mut host, "skip").await?;
    for c in players.iter_mut() {
        let ServerFrame::Leaderboard {
            players: n, top, ..
        } = c
            .recv_until("the reveal's leaderboard", |f| {
                matches!(f, ServerFrame::Leaderboard { .. })
            })
            .await?
        else {
            unreachable!()
        };
        assert_eq!((n, top.len()), (6, 6));
        // No broadcast between the question and its reveal.
        let question_seq = c
            .events
            .iter()
            .find(|f| matches!(f, ServerFrame::Question { .. }))
            .and_then(ServerFrame::seq)
            .expect("the question");
        let between: Vec<&ServerFrame> = c
            .events
            .iter()
            .skip_while(|f| !matches!(f, ServerFrame::Question { .. }))
            .skip(1)
            .take_while(|f| !matches!(f, ServerFrame::Reveal { .. }))
            .collect();
        assert!(
            between.is_empty(),
            "a player got broadcasts during the question: {between:?}"
        );
        assert!(
            !c.received.iter().any(|v| v["t"] == "progress"),
            "progress is for hosts"
        );
        let reveal = c
            .events
            .iter()
            .find(|f| matches!(f, ServerFrame::Reveal { .. }))
            .and_then(ServerFrame::seq);
        assert_eq!(reveal, Some(question_seq + 1), "no event in between");
        assert_eq!(question_seq, 1, "no broadcast in the lobby");
    }
    Ok(())
}

async fn late_joiners_get_the_current_question_in_their_snapshot(backend: Backend) -> Result<()> {
    let node = node_on(backend, &[]).await?;
    let addr = node.ws_addr;
    let (code, token) = create_quiz(addr, &quizgate_testkit::sample_quiz(2, 30_000)).await?;
    let (mut host, _) = host(addr, &code, &token).await?;
    command(&mut host, "start").await?;
    let (mut late, w) = player(addr, Encoding::MsgPack, &code, "late").await?;
    assert_eq!(w.quiz.phase, Phase::Question);
    let q = w.quiz.question.expect("the open question");
    assert_eq!((q.index, q.text.as_str()), (0, "Question 0?"));
    assert_eq!(
        answer(&mut late, 0, 0).await?.status,
        AnswerStatus::Accepted
    );
    // Everyone (one player) answered: the reveal follows the welcome's seq.
    late.recv_until("reveal", is_reveal(0)).await?;
    // Broadcasts continue right after the snapshot (a coalesced leaderboard may
    // come before the reveal).
    assert_eq!(late.seqs().first().copied(), Some(w.quiz.seq + 1));
    Ok(())
}

both!(a_whole_quiz_in_both_encodings);
both!(hosts_get_progress_and_the_leaderboard_waits_for_the_reveal);
both!(late_joiners_get_the_current_question_in_their_snapshot);
