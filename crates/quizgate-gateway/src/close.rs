//! Every way the node ends a WebSocket, in one place: why it ends it (a
//! [`Why`]), the close code that goes with it (what a client should do next
//! is `quizgate_protocol::CloseCode`'s business), and sending the close frame.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use quizgate_protocol::CloseCode;
use quizgate_telemetry::Metrics;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};

use crate::wire::WireStream;

/// Why the node ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// The node is draining and this connection's turn in the window came.
    Draining,
    /// The node was at its connection limit when the handshake finished.
    AtCapacity,
    /// A text frame on a MessagePack connection, or a binary one on JSON.
    WrongFrameType,
    /// More bad frames, or more frames over the rate, than a connection may send.
    Abuse,
    /// A frame larger than the limit.
    TooBig,
    /// A text frame that is not UTF-8.
    NotUtf8,
    /// The peer broke the WebSocket protocol.
    ProtocolError,
    /// The fan-out removed it from its room: its queue was full.
    QueueFull,
    /// Its quiz expired or was removed.
    QuizGone,
    /// It never joined, resumed or hosted within the deadline.
    JoinTimeout,
    /// Its player session was resumed on a newer connection.
    Replaced,
    /// The host removed its player.
    Removed,
    /// Nothing came in for two ping intervals: dropped without a close frame,
    /// since the peer is not reading.
    Unresponsive,
}

impl Why {
    /// The close code sent, or `None` when nothing is sent.
    pub(crate) fn code(self) -> Option<CloseCode> {
        Some(match self {
            Self::Draining => CloseCode::GoingAway,
            Self::AtCapacity => CloseCode::TryAgainLater,
            Self::WrongFrameType => CloseCode::UnsupportedData,
            Self::Abuse => CloseCode::PolicyViolation,
            Self::TooBig => CloseCode::MessageTooBig,
            Self::NotUtf8 => CloseCode::InvalidPayload,
            Self::ProtocolError => CloseCode::ProtocolError,
            Self::QueueFull => CloseCode::SlowConsumer,
            Self::QuizGone => CloseCode::QuizGone,
            Self::JoinTimeout => CloseCode::JoinTimeout,
            Self::Replaced => CloseCode::SessionReplaced,
            Self::Removed => CloseCode::Removed,
            Self::Unresponsive => return None,
        })
    }

    /// Why a failed read ends the connection; `None` if the peer is simply
    /// gone and there is nobody to tell.
    pub(crate) fn of_read_error(e: &tungstenite::Error) -> Option<Self> {
        use tungstenite::Error;
        match e {
            Error::Capacity(_) => Some(Self::TooBig),
            Error::Utf8(_) => Some(Self::NotUtf8),
            // The peer went away without a close frame.
            Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                None
            }
            Error::Protocol(_) => Some(Self::ProtocolError),
            Error::Io(io)
                if io
                    .get_ref()
                    .is_some_and(|e| e.is::<crate::frames::ContinuationFlood>()) =>
            {
                Some(Self::Abuse)
            }
            _ => None,
        }
    }

    /// The `closes_total` label: the code, or `timeout` for a silent drop.
    fn label(self) -> String {
        self.code()
            .map_or_else(|| "timeout".to_owned(), |c| c.code().to_string())
    }
}

/// Why the fan-out removed a member from its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Evicted {
    QueueFull = 1,
    QuizGone = 2,
    Replaced = 3,
    Removed = 4,
}

/// Set (to an [`Evicted`]) before a member's queue sender is dropped; read by
/// the connection when its queue closes.
#[derive(Debug, Default)]
pub(crate) struct Eviction(AtomicU8);

impl Eviction {
    pub(crate) fn set(&self, why: Evicted) {
        self.0.store(why as u8, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> Option<Evicted> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(Evicted::QueueFull),
            2 => Some(Evicted::QuizGone),
            3 => Some(Evicted::Replaced),
            4 => Some(Evicted::Removed),
            _ => None,
        }
    }

    /// Why the queue closed. Only an eviction closes it while the connection
    /// holds the receiver, so an unset one counts as a full queue.
    pub(crate) fn why(&self) -> Why {
        match self.get() {
            Some(Evicted::QuizGone) => Why::QuizGone,
            Some(Evicted::Replaced) => Why::Replaced,
            Some(Evicted::Removed) => Why::Removed,
            Some(Evicted::QueueFull) | None => Why::QueueFull,
        }
    }
}

/// Ends the connection for `why`: counts it, sends the close frame (if
/// any) and waits, at most `limit`, for the client's reply.
pub(crate) async fn close(
    ws: &mut WebSocketStream<WireStream>,
    why: Why,
    metrics: &Metrics,
    limit: Duration,
) {
    metrics.closes.with_label_values(&[&why.label()]).inc();
    let Some(code) = why.code() else { return };
    let frame = CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: Utf8Bytes::from_static(code.reason()),
    };
    let _ = timeout(limit, async {
        if ws.close(Some(frame)).await.is_ok() {
            while ws.next().await.is_some() {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_code_and_only_a_dead_peer_gets_none() {
        let all = [
            Why::Draining,
            Why::AtCapacity,
            Why::WrongFrameType,
            Why::Abuse,
            Why::TooBig,
            Why::NotUtf8,
            Why::ProtocolError,
            Why::QueueFull,
            Why::QuizGone,
        ];
        let mut codes: Vec<u16> = all
            .iter()
            .map(|w| w.code().expect("a close frame").code())
            .collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "no two reasons share a code");
        assert_eq!(Why::Unresponsive.code(), None);
        assert_eq!(Why::Unresponsive.label(), "timeout");
    }

    #[test]
    fn an_eviction_reads_back_as_its_reason() {
        let e = Eviction::default();
        assert_eq!(e.get(), None);
        e.set(Evicted::QuizGone);
        assert_eq!(e.why(), Why::QuizGone);
        e.set(Evicted::QueueFull);
        assert_eq!(e.why().code(), Some(CloseCode::SlowConsumer));
    }
}
