//! Test-only kit: real node processes on free ports, a real WebSocket client in
//! both encodings, a minimal HTTP client, and (for cluster tests) a real
//! `redis-server`. Everything is killed on drop; every wait is bounded and waits for a
//! condition ([`wait_until`]), not for a fixed time.

mod client;
mod haproxy;
mod http;
mod node;
mod redis;
mod wait;

pub use client::Client;
pub use haproxy::Haproxy;
pub use http::{create_quiz, http_request, http_request_with, sample_quiz};
pub use node::NodeProcess;
pub use redis::{RedisCluster, RedisServer};
/// The WebSocket library the client uses, for tests that craft raw frames.
pub use tokio_tungstenite::tungstenite;
pub use wait::wait_until;

/// How long any single wait in a test may take before it fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
