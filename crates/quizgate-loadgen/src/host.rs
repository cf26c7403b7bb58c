//! The `host` command: one host driving its quiz.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use quizgate_protocol::{Encoding, ServerFrame};
use serde_json::json;

use crate::cli::HostArgs;
use crate::ws::{Ws, connect, recv, send};

pub(crate) async fn host(args: HostArgs) -> Result<serde_json::Value> {
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
        if let Some(ServerFrame::Progress { players: n, .. }) =
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
