//! WFH Monitor server: authenticated ingest of heartbeats and detailed logs,
//! storage on PostgreSQL or SQLite, 30-day retention, and the admin API.
//!
//! `main.rs` only parses arguments; everything lives here so tests can call it.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod export;
pub mod geoip;
pub mod group_commit;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod private_fs;
pub mod retention;
pub mod routes;
pub mod screenshots;
pub mod startup;
pub mod state;
pub mod summary;
pub mod telemetry;
pub mod throttle;
pub mod tls;

pub use startup::Application;
