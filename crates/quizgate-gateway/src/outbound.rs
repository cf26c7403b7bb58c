//! What travels on a connection's queue: events shared by every member of a
//! room (encoded at most once per encoding on this node) and frames for one
//! member only.

use std::sync::{Arc, OnceLock};

use quizgate_protocol::{Encoding, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

/// What a connection's queue carries.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A broadcast event, shared by every member.
    Event(Arc<SharedEvent>),
    /// A frame for this member only, already encoded for it. Boxed: it is rare,
    /// and it keeps this enum (and so every queue's slots) at 16 bytes.
    Direct(Box<Message>),
}

/// One event, encoded lazily and at most once per encoding on this node.
#[derive(Debug)]
pub(crate) struct SharedEvent {
    pub(crate) seq: u64,
    frame: ServerFrame,
    json: OnceLock<Message>,
    msgpack: OnceLock<Message>,
}

impl SharedEvent {
    pub(crate) fn new(frame: ServerFrame) -> Self {
        Self {
            seq: frame.seq().unwrap_or(0),
            frame,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }

    pub(crate) fn message(&self, encoding: Encoding) -> Message {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| encode(encoding, &self.frame)).clone()
    }
}

/// Encodes a frame as the WebSocket message its encoding travels in.
pub(crate) fn encode(encoding: Encoding, frame: &ServerFrame) -> Message {
    match quizgate_protocol::encode(encoding, frame) {
        Ok(bytes) if encoding.is_binary() => Message::Binary(bytes),
        // serde_json writes valid UTF-8, so the check cannot fail.
        Ok(bytes) => Message::Text(bytes.try_into().unwrap_or_default()),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode frame");
            Message::Text(Default::default())
        }
    }
}
