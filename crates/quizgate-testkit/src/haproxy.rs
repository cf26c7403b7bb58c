use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

/// HAProxy running `deploy/haproxy/haproxy.cfg` in front of three nodes, on a
/// free loopback port. Killed on drop.
#[derive(Debug)]
pub struct Haproxy {
    _child: Child,
    pub addr: SocketAddr,
}

impl Haproxy {
    /// `nodes`: (WebSocket address, admin address) of each of the three nodes.
    pub async fn start(
        config: impl AsRef<Path>,
        nodes: [(SocketAddr, SocketAddr); 3],
    ) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db")
            .arg("-f")
            .arg(config.as_ref())
            .env("QG_LB_BIND", addr.to_string());
        for (i, (ws, admin)) in nodes.iter().enumerate() {
            cmd.env(format!("QG_NODE{}", i + 1), ws.to_string())
                .env(format!("QG_CHECK{}", i + 1), admin.port().to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawn haproxy (make deps)")?;
        crate::wait_until("haproxy listens", Duration::from_secs(5), || async {
            Ok(tokio::net::TcpStream::connect(addr).await?)
        })
        .await?;
        Ok(Self {
            _child: child,
            addr,
        })
    }
}
