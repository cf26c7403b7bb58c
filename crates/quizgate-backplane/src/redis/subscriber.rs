//! The Pub/Sub side: one task receives every message of this node's
//! subscriptions and hands events to the sink in sequence order per quiz.
//!
//! A gap (a message Pub/Sub lost) is filled from the quiz's log by a task of
//! its own, so a slow or failing fill stalls that quiz only: while it runs it
//! owns delivery for its quiz, and the receive loop, which goes on serving
//! every other quiz, only notes that the fill must read the log once more.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::prelude::*;
use fred::types::Message;
use quizgate_domain::{JoinCode, PlayerId, Sequenced};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::keys::QuizKeys;
use super::reply::parse_event;
use super::{Shared, unavailable};
use crate::delivery::Outlet;
use crate::{DeliveryEnd, Result};

/// Failed log reads in a row before a fill gives up; the next event of the
/// quiz, or the next reconnect, starts another.
const FILL_ATTEMPTS: u32 = 3;

/// Where delivery of one subscribed quiz stands.
#[derive(Debug)]
pub(crate) struct Stream {
    /// Tells this subscription from an earlier one of the same quiz: a fill
    /// started for that one delivers nothing.
    epoch: u64,
    /// The last sequence number delivered; `None` until the first event or
    /// the subscription's starting point.
    last: Option<u64>,
    /// A fill task owns this quiz's delivery.
    filling: bool,
    /// Something arrived while filling: the fill reads the log once more.
    again: bool,
}

impl Stream {
    fn new() -> Self {
        static EPOCH: AtomicU64 = AtomicU64::new(0);
        Self {
            epoch: EPOCH.fetch_add(1, Ordering::Relaxed),
            last: None,
            filling: false,
            again: false,
        }
    }

    /// Takes `seq` as the last delivered if it is past it; false for a repeat.
    fn advance(&mut self, seq: u64) -> bool {
        if self.last.is_some_and(|l| seq <= l) {
            return false;
        }
        self.last = Some(seq);
        true
    }

    /// Hands the quiz to a fill: the epoch to start one for, or `None` if one
    /// runs already (it is told to read the log once more).
    fn claim_fill(&mut self) -> Option<u64> {
        if self.filling {
            self.again = true;
            None
        } else {
            self.filling = true;
            Some(self.epoch)
        }
    }
}

/// The stream a fill was started for, unless that subscription is gone.
fn owned<'a>(
    streams: &'a mut HashMap<JoinCode, Stream>,
    code: &JoinCode,
    epoch: u64,
) -> Option<&'a mut Stream> {
    streams.get_mut(code).filter(|s| s.epoch == epoch)
}

/// Receives until `stop`; returns why it ended (see `crate::delivery`). The
/// fills run beside it and end with it.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) -> DeliveryEnd {
    let mut messages = shared.subscriber.message_rx();
    let mut reconnects = shared.subscriber.reconnect_rx();
    let mut fills = JoinSet::new();
    let mut outlet = Outlet::new(shared.sink.as_ref());
    loop {
        tokio::select! {
            _ = stop.cancelled() => return DeliveryEnd::Stopped,
            Some(done) = fills.join_next(), if !fills.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a gap fill failed");
                }
            }
            msg = messages.recv() => match msg {
                Ok(msg) => {
                    on_message(&shared, msg, &mut fills, &mut outlet);
                    // Events published together leave the node together.
                    if messages.is_empty() {
                        outlet.flush();
                    }
                }
                Err(RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "pub/sub receiver lagged: resynchronising from the logs");
                    resync_all(&shared, &mut fills);
                }
                Err(RecvError::Closed) => return DeliveryEnd::Closed("redis message stream"),
            },
            r = reconnects.recv() => match r {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    tracing::info!("redis subscriber reconnected: resubscribing and resynchronising");
                    resubscribe_all(&shared).await;
                    resync_all(&shared, &mut fills);
                }
                Err(RecvError::Closed) => return DeliveryEnd::Closed("redis reconnect stream"),
            },
        }
    }
}

