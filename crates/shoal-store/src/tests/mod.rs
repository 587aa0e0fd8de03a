//! The store conformance suite: generic tests over `S: ForTest`, expanded for each engine by
//! [`store_test_suite!`] (in `sqlite.rs` always, in `postgres.rs` skipping unless
//! `TEST_DATABASE_URL` is set). Each test gets its own fresh database.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::model::{NewOperation, NewShareType};
use crate::model_shares::{NewShare, NewShareInstance, QuotaRequest, ShareRow};

pub(crate) mod access;
pub(crate) mod admin;
pub(crate) mod availability_zones;
pub(crate) mod identity;
pub(crate) mod lifecycle;
pub(crate) mod messages;
pub(crate) mod operations;
pub(crate) mod pools;
pub(crate) mod quotas;
pub(crate) mod replicas;
pub(crate) mod services;
pub(crate) mod share_types;
pub(crate) mod shares;
pub(crate) mod snapshots;

/// Expands every generic test of the suite as a `#[tokio::test]` for `$store`.
/// Add one name per new test here.
macro_rules! store_test_suite {
    ($store:ty) => {
        $crate::tests::store_test_suite!(@cases $store;
            admin: [
                migrate_is_idempotent,
                ping_and_backend_name,
                closed_store_is_unavailable,
            ],
            share_types: [
                insert_and_get_share_type,
                duplicate_share_type_conflicts,
                missing_share_type_is_not_found,
                list_share_types_is_ordered_with_specs,
                list_share_types_filters_visibility,
                update_share_type,
                delete_share_type_cascades,
                set_extra_specs_upserts,
                delete_extra_spec,
                share_type_access,
            ],
            availability_zones: [
                ensure_availability_zone_is_idempotent,
                ensure_availability_zone_concurrently_creates_one_row,
                zones_in_service_exclude_disabled_only_zones,
            ],
            services: [
                heartbeat_creates_then_increments,
                list_services_filters,
                set_service_disabled,
            ],
            pools: [
                upsert_list_delete_pools,
            ],
            operations: [
                insert_and_get_operation,
                claim_returns_oldest_for_the_right_host,
                concurrent_claims_never_share_an_operation,
                expired_lease_is_reclaimed_and_old_worker_conflicts,
                renew_extends_the_lease,
                fail_with_retry_respects_not_before,
                list_and_count_operations,
                delete_finished_operations_keeps_unfinished_and_recent,
            ],
            shares: [
                create_and_get_share,
                create_share_conflicts_and_missing_type,
                create_share_over_quota_leaves_nothing,
                concurrent_create_share_respects_quota,
                list_shares_filters_and_orders,
                update_share_fields,
                share_metadata_merge_replace_delete,
                share_type_in_use_is_counted_and_not_deletable,
                create_share_instance_adds_a_replica,
                list_share_replicas_filters_by_project_and_share,
                update_share_instance_if_is_compare_and_set,
                update_share_instance_if_enqueues_only_when_it_wins,
                set_share_instance_host_if_unplaced,
                list_share_instances_on_host_matches_pools_only,
                list_all_share_instances_filters,
                delete_share_instance_and_maybe_share,
                delete_share_instance_is_idempotent,
                resize_commit_and_replica_delete_in_either_order,
                concurrent_deletes_of_last_instances_remove_the_share,
                export_locations_replace_keeps_ids,
                allocated_gb_by_pool_sums_placed_instances,
            ],
            access: [
                insert_and_get_access_rule,
                access_rule_uniqueness_and_missing_targets,
                instance_access_state_is_compare_and_set,
                deny_flow_removes_the_rule_with_its_last_mapping,
                add_instance_access_rows_for_a_new_instance,
                access_rules_go_with_the_share,
                concurrent_mapping_removals_remove_the_rule_once,
                access_rule_metadata_merge_and_delete,
                access_rule_metadata_goes_with_the_rule,
                concurrent_access_rule_metadata_updates_keep_every_key,
                access_rule_level_update_requeues_the_rule,
            ],
            quotas: [
                quota_overrides_set_get_delete,
                charge_quota_checks_limits_and_clamps,
                reserve_quota_counts_reserved_and_is_atomic,
                commit_reservations_is_idempotent,
                rollback_reservations_is_idempotent,
                expire_reservations_rolls_back_expired_only,
                concurrent_reservations_respect_the_limit,
            ],
            messages: [
                insert_get_list_delete_messages,
                delete_expired_messages,
            ],
            replicas: [
                update_share_instances_if_swaps_roles,
                update_share_instances_if_is_all_or_nothing,
                update_share_instances_if_checks_null_replica_state,
                concurrent_promotions_have_one_winner,
                replica_metadata_crud,
                list_replica_metadata_of_many_instances,
                replica_metadata_and_history_go_with_the_instance,
                share_lock_acquire_renew_expire_unlock,
                concurrent_share_locks_have_one_winner,
                replication_history_insert_and_list,
            ],
            snapshots: [
                create_get_list_snapshots,
                create_snapshot_refusals_leave_nothing,
                snapshot_instances_cas_and_removal,
                share_with_snapshots_keeps_its_row,
                add_snapshot_instances_is_idempotent,
                snapshot_update_and_metadata,
                snapshot_export_locations_and_access,
                concurrent_removals_of_last_snapshot_instances_release_once,
                share_and_snapshot_instances_change_together,
            ],
            identity: [
                identity_projects_insert_get_list_delete,
                identity_users_insert_get_list_delete,
                update_identity_user_applies_only_given_fields,
                identity_password_hash_is_redacted_in_debug,
                identity_roles_grant_list_revoke,
                identity_assignments_go_with_user_and_project,
                identity_token_revocation_is_idempotent_and_purged,
                identity_signing_key_is_created_once,
                concurrent_identity_signing_keys_agree,
                many_concurrent_identity_signing_keys_agree,
            ],
            lifecycle: [
                soft_delete_and_restore_share,
                soft_delete_and_restore_check_instance_statuses,
                list_expired_soft_deleted_shares,
                list_share_instances_by_export_path,
                finish_share_manage_is_compare_and_set,
            ],
        );
    };
    (@cases $store:ty; $($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $module {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $case() {
                        $crate::tests::$module::$case::<$store>().await
                    }
                )*
            }
        )*
    };
}
pub(crate) use store_test_suite;

