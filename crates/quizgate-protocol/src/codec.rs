use bytes::Bytes;

use crate::fields::{self, Value};
use crate::{ClientFrame, ErrorCode, ServerFrame};

/// Subprotocol for JSON text frames (the default when a client names none).
pub const SUBPROTOCOL_JSON: &str = "quizgate.v1.json";
/// Subprotocol for MessagePack binary frames (structs as maps with string keys).
pub const SUBPROTOCOL_MSGPACK: &str = "quizgate.v1.msgpack";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Json,
    MsgPack,
}

impl Encoding {
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name.trim() {
            SUBPROTOCOL_JSON => Some(Self::Json),
            SUBPROTOCOL_MSGPACK => Some(Self::MsgPack),
            _ => None,
        }
    }

    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::Json => SUBPROTOCOL_JSON,
            Self::MsgPack => SUBPROTOCOL_MSGPACK,
        }
    }

    /// MessagePack travels in binary frames, JSON in text frames.
    pub fn is_binary(self) -> bool {
        self == Self::MsgPack
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::MsgPack => "msgpack",
        }
    }
}

/// Why a client frame could not be read; each maps to an [`ErrorCode`]. The
/// frame's `rid`, when it had a valid one, is kept so the error can echo it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "{reason}: a frame is one object (MessagePack: map with string keys) with a string field \"t\""
    )]
    Malformed { reason: String, rid: Option<u64> },
    #[error("unknown frame type {t:?}")]
    UnknownType { t: String, rid: Option<u64> },
    #[error("invalid {kind:?} frame: {reason}")]
    Invalid {
        kind: &'static str,
        reason: String,
        rid: Option<u64>,
    },
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed { .. } => ErrorCode::MalformedFrame,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
            Self::Invalid { .. } => ErrorCode::InvalidFrame,
        }
    }

    /// The `rid` of the frame that could not be read, if it carried a valid one.
    pub fn rid(&self) -> Option<u64> {
        match self {
            Self::Malformed { rid, .. }
            | Self::UnknownType { rid, .. }
            | Self::Invalid { rid, .. } => *rid,
        }
    }
}

/// Largest `rid`: JavaScript numbers are exact up to 2^53.
pub const MAX_RID: u64 = 1 << 53;

/// Reads one client frame. Fields the server does not know are ignored, so
/// clients may add their own. Both encodings follow the same rules (see
/// `fields.rs`); what each frame needs is the table in [`build`].
pub fn decode(encoding: Encoding, bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    let fields = match encoding {
        Encoding::Json => fields::from_json(bytes),
        Encoding::MsgPack => fields::from_msgpack(bytes),
    }
    .map_err(|reason| DecodeError::Malformed { reason, rid: None })?;
    let mut frame = Frame {
        fields,
        kind: "",
        rid: None,
    };
    // rid first, so that every later error can echo it.
    frame.rid = frame.uint_opt("rid", MAX_RID).ok().flatten();
    let t = match frame.get("t") {
        Some(Value::Str(t)) => t.clone(),
        Some(other) => {
            return Err(DecodeError::Malformed {
                reason: format!("\"t\" is {}", other.kind()),
                rid: frame.rid,
            });
        }
        None => {
            return Err(DecodeError::Malformed {
                reason: "no field \"t\"".into(),
                rid: frame.rid,
            });
        }
    };
    build(&mut frame, &t)
}

/// What each client frame needs, in one place.
fn build(f: &mut Frame, t: &str) -> Result<ClientFrame, DecodeError> {
    Ok(match t {
        "join" => {
            let rid = f.begin("join")?;
            ClientFrame::Join {
                code: f.string("code")?,
                nickname: f.string("nickname")?,
                rid,
            }
        }
        "resume" => {
            let rid = f.begin("resume")?;
            ClientFrame::Resume {
                token: f.string("token")?,
                last_seq: f.uint("last_seq", u64::MAX)?,
                rid,
            }
        }
        "host" => {
            let rid = f.begin("host")?;
            ClientFrame::Host {
                code: f.string("code")?,
                token: f.string("token")?,
                last_seq: f.uint_opt("last_seq", u64::MAX)?,
                rid,
            }
        }
        "answer" => {
            let rid = f.begin("answer")?;
            ClientFrame::Answer {
                question: f.uint("question", u64::from(u16::MAX))? as u16,
                choice: f.uint("choice", u64::from(u8::MAX))? as u8,
                rid,
            }
        }
        "start" => ClientFrame::Start {
            rid: f.begin("start")?,
        },
        "next" => ClientFrame::Next {
            rid: f.begin("next")?,
        },
        "skip" => ClientFrame::Skip {
            rid: f.begin("skip")?,
        },
        "end" => ClientFrame::End {
            rid: f.begin("end")?,
        },
        "kick" => {
            let rid = f.begin("kick")?;
            ClientFrame::Kick {
                player_id: f.uint("player_id", u64::from(u32::MAX))? as u32,
                rid,
            }
        }
        "lock" => ClientFrame::Lock {
            rid: f.begin("lock")?,
        },
        "unlock" => ClientFrame::Unlock {
            rid: f.begin("unlock")?,
        },
        "ping" => ClientFrame::Ping {
            rid: f.begin("ping")?,
        },
        _ => {
            return Err(DecodeError::UnknownType {
                t: t.to_owned(),
                rid: f.rid,
            });
        }
    })
}