/// Subscribes this node to a quiz's events. Every event published after this
/// returns reaches the sink.
pub(crate) async fn subscribe(shared: &Shared, code: &JoinCode) -> Result<()> {
    // Mark first: an event that races the subscription is delivered, not dropped.
    shared
        .streams()
        .entry(code.clone())
        .or_insert_with(Stream::new);
    let keys = QuizKeys::new(code);
    let start: Result<Option<u64>> = match subscribe_channel(shared, &keys.channel).await {
        Ok(()) => shared
            .client
            .hget(keys.meta, "seq")
            .await
            .map_err(unavailable),
        Err(e) => Err(unavailable(e)),
    };
    let mut streams = shared.streams();
    match start {
        Ok(seq) => {
            // Events up to here are in the snapshot of whoever joins next.
            let seq = seq.unwrap_or(0);
            if let Some(stream) = streams.get_mut(code) {
                stream.last = Some(stream.last.map_or(seq, |l| l.max(seq)));
            }
            Ok(())
        }
        Err(e) => {
            streams.remove(code);
            Err(e)
        }
    }
}

pub(crate) async fn unsubscribe(shared: &Shared, code: &JoinCode) -> Result<()> {
    shared.streams().remove(code);
    let channel = QuizKeys::new(code).channel;
    let done = if shared.clustered {
        shared.subscriber.sunsubscribe(channel).await
    } else {
        shared.subscriber.unsubscribe(channel).await
    };
    done.map_err(unavailable)
}

/// A seat claim on a quiz's channel: `claim:PLAYER:CLAIM`. Events are JSON
/// objects, so the two never look alike.
const CLAIM_PREFIX: &[u8] = b"claim:";

pub(crate) fn claim_notice(player: PlayerId, claim: u64) -> String {
    format!("claim:{player}:{claim}")
}

fn parse_claim(notice: &[u8]) -> Option<(PlayerId, u64)> {
    let (player, claim) = std::str::from_utf8(notice).ok()?.split_once(':')?;
    Some((player.parse().ok()?, claim.parse().ok()?))
}

fn on_message(
    shared: &Arc<Shared>,
    msg: Message,
    fills: &mut JoinSet<()>,
    outlet: &mut Outlet<'_>,
) {
    shared.messages.fetch_add(1, Ordering::Relaxed);
    let Some(code) = QuizKeys::code_of_channel(&msg.channel) else {
        return;
    };
    let payload: &[u8] = match &msg.value {
        Value::String(s) => s.as_bytes(),
        Value::Bytes(b) => b.as_ref(),
        other => {
            tracing::warn!(quiz = %code, value = ?other, "unexpected pub/sub payload");
            return;
        }
    };
    if let Some(notice) = payload.strip_prefix(CLAIM_PREFIX) {
        match parse_claim(notice) {
            Some((player, claim)) if shared.streams().contains_key(&code) => {
                shared.sink.seat_claimed(&code, player, claim);
            }
            Some(_) => {}
            None => tracing::warn!(quiz = %code, "undecodable seat claim"),
        }
        return;
    }
    let event = parse_event(payload);
    match event {
        Ok(event) => receive(shared, code, event, fills, outlet),
        Err(e) => tracing::warn!(quiz = %code, error = %e, "undecodable event"),
    }
}

/// The live path: the next event is delivered, a repeat dropped, a jump hands
/// the quiz to a fill.
fn receive(
    shared: &Arc<Shared>,
    code: JoinCode,
    event: Sequenced,
    fills: &mut JoinSet<()>,
    outlet: &mut Outlet<'_>,
) {
    let mut streams = shared.streams();
    let Some(stream) = streams.get_mut(&code) else {
        return;
    };
    if stream.last.is_some_and(|last| event.seq <= last) {
        return;
    }
    let gap = stream.last.filter(|last| event.seq > last + 1);
    if stream.filling || gap.is_some() {
        if let Some(last) = gap {
            shared.gap_fills.fetch_add(1, Ordering::Relaxed);
            tracing::info!(quiz = %code, from = last + 1, to = event.seq - 1, "filling a gap from the log");
        }
        if let Some(epoch) = stream.claim_fill() {
            fills.spawn(fill(Arc::clone(shared), code, epoch));
        }
        return;
    }
    stream.advance(event.seq);
    drop(streams);
    // No fill of this quiz can start before this returns: only this task starts them.
    outlet.deliver(&code, Arc::new(event));
}

