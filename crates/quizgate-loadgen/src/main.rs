//! quizgate-loadgen: one process plays many players (or one host) against a
//! quizgate cluster and prints one JSON line of measurements. Stay under the
//! 20,000 open files of a process: run several processes for more players.
//!
//! Latency of an event = this machine's clock at receipt − the server's `ts`
//! on the event, so generator and nodes must share a clock (same machine).

mod cli;
mod host;
mod players;
mod tally;
mod ws;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Cmd};
use crate::host::host;
use crate::players::players;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(async {
        match cli.cmd {
            Cmd::Players(a) => players(a).await,
            Cmd::Host(a) => host(a).await,
        }
    })?;
    println!("{out}");
    Ok(())
}