/// A frame's fields while it is being built.
struct Frame {
    fields: fields::Fields,
    kind: &'static str,
    rid: Option<u64>,
}

impl Frame {
    /// Names the frame being built (its errors say which) and reads its
    /// `rid`, which from here on must be valid.
    fn begin(&mut self, kind: &'static str) -> Result<Option<u64>, DecodeError> {
        self.kind = kind;
        self.uint_opt("rid", MAX_RID)
    }

    /// The last value of a field (as JSON parsers keep the last duplicate).
    fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn invalid(&self, reason: String) -> DecodeError {
        DecodeError::Invalid {
            kind: self.kind,
            reason,
            rid: self.rid,
        }
    }

    fn string(&self, name: &str) -> Result<String, DecodeError> {
        match self.get(name) {
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(other) => {
                Err(self.invalid(format!("\"{name}\" must be a string, got {}", other.kind())))
            }
            None => Err(self.invalid(format!("\"{name}\" is missing: a string"))),
        }
    }

    fn uint(&self, name: &str, max: u64) -> Result<u64, DecodeError> {
        self.uint_opt(name, max)?.ok_or_else(|| {
            self.invalid(format!("\"{name}\" is missing: an integer from 0 to {max}"))
        })
    }

    /// An optional unsigned integer; `null` counts as absent.
    fn uint_opt(&self, name: &str, max: u64) -> Result<Option<u64>, DecodeError> {
        match self.get(name) {
            None | Some(Value::Nil) => Ok(None),
            Some(Value::Int(n)) if (0..=i128::from(max)).contains(n) => Ok(Some(*n as u64)),
            Some(Value::Int(n)) => Err(self.invalid(format!(
                "\"{name}\" must be an integer from 0 to {max}, got {n}"
            ))),
            Some(other) => Err(self.invalid(format!(
                "\"{name}\" must be an integer from 0 to {max}, got {}",
                other.kind()
            ))),
        }
    }
}

