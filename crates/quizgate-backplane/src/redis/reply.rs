//! The scripts' replies, parsed into types. Every reply a script can give is
//! named here; anything else is [`BackplaneError::Corrupt`], never a default,
//! and nothing indexes a reply that might be short.

use std::sync::Arc;

use fred::prelude::Value;
use quizgate_domain::{AnswerOutcome, AnswerRecord, PlayerId, QuizSnapshot, Sequenced};

use crate::{BackplaneError, Missed, Result};

pub(crate) fn corrupt(what: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Corrupt(what.to_string())
}

/// A script's reply as a list with a leading tag.
pub(crate) struct Reply {
    script: &'static str,
    items: Vec<Value>,
}

impl Reply {
    pub(crate) fn new(script: &'static str, v: Value) -> Result<Self> {
        match v {
            Value::Array(items) if !items.is_empty() => Ok(Self { script, items }),
            other => Err(corrupt(format!("{script}: expected a list, got {other:?}"))),
        }
    }

    pub(crate) fn tag(&self) -> Result<String> {
        self.text(0)
    }

    pub(crate) fn unknown<T>(&self) -> Result<T> {
        Err(corrupt(format!(
            "{}: unknown reply {:?}",
            self.script, self.items
        )))
    }

    fn get(&self, i: usize) -> Result<&Value> {
        self.items
            .get(i)
            .ok_or_else(|| corrupt(format!("{}: reply has no item {i}", self.script)))
    }

    pub(crate) fn text(&self, i: usize) -> Result<String> {
        let v = self.get(i)?;
        v.as_string()
            .ok_or_else(|| corrupt(format!("{}: item {i} is not text: {v:?}", self.script)))
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64> {
        let v = self.get(i)?;
        v.as_i64().ok_or_else(|| {
            corrupt(format!(
                "{}: item {i} is not an integer: {v:?}",
                self.script
            ))
        })
    }

    pub(crate) fn snapshot(&self, i: usize) -> Result<QuizSnapshot> {
        serde_json::from_str(&self.text(i)?)
            .map_err(|e| corrupt(format!("{}: snapshot: {e}", self.script)))
    }

    pub(crate) fn record(&self, i: usize) -> Result<AnswerRecord> {
        let raw = self.text(i)?;
        let mut parts = raw.split(':').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(choice)), Some(Ok(points)), Some(Ok(total)), None) => Ok(AnswerRecord {
                choice: u8::try_from(choice).map_err(|_| corrupt("answer record choice"))?,
                points: u32::try_from(points).map_err(|_| corrupt("answer record points"))?,
                total,
            }),
            _ => Err(corrupt(format!("{}: answer record {raw:?}", self.script))),
        }
    }

    /// `welcome(snapshot, missed)` from `prelude.lua`, after the `ok` tag.
    pub(crate) fn welcome(&self) -> Result<(QuizSnapshot, Missed)> {
        let snapshot = self.snapshot(1)?;
        let missed = match self.int(2)? {
            0 => None,
            1 => Some(
                (3..self.items.len())
                    .map(|i| parse_event(self.text(i)?.as_bytes()).map(Arc::new))
                    .collect::<Result<Vec<_>>>()?,
            ),
            other => return Err(corrupt(format!("{}: replay flag {other}", self.script))),
        };
        Ok((snapshot, missed))
    }

    /// `answers.lua`'s reply to a batch of `n`: `None` if the quiz does not
    /// exist, else one outcome per answer (`None` if its player does not exist).
    pub(crate) fn answers(&self, n: usize) -> Result<Option<Vec<Option<AnswerOutcome>>>> {
        if self.items.len() == 1 && self.tag()? == "gone" {
            return Ok(None);
        }
        if self.items.len() != 2 * n {
            return Err(corrupt(format!(
                "{}: {} items for {n} answers",
                self.script,
                self.items.len()
            )));
        }
        (0..n)
            .map(|i| {
                let at = 2 * i;
                Ok(Some(match self.text(at)?.as_str() {
                    "accepted" => AnswerOutcome::Accepted(self.record(at + 1)?),
                    "duplicate" => AnswerOutcome::Duplicate(self.record(at + 1)?),
                    "late" => AnswerOutcome::Late,
                    "wrong_phase" => AnswerOutcome::WrongPhase,
                    "invalid_choice" => AnswerOutcome::InvalidChoice,
                    "not_found" => return Ok(None),
                    _ => return self.unknown(),
                }))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// `scores.lua`'s `ok` reply: the seq, then members and negated scores.
    pub(crate) fn scores(&self) -> Result<(u64, Vec<(PlayerId, u64)>)> {
        let seq = self
            .text(1)?
            .parse()
            .map_err(|_| corrupt(format!("{}: seq", self.script)))?;
        let rest = &self.items[2..];
        if !rest.len().is_multiple_of(2) {
            return Err(corrupt(format!("{}: odd score list", self.script)));
        }
        let desc = rest
            .chunks_exact(2)
            .map(|pair| {
                let member = pair[0].as_string().unwrap_or_default();
                let id = member
                    .parse::<PlayerId>()
                    .map_err(|_| corrupt(format!("score member {member:?}")))?;
                let negated = pair[1]
                    .as_f64()
                    .ok_or_else(|| corrupt(format!("score of {member:?}")))?;
                Ok((id, (-negated) as u64))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((seq, desc))
    }
}

pub(crate) fn parse_event(raw: &[u8]) -> Result<Sequenced> {
    serde_json::from_slice(raw).map_err(|e| corrupt(format!("event: {e}")))
}