/// A fixed point in time plus `secs` seconds; tests never read the clock.
pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0)
        .single()
        .expect("valid date")
        + chrono::TimeDelta::seconds(secs)
}

/// A share type input with the given specs.
pub(crate) fn new_type(name: &str, is_public: bool, specs: &[(&str, &str)]) -> NewShareType {
    NewShareType {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        description: Some(format!("{name} type")),
        is_public,
        extra_specs: specs_of(specs),
        created_at: at(0),
    }
}

/// Builds a spec map.
pub(crate) fn specs_of(specs: &[(&str, &str)]) -> BTreeMap<String, String> {
    specs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Builds a quota request.
pub(crate) fn quota(project: &str, deltas: &[(&str, i64)], limits: &[(&str, i64)]) -> QuotaRequest {
    QuotaRequest {
        project_id: project.to_owned(),
        deltas: deltas.iter().map(|(r, d)| ((*r).to_owned(), *d)).collect(),
        limits: limits.iter().map(|(r, l)| ((*r).to_owned(), *l)).collect(),
    }
}

/// A `creating`, unplaced, non-replicated instance input.
pub(crate) fn new_instance() -> NewShareInstance {
    NewShareInstance {
        id: Uuid::new_v4(),
        status: "creating".to_owned(),
        replica_state: None,
        host: String::new(),
        availability_zone: Some("az1".to_owned()),
        share_type_id: None,
        share_network_id: None,
        share_server_id: None,
        cast_rules_to_readonly: false,
        access_rules_status: "active".to_owned(),
        progress: None,
        metadata: BTreeMap::new(),
    }
}

/// A share row of `size` GiB for `project`, created at `at(secs)`, without a type.
pub(crate) fn share_row(project: &str, size: i64, secs: i64) -> ShareRow {
    ShareRow {
        id: Uuid::new_v4(),
        project_id: project.to_owned(),
        user_id: format!("{project}-user"),
        name: Some(format!("share-{secs}")),
        description: None,
        size_gb: size,
        share_proto: "NFS".to_owned(),
        share_type_id: None,
        is_public: false,
        replication_type: None,
        snapshot_id: None,
        share_group_id: None,
        task_state: None,
        metadata: BTreeMap::new(),
        created_at: at(secs),
        updated_at: None,
        is_soft_deleted: false,
        scheduled_to_be_deleted_at: None,
    }
}

/// A share creation charging `shares +1` and `gigabytes +size` without limits, with no
/// operations.
pub(crate) fn new_share(project: &str, size: i64, secs: i64) -> NewShare {
    NewShare {
        share: share_row(project, size, secs),
        instance: new_instance(),
        quota: quota(project, &[("shares", 1), ("gigabytes", size)], &[]),
        operations: Vec::new(),
    }
}

/// An operation input for `target`.
pub(crate) fn op_for(kind: &str, target: Uuid, host: Option<&str>, secs: i64) -> NewOperation {
    NewOperation {
        kind: kind.to_owned(),
        target_id: target.to_string(),
        host: host.map(str::to_owned),
        payload: serde_json::json!({"target": target.to_string()}),
        now: at(secs),
    }
}
