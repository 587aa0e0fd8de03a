//! Wire-level value types shared by every shoal crate: the Manila API microversion, pool
//! references (`host@backend#pool`), Manila's timestamp format and the replication types.
//! Nothing here does IO.

pub mod host;
pub mod time;
pub mod version;

pub use host::HostRef;
pub use version::{ApiVersion, VersionError};

/// Manila's `replication_type` extra spec values (`manila/common/constants.py`).
pub const REPLICATION_TYPES: [&str; 3] = ["writable", "readable", "dr"];
