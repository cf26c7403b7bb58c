use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `quizgate` process on free loopback ports, killed on drop.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    pub ws_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Starts `bin` with `env` on top of free ports and JSON logs, and waits for
    /// its "listening" line (the addresses) and then its "serving" line (from
    /// then on `/readyz` answers 200 if the backplane is ready).
    pub async fn spawn(bin: impl AsRef<Path>, env: &[(&str, &str)]) -> Result<Self> {
        let mut cmd = Command::new(bin.as_ref());
        cmd.env("QUIZGATE_LISTEN", "127.0.0.1:0")
            .env("QUIZGATE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("QUIZGATE_LOG_FORMAT", "json")
            .env("QUIZGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let sets_access = env
            .iter()
            .any(|(k, _)| matches!(*k, "QUIZGATE_API_KEYS" | "QUIZGATE_OPEN_CREATE"));
        if !sets_access {
            cmd.env("QUIZGATE_API_KEYS", crate::API_KEY_ENTRY);
        }
        if !env.iter().any(|(k, _)| *k == "QUIZGATE_SESSION_KEYS") {
            cmd.env("QUIZGATE_SESSION_KEYS", crate::SESSION_KEYS);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.as_ref().display()))?;
        let stderr = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let addrs = tokio::time::timeout(crate::WAIT, async {
            let mut addrs = None;
            while let Some(line) = lines.next_line().await? {
                logs.lock().expect("logs").push(line.clone());
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v["message"] == "listening" {
                    let ws: SocketAddr = v["ws_addr"].as_str().context("ws_addr")?.parse()?;
                    let admin: SocketAddr =
                        v["admin_addr"].as_str().context("admin_addr")?.parse()?;
                    addrs = Some((ws, admin));
                } else if v["message"] == "serving"
                    && let Some(addrs) = addrs
                {
                    return Ok::<_, anyhow::Error>(addrs);
                }
            }
            bail!("node exited before serving")
        })
        .await;
        let (ws_addr, admin_addr) = match addrs {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => bail!("{e}; logs: {:?}", logs.lock().expect("logs")),
            Err(_) => bail!(
                "node did not listen in time; logs: {:?}",
                logs.lock().expect("logs")
            ),
        };
        // Keep draining stderr so the node never blocks on a full pipe.
        let sink = Arc::clone(&logs);
        // Test-only: a log reader that ends with the child's stderr.
        #[allow(clippy::disallowed_methods)]
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut logs = sink.lock().expect("logs");
                if logs.len() < 10_000 {
                    logs.push(line);
                }
            }
        });
        Ok(Self {
            child,
            ws_addr,
            admin_addr,
            logs,
        })
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) -> Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{sig} failed");
        }
        Ok(())
    }

    pub async fn wait_exit(&mut self, limit: Duration) -> Result<ExitStatus> {
        Ok(tokio::time::timeout(limit, self.child.wait())
            .await
            .context("node did not exit in time")??)
    }

    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
