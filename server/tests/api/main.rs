//! Integration tests: the real server, over HTTP(S), on PostgreSQL and SQLite.

mod helpers;

mod activity;
mod admin;
mod auth;
mod bad_input;
mod dashboard;
mod delivery;
mod events;
mod hardening;
mod ingest;
mod policy;
mod retention;
mod seed;
mod tls;
