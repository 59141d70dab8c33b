//! WFH Monitor agent.
//!
//! This crate grows into the Tauri tray app and its headless engine (see the
//! agent issues). Today it holds the agent's API client, which the server's
//! integration tests use to drive the real server.

pub mod client;
