//! The supervised delivery task of a backplane (the memory backplane's
//! delivery loop, the Redis subscriber). It runs for the backplane's whole
//! life; if it ever ends, it says why, and the backplane stops being ready so
//! that `/readyz` turns 503 and the load balancer moves players elsewhere.

use std::future::Future;
use std::sync::{Arc, Mutex};

use quizgate_domain::{JoinCode, Sequenced};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::EventSink;

/// Why a delivery task ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryEnd {
    /// The backplane was dropped: the normal end.
    #[error("stopped")]
    Stopped,
    /// The Redis client's message stream closed: nothing more can arrive.
    #[error("{0} closed")]
    Closed(&'static str),
    /// A bug: the task panicked.
    #[error("panicked: {0}")]
    Panicked(String),
}

/// A delivery task and how it ended, once it has.
#[derive(Debug)]
pub(crate) struct Supervised {
    end: Arc<Mutex<Option<DeliveryEnd>>>,
    _tasks: TaskTracker,
    _stop: DropGuard,
}

impl Supervised {
    /// Spawns `task(stop)` on the current runtime; it must return when `stop`
    /// is cancelled (which happens when this handle is dropped).
    pub(crate) fn spawn<F, Fut>(name: &'static str, task: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = DeliveryEnd> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let end = Arc::new(Mutex::new(None));
        let tasks = TaskTracker::new();
        let inner = tasks.spawn(task(stop.clone()));
        let recorded = Arc::clone(&end);
        tasks.spawn(async move {
            let ended = match inner.await {
                Ok(end) => end,
                Err(e) => DeliveryEnd::Panicked(e.to_string()),
            };
            if ended != DeliveryEnd::Stopped {
                tracing::error!(task = name, end = %ended, "delivery task ended: node not ready");
            }
            *recorded.lock().unwrap_or_else(|p| p.into_inner()) = Some(ended);
        });
        tasks.close();
        Self {
            end,
            _tasks: tasks,
            _stop: stop.drop_guard(),
        }
    }

    /// How the task ended; `None` while it runs.
    pub(crate) fn end(&self) -> Option<DeliveryEnd> {
        self.end.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A delivery path's hand on the sink: it hands events over and flushes
/// after [`crate::FLUSH_EVERY`] of them, or when the path says it has nothing
/// more at hand (see [`EventSink::flush`]).
pub(crate) struct Outlet<'a> {
    sink: &'a dyn EventSink,
    unflushed: usize,
}

impl<'a> Outlet<'a> {
    pub(crate) fn new(sink: &'a dyn EventSink) -> Self {
        Self { sink, unflushed: 0 }
    }

    pub(crate) fn deliver(&mut self, quiz: &JoinCode, event: Arc<Sequenced>) {
        self.sink.deliver(quiz, event);
        self.unflushed += 1;
        if self.unflushed >= crate::FLUSH_EVERY {
            self.flush();
        }
    }

    /// Nothing more at hand: what was delivered may leave.
    pub(crate) fn flush(&mut self) {
        if self.unflushed > 0 {
            self.sink.flush();
            self.unflushed = 0;
        }
    }
}
