//! Group commit of answers. When a question opens, thousands of players answer
//! within seconds, all to one quiz: one script call each would cost one round
//! trip and one script run per answer. Instead, while a script call for a quiz
//! is in flight, that quiz's next answers wait here, and the next call takes
//! them all (up to [`MAX_BATCH`]). At low load a batch is one answer and goes
//! at once: nothing ever waits for a timer, only for the call before it.
//!
//! Every answer is still acknowledged only after the call that wrote it
//! returned: the ack follows the write, as before.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use quizgate_domain::{AnswerOutcome, JoinCode, PlayerId};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::Core;
use crate::{BackplaneError, Result};

/// Most answers one script call judges: bounds how long Redis is busy with one
/// call (about 2 µs per answer).
pub(crate) const MAX_BATCH: usize = 256;
/// Most answers that may wait for one quiz on one node; one more is refused
/// as busy (nothing was done). A connection has one answer in flight at a
/// time, so this is reached only with that many local players answering at once.
pub(crate) const MAX_WAITING: usize = 16_384;

/// An answer: player, question index, choice.
pub(crate) type Answer = (PlayerId, u16, u8);
type Outcome = Result<Option<AnswerOutcome>>;

struct Waiting {
    answer: Answer,
    /// The trace the answer is part of: the events it causes carry it.
    trace: Option<String>,
    reply: oneshot::Sender<Outcome>,
}

/// The answers waiting, per quiz. A quiz has an entry exactly while its flusher
/// task runs.
#[derive(Default)]
pub(crate) struct Answers {
    waiting: Mutex<HashMap<JoinCode, VecDeque<Waiting>>>,
    flushers: TaskTracker,
}

impl Answers {
    /// The lock is never held across an await, so a poisoned one is consistent.
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<JoinCode, VecDeque<Waiting>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next batch for `code`, or `None` (and the quiz's entry removed) when
    /// nothing waits: the flusher then ends.
    fn next_batch(&self, code: &JoinCode) -> Option<Vec<Waiting>> {
        let mut waiting = self.waiting();
        let queue = waiting.get_mut(code)?;
        if queue.is_empty() {
            waiting.remove(code);
            return None;
        }
        let n = queue.len().min(MAX_BATCH);
        Some(queue.drain(..n).collect())
    }
}

/// Queues one answer for the quiz's next batch and waits for its outcome.
pub(crate) async fn submit(core: &Arc<Core>, code: &JoinCode, answer: Answer) -> Outcome {
    let (reply, outcome) = oneshot::channel();
    let trace = crate::current_trace();
    let start_flusher = {
        let mut waiting = core.answers.waiting();
        match waiting.entry(code.clone()) {
            Entry::Occupied(mut queue) => {
                if queue.get().len() >= MAX_WAITING {
                    return Err(BackplaneError::Busy(format!(
                        "{MAX_WAITING} answers already waiting for this quiz"
                    )));
                }
                queue.get_mut().push_back(Waiting {
                    answer,
                    trace,
                    reply,
                });
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::from([Waiting {
                    answer,
                    trace,
                    reply,
                }]));
                true
            }
        }
    };
    if start_flusher {
        let core = Arc::clone(core);
        let code = code.clone();
        core.answers
            .flushers
            .clone()
            .spawn(async move { flush(&core, &code).await });
    }
    outcome.await.unwrap_or_else(|_| {
        Err(BackplaneError::Unavailable(
            "the answer's batch was dropped".into(),
        ))
    })
}

/// Runs the quiz's batches one after the other until none waits.
async fn flush(core: &Core, code: &JoinCode) {
    while let Some(batch) = core.answers.next_batch(code) {
        let answers: Vec<_> = batch.iter().map(|w| (w.answer, w.trace.clone())).collect();
        match core.answer_batch(code, &answers).await {
            Ok(Some(outcomes)) => {
                for (w, outcome) in batch.into_iter().zip(outcomes) {
                    // The player may have gone; its answer stands all the same.
                    let _ = w.reply.send(Ok(outcome));
                }
            }
            Ok(None) => {
                for w in batch {
                    let _ = w.reply.send(Ok(None));
                }
            }
            Err(e) => {
                for w in batch {
                    let _ = w.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
