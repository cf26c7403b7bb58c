//! What the players measured: counts, latencies and exactly-once accounting.

use std::collections::BTreeMap;

use serde_json::json;

/// What one player measured.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) connect_ms: Vec<u32>,
    /// Unix ms of the first answer sent and the last ack received.
    pub(crate) first_answer: u64,
    pub(crate) last_ack: u64,
    pub(crate) delivery_ms: Vec<u32>,
    /// Answer sent → its `answer_result`, in µs.
    pub(crate) ack_us: Vec<u32>,
    /// Per question: when its first answer was sent and its last ack came.
    pub(crate) questions: BTreeMap<u16, Window>,
    pub(crate) deliveries: u64,
    pub(crate) gaps: u64,
    pub(crate) dups: u64,
    pub(crate) accepted: u64,
    pub(crate) duplicates: u64,
    pub(crate) late: u64,
    pub(crate) unavailable: u64,
    pub(crate) reconnects: u64,
    pub(crate) resume_ms: Vec<u32>,
    pub(crate) snapshot_resumes: u64,
    pub(crate) failures: u64,
    pub(crate) finished: u64,
    /// Players whose final standing disagrees with their last acknowledged total.
    pub(crate) mismatches: u64,
}

/// One question's answering, in Unix ms: from the first answer sent to the
/// last ack received, and how many acks came.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) first_send: u64,
    pub(crate) last_ack: u64,
    pub(crate) acks: u64,
}

impl Window {
    fn merge(&mut self, o: Window) {
        self.first_send = match (self.first_send, o.first_send) {
            (0, x) | (x, 0) => x,
            (a, b) => a.min(b),
        };
        self.last_ack = self.last_ack.max(o.last_ack);
        self.acks += o.acks;
    }
}

impl Tally {
    pub(crate) fn sent(&mut self, question: u16, at_ms: u64) {
        self.questions.entry(question).or_default().merge(Window {
            first_send: at_ms,
            ..Window::default()
        });
    }

    pub(crate) fn acked(&mut self, question: u16, at_ms: u64) {
        self.questions.entry(question).or_default().merge(Window {
            last_ack: at_ms,
            acks: 1,
            ..Window::default()
        });
    }

    /// `[question, first send ms, last ack ms, acks]` for each question.
    pub(crate) fn windows(&self) -> serde_json::Value {
        self.questions
            .iter()
            .map(|(q, w)| json!([q, w.first_send, w.last_ack, w.acks]))
            .collect()
    }

    pub(crate) fn merge(&mut self, o: Tally) {
        for (q, w) in o.questions {
            self.questions.entry(q).or_default().merge(w);
        }
        self.connect_ms.extend(o.connect_ms);
        if o.first_answer > 0 {
            self.first_answer = if self.first_answer == 0 {
                o.first_answer
            } else {
                self.first_answer.min(o.first_answer)
            };
        }
        self.last_ack = self.last_ack.max(o.last_ack);
        self.delivery_ms.extend(o.delivery_ms);
        self.ack_us.extend(o.ack_us);
        self.resume_ms.extend(o.resume_ms);
        self.deliveries += o.deliveries;
        self.gaps += o.gaps;
        self.dups += o.dups;
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.unavailable += o.unavailable;
        self.reconnects += o.reconnects;
        self.snapshot_resumes += o.snapshot_resumes;
        self.failures += o.failures;
        self.finished += o.finished;
        self.mismatches += o.mismatches;
    }
}

/// Percentiles of µs samples, in ms with 0.01 ms resolution.
pub(crate) fn percentiles_us_as_ms(mut v: Vec<u32>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_unstable();
    let p = |q: f64| f64::from(v[((v.len() - 1) as f64 * q).round() as usize] / 10) / 100.0;
    json!({"n": v.len(), "p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": p(1.0)})
}

pub(crate) fn percentiles(mut v: Vec<u32>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    json!({"n": v.len(), "p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": v[v.len() - 1]})
}
