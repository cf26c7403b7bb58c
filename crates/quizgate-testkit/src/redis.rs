use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A real `redis-server` on a free loopback port, with AOF (`appendfsync
/// always`) in its own directory, so that a restart keeps every write. Killed
/// and its directory removed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts without persistence: for tests about rules and delivery, where
    /// an fsync per write would only slow them down.
    pub async fn start_ephemeral() -> Result<Self> {
        Self::start_with(&["--appendonly", "no"]).await
    }

    /// Starts with extra `redis-server` arguments (e.g. cluster settings).
    pub async fn start_with(extra: &[&str]) -> Result<Self> {
        // Bounded retries: a free port can be taken between probe and bind.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port(extra.contains(&"--cluster-enabled"))?;
            let dir =
                std::env::temp_dir().join(format!("quizgate-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let mut server = Self {
                child: None,
                port,
                dir,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(&self.dir)
        .args(["--protected-mode", "no", "--loglevel", "warning"])
        .args(&self.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        self.child = Some(
            cmd.spawn()
                .context("spawn redis-server (is it installed? make deps)")?,
        );
        for _ in 0..100 {
            if self.ping().await {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                bail!("redis-server exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("redis-server did not answer PING")
    }

    async fn ping(&self) -> bool {
        let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_millis(200),
            TcpStream::connect(("127.0.0.1", self.port)),
        )
        .await
        else {
            return false;
        };
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").await.is_ok()
            && matches!(tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await, Ok(Ok(n)) if buf[..n].starts_with(b"+PONG"))
    }

    /// Stops the server the way an operator would (SIGTERM: it flushes its AOF).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().context("pid")?;
            std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()?;
            tokio::time::timeout(crate::WAIT, child.wait())
                .await
                .context("redis-server did not stop")??;
        }
        Ok(())
    }

    /// Starts it again on the same port with the same data.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.launch().await
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub async fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .await?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port(cluster: bool) -> Result<u16> {
    // Bounded: a cluster node also needs port + 10000 for its bus.
    for _ in 0..50 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if !cluster
            || (port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok())
        {
            return Ok(port);
        }
    }
    bail!("no free port")
}

/// A Redis Cluster of `masters` masters with one replica each, made with
/// `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start(masters: usize) -> Result<Self> {
        let mut nodes = Vec::new();
        for _ in 0..masters * 2 {
            nodes.push(
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ])
                .await?,
            );
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        crate::wait_until("cluster_state:ok", Duration::from_secs(10), || async {
            for n in &nodes {
                if !n
                    .cli(&["cluster", "info"])
                    .await?
                    .contains("cluster_state:ok")
                {
                    bail!("port {} not ok yet", n.port);
                }
            }
            Ok(())
        })
        .await?;
        Ok(Self { nodes })
    }

    /// The `redis-cluster://` URL naming every node.
    pub fn url(&self) -> String {
        let mut nodes = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port));
        let first = nodes.next().unwrap_or_default();
        let rest: Vec<String> = nodes.map(|n| format!("node={n}")).collect();
        format!("redis-cluster://{first}?{}", rest.join("&"))
    }
}
