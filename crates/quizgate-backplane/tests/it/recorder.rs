//! A sink that keeps every event it is handed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use quizgate_backplane::EventSink;
use quizgate_domain::{JoinCode, Sequenced};

/// Every event delivered, per quiz.
#[derive(Default)]
pub(crate) struct Recorder(Mutex<HashMap<JoinCode, Vec<Sequenced>>>);

impl EventSink for Recorder {
    fn deliver(&self, quiz: &JoinCode, event: Arc<Sequenced>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(quiz.clone()).or_default().push((*event).clone());
    }
}

impl Recorder {
    /// The quiz's events once `n` have arrived (delivery runs on its own task).
    pub(crate) async fn events(&self, code: &JoinCode, n: usize) -> Result<Vec<Sequenced>> {
        quizgate_testkit::wait_until(
            &format!("{n} events of {code} delivered"),
            Duration::from_secs(2),
            || async {
                let events = self.now(code);
                if events.len() < n {
                    bail!("{} delivered", events.len());
                }
                Ok(events)
            },
        )
        .await
    }

    /// The quiz's events delivered so far.
    pub(crate) fn now(&self, code: &JoinCode) -> Vec<Sequenced> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(code)
            .cloned()
            .unwrap_or_default()
    }
}
