//! What travels on a connection's queue: events shared by every member of a
//! room (encoded at most once per encoding on this node) and frames for one
//! member only.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use quizgate_protocol::{Encoding, ServerFrame};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// What a connection's queue carries: what the fan-out could not write to the
/// socket at once (see [`crate::wire`]).
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A broadcast event, shared by every member.
    Event(Arc<SharedEvent>),
    /// A complete WebSocket frame for this member only. Boxed: it is rare, and
    /// it keeps this enum (and so every queue's slots) at 16 bytes.
    Direct(Box<Bytes>),
}

impl Outbound {
    /// The event's sequence number (`None` for a direct frame) and the
    /// complete frame in `encoding`.
    pub(crate) fn framed(&self, encoding: Encoding) -> (Option<u64>, &[u8]) {
        match self {
            Self::Event(ev) => (Some(ev.seq), ev.framed(encoding)),
            Self::Direct(bytes) => (None, bytes),
        }
    }
}

/// One event, encoded lazily and at most once per encoding on this node, as
/// the complete WebSocket frame every connection of that encoding is sent.
#[derive(Debug)]
pub(crate) struct SharedEvent {
    pub(crate) seq: u64,
    frame: ServerFrame,
    json: OnceLock<Bytes>,
    msgpack: OnceLock<Bytes>,
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

    pub(crate) fn framed(&self, encoding: Encoding) -> &Bytes {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| framed(encoding, &self.frame))
    }
}

/// A frame as the complete WebSocket frame (header and payload) a server
/// sends: unmasked, so the same bytes suit every connection.
pub(crate) fn framed(encoding: Encoding, frame: &ServerFrame) -> Bytes {
    let payload = quizgate_protocol::encode(encoding, frame).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode frame");
        Bytes::new()
    });
    let opcode = OpCode::Data(if encoding.is_binary() {
        Data::Binary
    } else {
        Data::Text
    });
    let mut out = Vec::with_capacity(payload.len() + 10);
    // Writing into a Vec cannot fail.
    let _ = Frame::message(payload, opcode, true).format(&mut out);
    Bytes::from(out)
}