/// Writes one server frame. MessagePack writes structs as maps with string keys
/// so that a JavaScript client reads the same shape as the JSON.
pub fn encode(encoding: Encoding, frame: &ServerFrame) -> Result<Bytes, String> {
    match encoding {
        Encoding::Json => serde_json::to_vec(frame)
            .map(Bytes::from)
            .map_err(|e| e.to_string()),
        Encoding::MsgPack => rmp_serde::to_vec_named(frame)
            .map(Bytes::from)
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use quizgate_domain::{CloseReason, Phase, Standing};

    use super::*;
    use crate::{AnswerResult, AnswerStatus, QuestionView, QuizView, Role, Welcome};

    fn json(s: &str) -> Result<ClientFrame, DecodeError> {
        decode(Encoding::Json, s.as_bytes())
    }

    #[test]
    fn each_listed_kind_decodes_to_itself_once() {
        let fields = |t: &str| match t {
            "join" => r#","code":"K7MQ2X","nickname":"a""#,
            "resume" => r#","token":"t","last_seq":0"#,
            "host" => r#","code":"K7MQ2X","token":"t""#,
            "answer" => r#","question":0,"choice":0"#,
            "kick" => r#","player_id":1"#,
            _ => "",
        };
        for t in ClientFrame::KINDS {
            let frame = json(&format!(r#"{{"t":"{t}"{}}}"#, fields(t))).expect(t);
            assert_eq!(frame.kind(), t);
        }
        let unique: std::collections::HashSet<_> = ClientFrame::KINDS.iter().collect();
        assert_eq!(unique.len(), ClientFrame::KINDS.len());
    }

    fn msgpack(v: serde_json::Value) -> Result<ClientFrame, DecodeError> {
        decode(
            Encoding::MsgPack,
            &rmp_serde::to_vec_named(&v).expect("encode"),
        )
    }

    #[test]
    fn client_frames_decode_in_both_encodings() {
        let cases: Vec<(serde_json::Value, ClientFrame)> = vec![
            (
                serde_json::json!({"t": "join", "code": "ABC234", "nickname": "ann", "rid": 1}),
                ClientFrame::Join {
                    code: "ABC234".into(),
                    nickname: "ann".into(),
                    rid: Some(1),
                },
            ),
            (
                serde_json::json!({"t": "answer", "question": 2, "choice": 1}),
                ClientFrame::Answer {
                    question: 2,
                    choice: 1,
                    rid: None,
                },
            ),
            (
                serde_json::json!({"t": "start", "extra": true}),
                ClientFrame::Start { rid: None },
            ),
            (
                serde_json::json!({"t": "resume", "token": "x", "last_seq": 12}),
                ClientFrame::Resume {
                    token: "x".into(),
                    last_seq: 12,
                    rid: None,
                },
            ),
            (
                serde_json::json!({"t": "host", "code": "ABC234", "token": "h", "rid": 9}),
                ClientFrame::Host {
                    code: "ABC234".into(),
                    token: "h".into(),
                    last_seq: None,
                    rid: Some(9),
                },
            ),
            (
                serde_json::json!({"t": "host", "code": "ABC234", "token": "h", "last_seq": 4}),
                ClientFrame::Host {
                    code: "ABC234".into(),
                    token: "h".into(),
                    last_seq: Some(4),
                    rid: None,
                },
            ),
            (
                serde_json::json!({"t": "ping"}),
                ClientFrame::Ping { rid: None },
            ),
        ];
        for (value, want) in cases {
            assert_eq!(json(&value.to_string()).as_ref(), Ok(&want), "json {value}");
            assert_eq!(
                msgpack(value.clone()).as_ref(),
                Ok(&want),
                "msgpack {value}"
            );
        }
    }

    #[test]
    fn bad_frames_are_classified() {
        let cases: &[(&str, ErrorCode)] = &[
            ("{", ErrorCode::MalformedFrame),
            ("[1,2]", ErrorCode::MalformedFrame),
            ("{\"type\":\"join\"}", ErrorCode::MalformedFrame),
            ("{\"t\":7}", ErrorCode::MalformedFrame),
            ("{\"t\":\"dance\"}", ErrorCode::UnknownType),
            (
                "{\"t\":\"join\",\"code\":\"ABC234\"}",
                ErrorCode::InvalidFrame,
            ),
            (
                "{\"t\":\"answer\",\"question\":0,\"choice\":\"b\"}",
                ErrorCode::InvalidFrame,
            ),
            (
                "{\"t\":\"answer\",\"question\":0,\"choice\":300}",
                ErrorCode::InvalidFrame,
            ),
            (
                "{\"t\":\"answer\",\"question\":-1,\"choice\":0}",
                ErrorCode::InvalidFrame,
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(json(raw).map_err(|e| e.code()), Err(*want), "{raw}");
        }
        assert_eq!(
            decode(Encoding::MsgPack, &[0xc1]).map_err(|e| e.code()),
            Err(ErrorCode::MalformedFrame)
        );
        assert_eq!(
            msgpack(serde_json::json!({"t": "join"})).map_err(|e| e.code()),
            Err(ErrorCode::InvalidFrame)
        );
        let missing = json("{\"t\":\"join\",\"code\":\"ABC234\"}").expect_err("missing");
        assert!(missing.to_string().contains("nickname"), "{missing}");
    }

    #[test]
    fn server_frames_round_trip_in_both_encodings() {
        let frames = vec![
            ServerFrame::Question {
                seq: 3,
                ts: 10,
                question: QuestionView {
                    index: 0,
                    count: 2,
                    text: "Q?".into(),
                    choices: vec!["a".into(), "b".into()],
                    time_limit_ms: 10_000,
                    points: 1000,
                    started_ms: 10,
                    deadline_ms: 10_010,
                },
            },
            ServerFrame::Reveal {
                seq: 4,
                ts: 11,
                index: 0,
                correct: 1,
                distribution: vec![2, 1],
                answered: 3,
                reason: CloseReason::AllAnswered,
            },
            ServerFrame::Leaderboard {
                seq: 5,
                ts: 12,
                top: vec![Standing {
                    player_id: 1,
                    nickname: "ann".into(),
                    score: 900,
                    rank: 1,
                }],
                players: 3,
            },
            ServerFrame::AnswerResult(AnswerResult {
                rid: Some(4),
                question: 0,
                status: AnswerStatus::Accepted,
                choice: Some(1),
                points: Some(900),
                total: Some(900),
            }),
            ServerFrame::Welcome(Box::new(Welcome {
                rid: None,
                server: "0.1.0".into(),
                role: Role::Player,
                code: "ABC234".into(),
                title: "T".into(),
                player_id: Some(1),
                token: Some("tok".into()),
                resumed: None,
                quiz: QuizView {
                    phase: Phase::Lobby,
                    question_count: 2,
                    question: None,
                    correct: None,
                    distribution: None,
                    answered: None,
                    players: 1,
                    top: vec![],
                    seq: 0,
                    you: None,
                    locked: false,
                },
            })),
            ServerFrame::error(ErrorCode::NicknameTaken, "taken", Some(2)),
        ];
        for frame in frames {
            for enc in [Encoding::Json, Encoding::MsgPack] {
                let bytes = encode(enc, &frame).expect("encode");
                let back: ServerFrame = match enc {
                    Encoding::Json => serde_json::from_slice(&bytes).expect("json"),
                    Encoding::MsgPack => rmp_serde::from_slice(&bytes).expect("msgpack"),
                };
                assert_eq!(back, frame, "{enc:?}");
            }
        }
    }

    #[test]
    fn msgpack_frames_are_maps_with_string_keys() {
        let bytes =
            encode(Encoding::MsgPack, &ServerFrame::Pong { rid: None, ts: 1 }).expect("encode");
        let value: serde_json::Value = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(value, serde_json::json!({"t": "pong", "ts": 1}));
    }
}
