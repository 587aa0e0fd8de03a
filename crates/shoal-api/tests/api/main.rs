//! The API integration-test binary: every test boots a whole shoal node in-process on an
//! ephemeral port (`shoal_testkit::TestApp`) and talks HTTP to it. With `TEST_DATABASE_URL`
//! set the same tests run on PostgreSQL.

mod access;
mod auth;
mod catalog;
mod clients;
mod fuzz_http;
mod healthcheck;
mod housekeeping;
mod identity;
mod identity_admin;
mod lifecycle;
mod messages;
mod metrics;
mod nfs;
mod plumbing;
mod quotas;
mod replica_access;
mod replica_actions;
mod replica_create;
mod replica_delete;
mod replica_export_locations;
mod replica_fixtures;
mod replica_list_show;
mod replica_local;
mod replica_metadata;
mod replica_quotas_policies;
mod replica_scheduling;
mod replicas;
mod scheduler_hints;
mod share_instances;
mod share_migration;
mod share_types;
mod shares;
mod snapshot_fixtures;
mod snapshots;
mod snapshots_replicated;
mod tenant_matrix;
mod versions;
