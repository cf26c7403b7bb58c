//! Waiting for a condition, never for a fixed time.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::time::Instant;

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(10);

/// Runs `check` until it returns `Ok`, every 10 ms for at most `limit`. An
/// `Err` means "not yet"; if the time runs out, the error names `what` and
/// carries the last reason `check` gave.
pub async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let until = Instant::now() + limit;
    loop {
        let last = match tokio::time::timeout_at(until, check()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e,
            Err(_) => anyhow!("the check itself did not finish"),
        };
        if Instant::now() + POLL > until {
            return Err(last.context(format!("{what}: not within {limit:?}")));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_value_once_the_condition_holds() -> Result<()> {
        let mut calls = 0;
        let got = wait_until("third call", Duration::from_secs(1), || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    anyhow::bail!("call {n}")
                }
                Ok(n)
            }
        })
        .await?;
        assert_eq!(got, 3);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn fails_with_the_last_reason_when_time_runs_out() {
        let err = wait_until("never", Duration::from_millis(100), || async {
            Err::<(), _>(anyhow!("still 2 of 3"))
        })
        .await
        .expect_err("times out");
        let text = format!("{err:#}");
        assert!(text.contains("never: not within 100ms"), "{text}");
        assert!(text.contains("still 2 of 3"), "{text}");
    }
}
