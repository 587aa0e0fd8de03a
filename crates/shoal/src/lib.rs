//! The shoal binary's library half: command-line parsing ([`cli`]), the identity admin CLI
//! ([`identity_cli`]) and assembly of a running
//! node from a [`Config`] ([`server`]). `main.rs` only wires these to the process; tests and
//! `shoal-testkit` start the same [`server::Server`] in-process.

pub mod bench;
pub mod bench_api_nodes;
pub mod bench_lag;
pub mod bench_nfs;
pub mod bench_peer;
pub mod bench_replication;
pub mod bench_soak;
pub mod cli;
pub mod identity_cli;
pub mod netns;
pub mod server;

pub use shoal_core::Config;