/// Delivers whatever the quiz's log holds past the last delivered event, and
/// again while more arrived meanwhile; then hands the quiz back to the live path.
async fn fill(shared: Arc<Shared>, code: JoinCode, epoch: u64) {
    let mut failures = 0;
    loop {
        let from = {
            let mut streams = shared.streams();
            let Some(stream) = owned(&mut streams, &code, epoch) else {
                return;
            };
            stream.again = false;
            stream.last.map_or(1, |l| l + 1)
        };
        match read_log(&shared, &code, from).await {
            Ok(events) => {
                failures = 0;
                let mut outlet = Outlet::new(shared.sink.as_ref());
                for event in events {
                    if !deliver_owned(&shared, &code, epoch, event, &mut outlet) {
                        outlet.flush();
                        return;
                    }
                }
                outlet.flush();
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(quiz = %code, error = %e, failures, "cannot read the log to fill a gap");
                if failures < FILL_ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(100) * failures).await;
                    continue;
                }
            }
        }
        let mut streams = shared.streams();
        let Some(stream) = owned(&mut streams, &code, epoch) else {
            return;
        };
        if stream.again && failures < FILL_ATTEMPTS {
            continue;
        }
        stream.filling = false;
        return;
    }
}

/// The quiz's logged events from `from` on, in order.
async fn read_log(shared: &Shared, code: &JoinCode, from: u64) -> Result<Vec<Sequenced>> {
    let log = QuizKeys::new(code).log;
    let entries: Value = shared
        .client
        .xrange(log, from.to_string(), "+", None)
        .await
        .map_err(unavailable)?;
    let mut events = Vec::new();
    for entry in entries.into_array() {
        let mut parts = entry.into_array().into_iter();
        let (_id, fields) = (
            parts.next(),
            parts.next().map(Value::into_array).unwrap_or_default(),
        );
        let Some(payload) = fields.get(1).and_then(Value::as_bytes) else {
            tracing::warn!(quiz = %code, "logged entry without a payload");
            continue;
        };
        match parse_event(payload) {
            Ok(event) => events.push(event),
            Err(e) => tracing::warn!(quiz = %code, error = %e, "undecodable logged event"),
        }
    }
    Ok(events)
}

/// Delivers one event of a fill that owns the quiz; false once the
/// subscription it was started for is gone.
fn deliver_owned(
    shared: &Shared,
    code: &JoinCode,
    epoch: u64,
    event: Sequenced,
    outlet: &mut Outlet<'_>,
) -> bool {
    {
        let mut streams = shared.streams();
        let Some(stream) = owned(&mut streams, code, epoch) else {
            return false;
        };
        if !stream.advance(event.seq) {
            return true;
        }
    }
    outlet.deliver(code, Arc::new(event));
    true
}

async fn resubscribe_all(shared: &Shared) {
    let codes: Vec<JoinCode> = shared.streams().keys().cloned().collect();
    for code in codes {
        if let Err(e) = subscribe_channel(shared, &QuizKeys::new(&code).channel).await {
            tracing::warn!(quiz = %code, error = %e, "resubscribe failed");
        }
    }
}

/// Has every subscribed quiz whose position is known read its log past what
/// was delivered: the events lost while disconnected or lagging.
fn resync_all(shared: &Arc<Shared>, fills: &mut JoinSet<()>) {
    shared.resyncs.fetch_add(1, Ordering::Relaxed);
    let mut streams = shared.streams();
    for (code, stream) in streams.iter_mut().filter(|(_, s)| s.last.is_some()) {
        if let Some(epoch) = stream.claim_fill() {
            fills.spawn(fill(Arc::clone(shared), code.clone(), epoch));
        }
    }
}

/// `SUBSCRIBE`, or `SSUBSCRIBE` on Redis Cluster.
async fn subscribe_channel(
    shared: &Shared,
    channel: &str,
) -> std::result::Result<(), fred::error::Error> {
    if shared.clustered {
        shared.subscriber.ssubscribe(channel).await
    } else {
        shared.subscriber.subscribe(channel).await
    }
}
