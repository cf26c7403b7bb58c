/// WebSocket close codes quizgate sends, grouped by what the client should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// The client said goodbye, or the server is done with a healthy connection.
    Normal = 1000,
    /// The node is draining or shutting down: reconnect (to any node) and resume.
    GoingAway = 1001,
    /// The peer broke the WebSocket protocol (bad opcode, unmasked frame, ...).
    ProtocolError = 1002,
    /// A binary frame on a JSON connection, or a text frame on a MessagePack one.
    UnsupportedData = 1003,
    /// A text frame that is not valid UTF-8.
    InvalidPayload = 1007,
    /// Too many bad frames or too many frames too fast.
    PolicyViolation = 1008,
    /// A frame larger than the limit.
    MessageTooBig = 1009,
    /// A bug on the server's side.
    InternalError = 1011,
    /// The node is at its connection limit: reconnect later, with backoff.
    TryAgainLater = 1013,
    /// The quiz expired or was removed: do not reconnect.
    QuizGone = 4004,
    /// The host removed this player: do not reconnect.
    Removed = 4403,
    /// The player's session was resumed on another connection (the newer one
    /// wins): do not reconnect, or the two would take it from each other.
    SessionReplaced = 4409,
    /// No `join`, `resume` or `host` came within the deadline after the upgrade:
    /// open the socket when about to join, not before.
    JoinTimeout = 4408,
    /// The client did not read its frames fast enough and its queue filled:
    /// reconnect now and resume from the last sequence number seen.
    SlowConsumer = 4100,
}

/// What a client library does on a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseGroup {
    /// Stop: reconnecting would fail the same way.
    DontReconnect,
    /// Reconnect after a jittered exponential backoff, then resume.
    Backoff,
    /// Reconnect at once (with a little jitter) and resume.
    Resume,
}

impl CloseCode {
    /// Every code the server sends.
    pub const ALL: [Self; 14] = [
        Self::Normal,
        Self::GoingAway,
        Self::ProtocolError,
        Self::UnsupportedData,
        Self::InvalidPayload,
        Self::PolicyViolation,
        Self::MessageTooBig,
        Self::InternalError,
        Self::TryAgainLater,
        Self::QuizGone,
        Self::Removed,
        Self::SlowConsumer,
        Self::JoinTimeout,
        Self::SessionReplaced,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn group(self) -> CloseGroup {
        match self {
            Self::Normal
            | Self::ProtocolError
            | Self::UnsupportedData
            | Self::InvalidPayload
            | Self::MessageTooBig
            | Self::QuizGone
            | Self::Removed
            | Self::JoinTimeout
            | Self::SessionReplaced => CloseGroup::DontReconnect,
            Self::PolicyViolation | Self::InternalError | Self::TryAgainLater => {
                CloseGroup::Backoff
            }
            Self::GoingAway | Self::SlowConsumer => CloseGroup::Resume,
        }
    }

    /// The short reason sent in the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "bye",
            Self::GoingAway => "node draining: reconnect and resume",
            Self::ProtocolError => "websocket protocol error",
            Self::UnsupportedData => "wrong frame type for the negotiated encoding",
            Self::InvalidPayload => "text frame is not valid utf-8",
            Self::PolicyViolation => "too many bad or too many frames",
            Self::MessageTooBig => "frame larger than the limit",
            Self::InternalError => "internal error",
            Self::TryAgainLater => "node at capacity: retry with backoff",
            Self::QuizGone => "quiz expired",
            Self::Removed => "removed by the host",
            Self::JoinTimeout => "no join, resume or host in time",
            Self::SessionReplaced => "session resumed on another connection",
            Self::SlowConsumer => "outbound queue full: reconnect and resume",
        }
    }
}
