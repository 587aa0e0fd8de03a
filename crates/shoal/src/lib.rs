//! The shoal binary's library half: command-line parsing ([`cli`]) and assembly of a running
//! node from a [`Config`] ([`server`]). `main.rs` only wires these to the process; tests and
//! `shoal-testkit` start the same [`server::Server`] in-process.

pub mod bench;
pub mod bench_replication;
pub mod cli;
pub mod server;

pub use shoal_core::Config;
