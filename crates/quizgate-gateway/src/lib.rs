//! One quizgate node: the public listener (WebSocket `/ws` and the hosts' HTTP
//! API), the private admin listener (health, readiness, metrics), a task per
//! connection, the local registry of which connection follows which quiz, and
//! the ticker that fires deadlines and coalesced leaderboards.
//!
//! Architecture invariant: the gateway never decides a quiz rule; it asks the
//! [`quizgate_backplane::Backplane`] and relays what it answers. Only this crate
//! names tungstenite or hyper.

mod close;
mod config;
mod connection;
mod error;
mod frames;
mod guard;
mod http;
mod jwt;
mod listener;
mod node;
mod outbound;
mod proxy;
mod registry;
mod server;
mod session;
mod ticker;
mod tls;
mod view;
mod wire;

pub use config::{BackplaneConfig, Config};
pub use error::GatewayError;
pub use guard::{AddressLimits, ApiKey, CreateAccess, Credentials, MAX_DEFINITION_BYTES, Quota};
pub use jwt::JwtKey;
pub use quizgate_domain::MAX_PLAYERS;
pub use tls::TlsFiles;

pub use server::Server;
pub use session::{MIN_SECRET_BYTES, SessionKey, SessionKeys};
