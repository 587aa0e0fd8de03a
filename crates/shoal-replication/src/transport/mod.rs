//! Replication between nodes: a share node's endpoint serving its active shares' trees
//! ([`server`]) and the client its peers read them with ([`client`]), over HTTP.
//!
//! A sync of a secondary whose active lives on another node reads the same five things a
//! local sync reads (a listing, whole files, block deltas, hashes), each with one request to
//! the active's node: `POST /replication/v1/{walk,files,delta,hash}`. Small files travel in
//! batches of up to 256 per request; large files travel by blocks. The formats are in
//! `wire`.
//!
//! A secondary that follows the active's change journal asks `POST
//! /replication/v1/changes` instead of walking: the active's node reads its journal since
//! the requester's cursor and looks at the recorded paths there (the same code as a local
//! change-list sync), and the requester merges the answer into its published manifest.
//! A promotion on another node quiesces the active first with `POST
//! /replication/v1/quiesce` (and lifts it with `unquiesce` when the promotion fails).
//!
//! Authentication is the cluster secret (see [`crate::peer_auth`]): every request is signed
//! (node, method, path, timestamp, nonce, body hash) and the endpoint refuses unsigned,
//! wrongly signed, stale and replayed requests; every response carries a MAC bound to the
//! request's nonce, so a requester keeps only what a node with the secret sent.

pub mod client;
pub mod server;
pub mod tls;
pub(crate) mod wire;

use axum::http::HeaderMap;

use crate::peer_auth::RequestSignature;

pub use client::{ClientOptions, PeerClient, PeerSource, QuiesceFailure};
pub use server::{
    JournalLookup, QuiesceCall, QuiesceError, QuiesceHook, RootPolicy, ServerState, router,
};

/// Header naming the requesting node.
pub const HEADER_NODE: &str = "x-shoal-node";
/// Header with the request's signing time (seconds since the UNIX epoch).
pub const HEADER_TIMESTAMP: &str = "x-shoal-timestamp";
/// Header with the request's nonce.
pub const HEADER_NONCE: &str = "x-shoal-nonce";
/// Header with the request's MAC (hex).
pub const HEADER_MAC: &str = "x-shoal-signature";

/// The endpoints, under `/replication/v1/`.
pub(crate) const ENDPOINTS: [&str; 7] = [
    "walk",
    "files",
    "delta",
    "hash",
    "changes",
    "quiesce",
    "unquiesce",
];

/// The signature a request carries, if all four headers are there and readable.
pub(crate) fn signature_from_headers(headers: &HeaderMap) -> Option<RequestSignature> {
    let get = |name: &str| headers.get(name)?.to_str().ok().map(str::to_owned);
    Some(RequestSignature {
        node: get(HEADER_NODE)?,
        timestamp: get(HEADER_TIMESTAMP)?.parse().ok()?,
        nonce: get(HEADER_NONCE)?,
        mac: get(HEADER_MAC)?,
    })
}

#[cfg(test)]
mod tests;
