//! The wire protocol between quizgate and its clients: the frames in both
//! directions, their two encodings (JSON text frames and MessagePack binary
//! frames, chosen by WebSocket subprotocol), error codes and close codes.
//! serde only: no IO, no runtime. `docs/protocol.md` is the client author's
//! version of this crate.

mod close;
mod codec;
mod error;
mod fields;
mod frame;

pub use close::{CloseCode, CloseGroup};
pub use codec::{
    DecodeError, Encoding, MAX_RID, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, decode, encode,
};
pub use error::ErrorCode;
pub use frame::{
    AnswerResult, AnswerStatus, ClientFrame, QuestionView, QuizView, Role, ServerFrame, Welcome,
};
