//! Integration tests: the real `quizgate` binary, real WebSocket clients.

mod admin;
mod api;
mod backup;
mod bad_input;
mod chaos;
mod cluster;
mod observability;
mod protocol;
mod quiz;
mod schema;
mod security;
mod support;
mod traces;
mod web;
