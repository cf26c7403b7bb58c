//! Command-line arguments.

use std::net::{IpAddr, SocketAddr};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "quizgate-loadgen", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Many players in one quiz.
    Players(PlayersArgs),
    /// The host of one quiz: starts it and runs questions at a fixed pace.
    Host(HostArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct PlayersArgs {
    /// Node addresses (host:port); players are spread round-robin, and a player
    /// that loses its node reconnects to the next one.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) nodes: Vec<SocketAddr>,
    /// Loopback source addresses to connect from, round-robin.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    pub(crate) sources: Vec<IpAddr>,
    #[arg(long)]
    pub(crate) code: String,
    #[arg(long)]
    pub(crate) count: usize,
    /// First player number (for unique nicknames across processes).
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: usize,
    /// json, msgpack or mixed (alternating).
    #[arg(long, default_value = "mixed")]
    pub(crate) encoding: String,
    /// New connections per second from this process (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub(crate) connect_rate: u64,
    /// Answer each question after a random think time in this range (ms).
    #[arg(long, value_delimiter = '-')]
    pub(crate) think_ms: Option<Vec<u64>>,
    /// Stop after this many seconds even if the quiz has not ended.
    #[arg(long, default_value_t = 600)]
    pub(crate) max_secs: u64,
    /// Print `{"ready": n}` once all players joined (for orchestration).
    #[arg(long)]
    pub(crate) announce: bool,
    /// Start every player on the first node (the others are for reconnects).
    #[arg(long)]
    pub(crate) pin_first: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HostArgs {
    #[arg(long)]
    pub(crate) node: SocketAddr,
    #[arg(long)]
    pub(crate) code: String,
    #[arg(long)]
    pub(crate) token: String,
    /// Start once this many players have joined.
    #[arg(long)]
    pub(crate) players: u32,
    /// Milliseconds between host commands (each start/next opens a question,
    /// each skip closes one: two commands make a question, a reveal and a leaderboard).
    #[arg(long, default_value_t = 500)]
    pub(crate) interval_ms: u64,
    /// Questions to run before ending the quiz.
    #[arg(long)]
    pub(crate) questions: u32,
    /// Let questions run to their end (answers or deadline) instead of skipping.
    #[arg(long)]
    pub(crate) no_skip: bool,
}
