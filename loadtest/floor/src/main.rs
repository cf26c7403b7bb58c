//! The fan-out floor: the least this machine does to push a quiz's broadcasts
//! to its players, measured with the same generator and players as quizgate.
//!
//! It accepts players exactly as a quizgate node does (`GET /ws`, the same
//! subprotocols, `join` answered with a `welcome` at `seq` 0), then keeps each
//! socket and reads nothing more. On SIGUSR1 it sends the fan-out benchmark's
//! sequence (a question; after `--interval-ms` a reveal and a leaderboard; …;
//! then `ended`), the same frames quizgate sends: each is encoded once per
//! encoding into a complete WebSocket frame, and one loop writes those bytes
//! to every socket with one non-blocking `write(2)` each. No queue, no task
//! per connection, no Redis, nothing else: what is left is the kernel's work
//! and the frames themselves. It exits on SIGTERM. `make bench` runs it beside
//! quizgate in the fan-out scenarios (`loadtest/bench.py`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use quizgate_domain::{CloseReason, Phase, Standing};
use quizgate_protocol::{
    ClientFrame, Encoding, QuestionView, QuizView, Role, ServerFrame, Welcome, decode, encode,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    /// Questions in the sequence (each: a question, then a reveal and a leaderboard).
    #[arg(long, default_value_t = 16)]
    questions: u16,
    /// Between a question and its reveal, and between a reveal and the next question.
    #[arg(long, default_value_t = 375)]
    interval_ms: u64,
}

/// A player's socket, kept after its welcome.
#[derive(Debug)]
struct Seat {
    tcp: TcpStream,
    encoding: Encoding,
}

type Seats = Arc<Mutex<Vec<Seat>>>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn locked(s: &Seats) -> std::sync::MutexGuard<'_, Vec<Seat>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    let seats: Seats = Arc::default();
    let mut go = signal(SignalKind::user_defined1())?;
    println!("floor listening on {}", listener.local_addr()?);
    // One task per handshake, each ending after its welcome.
    let mut seating = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let seats = Arc::clone(&seats);
                let questions = args.questions;
                seating.spawn(async move {
                    if let Err(e) = seat(tcp, &seats, questions).await {
                        eprintln!("floor: a player was not seated: {e:#}");
                    }
                });
            }
            Some(_) = seating.join_next(), if !seating.is_empty() => {}
            _ = go.recv() => break,
        }
    }
    drop(listener);
    seating.abort_all();
    let mut all = std::mem::take(&mut *locked(&seats));
    broadcast_all(&args, &mut all).await;
    // Keep the sockets (and this process, whose CPU time is being measured)
    // until told to go.
    signal(SignalKind::terminate())?.recv().await;
    Ok(())
}

// tungstenite's callback type fixes the error type's size.
#[allow(clippy::result_large_err)]
async fn seat(tcp: TcpStream, seats: &Seats, questions: u16) -> Result<()> {
    tcp.set_nodelay(true)?;
    let mut encoding = Encoding::Json;
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(chosen) = req
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').find_map(Encoding::from_subprotocol))
        {
            encoding = chosen;
            resp.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(chosen.subprotocol()),
            );
        }
        Ok(resp)
    };
    let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await?;
    let msg = ws.next().await.context("no join")??;
    let frame = decode(encoding, &msg.into_data()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (role, player_id, rid) = match frame {
        ClientFrame::Join { rid, .. } => (Role::Player, Some(locked(seats).len() as u32 + 1), rid),
        ClientFrame::Host { rid, .. } => (Role::Host, None, rid),
        other => anyhow::bail!("expected join, got {}", other.kind()),
    };
    let welcome = ServerFrame::Welcome(Box::new(Welcome {
        rid,
        server: "floor".into(),
        role,
        code: "FLOOR2".into(),
        title: "bench".into(),
        player_id,
        token: player_id.map(|id| format!("FLOOR2.{id}.0")),
        resumed: None,
        quiz: QuizView {
            phase: Phase::Lobby,
            question_count: questions,
            question: None,
            correct: None,
            distribution: None,
            answered: None,
            players: 0,
            top: Vec::new(),
            seq: 0,
            you: None,
            locked: false,
        },
    }));
    let bytes = encode(encoding, &welcome).map_err(|e| anyhow::anyhow!(e))?;
    ws.send(if encoding.is_binary() {
        Message::Binary(bytes)
    } else {
        Message::Text(bytes.try_into()?)
    })
    .await?;
    locked(seats).push(Seat {
        tcp: ws.into_inner(),
        encoding,
    });
    Ok(())
}

