//! The Pub/Sub side: one task receives every message of this node's
//! subscriptions and hands events to the sink in sequence order per quiz,
//! filling gaps from the quiz's log.

use std::sync::Arc;

use fred::prelude::*;
use fred::types::Message;
use quizgate_domain::{JoinCode, Sequenced};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::keys::QuizKeys;
use super::reply::parse_event;
use super::{Shared, unavailable};
use crate::{DeliveryEnd, Result};

/// Receives until `stop`; returns why it ended (see `crate::delivery`).
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) -> DeliveryEnd {
    let mut messages = shared.subscriber.message_rx();
    let mut reconnects = shared.subscriber.reconnect_rx();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return DeliveryEnd::Stopped,
            msg = messages.recv() => match msg {
                Ok(msg) => on_message(&shared, msg).await,
                Err(RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "pub/sub receiver lagged: resynchronising from the logs");
                    resync_all(&shared).await;
                }
                Err(RecvError::Closed) => return DeliveryEnd::Closed("redis message stream"),
            },
            r = reconnects.recv() => match r {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    tracing::info!("redis subscriber reconnected: resubscribing and resynchronising");
                    resubscribe_all(&shared).await;
                    resync_all(&shared).await;
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
    shared.delivered().entry(code.clone()).or_insert(None);
    let keys = QuizKeys::new(code);
    let subscribed = if shared.clustered {
        shared.subscriber.ssubscribe(keys.channel.clone()).await
    } else {
        shared.subscriber.subscribe(keys.channel.clone()).await
    };
    let start: Result<Option<u64>> = match subscribed {
        Ok(()) => shared
            .client
            .hget(keys.meta, "seq")
            .await
            .map_err(unavailable),
        Err(e) => Err(unavailable(e)),
    };
    let mut delivered = shared.delivered();
    match start {
        Ok(seq) => {
            // Events up to here are in the snapshot of whoever joins next.
            let seq = seq.unwrap_or(0);
            if let Some(last) = delivered.get_mut(code) {
                *last = Some(last.map_or(seq, |l| l.max(seq)));
            }
            Ok(())
        }
        Err(e) => {
            delivered.remove(code);
            Err(e)
        }
    }
}

pub(crate) async fn unsubscribe(shared: &Shared, code: &JoinCode) -> Result<()> {
    shared.delivered().remove(code);
    let channel = QuizKeys::new(code).channel;
    let done = if shared.clustered {
        shared.subscriber.sunsubscribe(channel).await
    } else {
        shared.subscriber.unsubscribe(channel).await
    };
    done.map_err(unavailable)
}

async fn on_message(shared: &Shared, msg: Message) {
    let Some(code) = QuizKeys::code_of_channel(&msg.channel) else {
        return;
    };
    let event = match &msg.value {
        Value::String(s) => parse_event(s.as_bytes()),
        Value::Bytes(b) => parse_event(b.as_ref()),
        other => {
            tracing::warn!(quiz = %code, value = ?other, "unexpected pub/sub payload");
            return;
        }
    };
    match event {
        Ok(event) => deliver_in_order(shared, &code, event).await,
        Err(e) => tracing::warn!(quiz = %code, error = %e, "undecodable event"),
    }
}

fn last_delivered(shared: &Shared, code: &JoinCode) -> Option<Option<u64>> {
    shared.delivered().get(code).copied()
}

async fn deliver_in_order(shared: &Shared, code: &JoinCode, event: Sequenced) {
    let Some(last) = last_delivered(shared, code) else {
        return;
    };
    if let Some(last) = last {
        if event.seq <= last {
            return;
        }
        if event.seq > last + 1 {
            tracing::info!(quiz = %code, from = last + 1, to = event.seq - 1, "filling a gap from the log");
            fill(shared, code, last + 1, Some(event.seq - 1)).await;
        }
    }
    deliver(shared, code, event);
}

/// Delivers `from..=to` (or `from..` to the end) from the quiz's log.
async fn fill(shared: &Shared, code: &JoinCode, from: u64, to: Option<u64>) {
    let log = QuizKeys::new(code).log;
    let end = to.map_or_else(|| "+".to_owned(), |t| t.to_string());
    let entries: Value = match shared.client.xrange(log, from.to_string(), end, None).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(quiz = %code, error = %e, "cannot read the log to fill a gap");
            return;
        }
    };
    for entry in entries.into_array() {
        let mut parts = entry.into_array().into_iter();
        let (_id, fields) = (
            parts.next(),
            parts.next().map(Value::into_array).unwrap_or_default(),
        );
        let Some(payload) = fields.get(1).and_then(Value::as_bytes) else {
            continue;
        };
        match parse_event(payload) {
            Ok(event) => deliver(shared, code, event),
            Err(e) => tracing::warn!(quiz = %code, error = %e, "undecodable logged event"),
        }
    }
}

fn deliver(shared: &Shared, code: &JoinCode, event: Sequenced) {
    {
        let mut delivered = shared.delivered();
        let Some(last) = delivered.get_mut(code) else {
            return;
        };
        if last.is_some_and(|l| event.seq <= l) {
            return;
        }
        *last = Some(event.seq);
    }
    shared.sink.deliver(code, Arc::new(event));
}

async fn resubscribe_all(shared: &Shared) {
    let codes: Vec<JoinCode> = shared.delivered().keys().cloned().collect();
    for code in codes {
        let channel = QuizKeys::new(&code).channel;
        let r = if shared.clustered {
            shared.subscriber.ssubscribe(channel).await
        } else {
            shared.subscriber.subscribe(channel).await
        };
        if let Err(e) = r {
            tracing::warn!(quiz = %code, error = %e, "resubscribe failed");
        }
    }
}

/// Delivers, for every subscribed quiz, whatever the log holds past what was
/// delivered: the events lost while disconnected or lagging.
async fn resync_all(shared: &Shared) {
    let quizzes: Vec<(JoinCode, u64)> = shared
        .delivered()
        .iter()
        .filter_map(|(code, last)| last.map(|l| (code.clone(), l)))
        .collect();
    for (code, last) in quizzes {
        fill(shared, &code, last + 1, None).await;
    }
}
