//! Test-only kit: real node processes on free ports, a real WebSocket client in
//! both encodings, a minimal HTTP client, and (for cluster tests) a real
//! `redis-server`. Everything is killed on drop; every wait is bounded and waits for a
//! condition ([`wait_until`]), not for a fixed time.

mod client;
mod haproxy;
mod http;
mod node;
mod redis;
pub mod tls;
mod wait;

pub use client::Client;
pub use haproxy::Haproxy;
pub use http::{create_quiz, http_request, http_request_with, request_over, sample_quiz};
pub use node::NodeProcess;
pub use redis::{RedisCluster, RedisServer};
/// The WebSocket library the client uses, for tests that craft raw frames.
pub use tokio_tungstenite::tungstenite;
pub use wait::wait_until;

/// The API key every test node accepts ([`NodeProcess::spawn`] configures it
/// unless the test sets `QUIZGATE_API_KEYS` or `QUIZGATE_OPEN_CREATE` itself),
/// and that [`http_request`] and [`create_quiz`] present.
pub const API_KEY: &str = "qgk_testkit";
/// Its `QUIZGATE_API_KEYS` entry: `name:sha256(API_KEY)`.
pub const API_KEY_ENTRY: &str =
    "testkit:d6ae8f8ca16ce73f53c78bb124c572438b8010fdf9fec7e4327bdee1934097ef";

/// The session key every test node signs with, unless a test sets
/// `QUIZGATE_SESSION_KEYS` itself: all nodes of a test cluster share it.
pub const SESSION_KEYS: &str =
    "test:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// How long any single wait in a test may take before it fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