/// The fan-out benchmark's sequence, as quizgate's host would cause it.
async fn broadcast_all(args: &Args, all: &mut Vec<Seat>) {
    let top: Vec<Standing> = (1..=all.len().min(10) as u32)
        .map(|id| Standing {
            player_id: id,
            nickname: format!("p{}", id - 1),
            score: 0,
            rank: 1,
        })
        .collect();
    let players = all.len() as u32;
    let interval = Duration::from_millis(args.interval_ms);
    let mut seq = 0;
    let mut next = |frame: &dyn Fn(u64, u64) -> ServerFrame| {
        seq += 1;
        frame(seq, now_ms())
    };
    for index in 0..args.questions {
        let started_ms = now_ms();
        let question = next(&|seq, ts| ServerFrame::Question {
            seq,
            ts,
            question: QuestionView {
                index,
                count: args.questions,
                text: format!("Question {index}?"),
                choices: ["a", "b", "c", "d"].map(String::from).to_vec(),
                time_limit_ms: 60_000,
                points: 1000,
                started_ms,
                deadline_ms: started_ms + 60_000,
            },
        });
        write_all(all, &[question]).await;
        tokio::time::sleep(interval).await;
        let reveal = next(&|seq, ts| ServerFrame::Reveal {
            seq,
            ts,
            index,
            correct: (index % 3) as u8,
            distribution: vec![0; 4],
            answered: 0,
            reason: CloseReason::Skipped,
        });
        let board = next(&|seq, ts| ServerFrame::Leaderboard {
            seq,
            ts,
            top: top.clone(),
            players,
        });
        write_all(all, &[reveal, board]).await;
        tokio::time::sleep(interval).await;
    }
    let ended = next(&|seq, ts| ServerFrame::Ended {
        seq,
        ts,
        top: top.clone(),
        players,
    });
    write_all(all, &[ended]).await;
}

/// The frames as one buffer of complete WebSocket frames per encoding.
fn wire(frames: &[ServerFrame], encoding: Encoding) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let payload = encode(encoding, f).unwrap_or_default();
        let opcode = OpCode::Data(if encoding.is_binary() {
            Data::Binary
        } else {
            Data::Text
        });
        // Server frames are not masked: the same bytes suit every socket.
        let _ = Frame::message(payload, opcode, true).format(&mut out);
    }
    out
}

/// One write per socket; a socket that cannot take it all now is waited for
/// (loopback rarely), one that failed is dropped.
async fn write_all(all: &mut Vec<Seat>, frames: &[ServerFrame]) {
    let bytes = [
        wire(frames, Encoding::Json),
        wire(frames, Encoding::MsgPack),
    ];
    let mut dead = Vec::new();
    for (i, seat) in all.iter_mut().enumerate() {
        let b = &bytes[usize::from(seat.encoding.is_binary())];
        let ok = match seat.tcp.try_write(b) {
            Ok(n) if n == b.len() => true,
            Ok(n) => seat.tcp.write_all(&b[n..]).await.is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                seat.tcp.write_all(b).await.is_ok()
            }
            Err(_) => false,
        };
        if !ok {
            dead.push(i);
        }
    }
    for i in dead.into_iter().rev() {
        all.swap_remove(i);
    }
}
