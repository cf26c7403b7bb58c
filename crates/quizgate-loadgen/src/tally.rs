//! What the players measured: counts, latencies and exactly-once accounting.

use serde_json::json;

/// What one player measured.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) connect_ms: Vec<u32>,
    /// Unix ms of the first answer sent and the last ack received.
    pub(crate) first_answer: u64,
    pub(crate) last_ack: u64,
    pub(crate) delivery_ms: Vec<u32>,
    pub(crate) ack_ms: Vec<u32>,
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

impl Tally {
    pub(crate) fn merge(&mut self, o: Tally) {
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
        self.ack_ms.extend(o.ack_ms);
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

pub(crate) fn percentiles(mut v: Vec<u32>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    json!({"n": v.len(), "p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": v[v.len() - 1]})
}
