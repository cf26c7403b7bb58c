//! The node's clockwork: fires question deadlines, asks for coalesced
//! leaderboards where local joins changed something, sends players their
//! standings and hosts the open question's progress, and retires rooms and
//! quizzes that are gone.

use std::sync::Arc;
use std::time::Duration;

use quizgate_backplane::Tick;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::registry::Room;

/// How often rooms are looked at; bounds how late a deadline fires.
const TICK: Duration = Duration::from_millis(50);
/// How often each room checks that its quiz still exists.
const HOUSEKEEPING: Duration = Duration::from_secs(5);
/// How long an empty room keeps its subscription, to absorb reconnects.
const ROOM_LINGER: Duration = Duration::from_secs(30);

pub(crate) async fn run(node: Arc<Node>, stop: CancellationToken) {
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_housekeeping = Instant::now();
    // One task per room being tended: a room whose backplane calls are slow
    // skips ticks, the others do not wait for it. They end with the ticker.
    let mut tending = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            Some(done) = tending.join_next(), if !tending.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "tending a room failed");
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let check_exists = last_housekeeping.elapsed() >= HOUSEKEEPING;
        if check_exists {
            last_housekeeping = Instant::now();
            expire(&node).await;
            node.addresses.sweep();
        }
        for room in node.registry.rooms() {
            if let Some(room) = room.try_tend() {
                let node = Arc::clone(&node);
                tending.spawn(async move { tend(&node, &room, check_exists).await });
            }
        }
    }
}

async fn tend(node: &Node, room: &Arc<Room>, check_exists: bool) {
    let bp = node.backplane.as_ref();
    if check_exists && let Ok(false) = bp.exists(&room.code).await {
        tracing::info!(quiz = %room.code, "quiz gone");
        node.registry.remove_gone(&room.code);
    }
    if let Some(index) = room.overdue(bp.now_ms()) {
        // Every node with members may try; the backplane closes it exactly once.
        if let Err(e) = bp.close_if_due(&room.code, index).await {
            node.backplane_error("close", &e);
        }
    }
    if room.take_dirty(node.config.leaderboard_interval) {
        match bp.leaderboard_if_due(&room.code).await {
            Ok(Tick::Published | Tick::Nothing) => {}
            Ok(Tick::TooSoon) => room.mark_dirty(),
            Ok(Tick::Gone) => node.registry.remove_gone(&room.code),
            Err(e) => {
                node.backplane_error("leaderboard", &e);
                room.mark_dirty();
            }
        }
    }
    if room.take_progress_due(node.config.leaderboard_interval) {
        match bp.progress(&room.code).await {
            Ok(Some(progress)) => room.send_progress(progress),
            Ok(None) => {}
            Err(e) => {
                node.backplane_error("progress", &e);
            }
        }
    }
    if let Some(due) = room.take_standings_due() {
        match bp.scores(&room.code).await {
            // Standings as of the due event: nothing has happened since.
            Ok(Some(scores)) if scores.seq == due.seq => {
                room.send_standings(&scores.desc, due.is_final);
            }
            // The next question already started: its reveal brings the next standings.
            Ok(Some(scores)) => {
                tracing::debug!(quiz = %room.code, due = due.seq, seq = scores.seq, "standings overtaken");
            }
            Ok(None) => node.registry.remove_gone(&room.code),
            Err(e) => {
                node.backplane_error("scores", &e);
            }
        }
    }
    node.registry.remove_if_idle(room, ROOM_LINGER, bp).await;
}

/// Retires the quizzes the backplane expired (the embedded one; Redis keys
/// expire by themselves and `tend` notices).
async fn expire(node: &Node) {
    match node.backplane.expire().await {
        Ok(gone) => {
            for code in gone {
                tracing::info!(quiz = %code, "quiz expired");
                node.registry.remove_gone(&code);
            }
        }
        Err(e) => {
            node.backplane_error("expire", &e);
        }
    }
}
