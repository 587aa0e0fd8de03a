//! The API integration-test binary: every test boots a whole shoal node in-process on an
//! ephemeral port (`shoal_testkit::TestApp`) and talks HTTP to it. With `TEST_DATABASE_URL`
//! set the same tests run on PostgreSQL.

mod access;
mod auth;
mod catalog;
mod messages;
mod plumbing;
mod quotas;
mod replicas;
mod share_types;
mod shares;
mod versions;
