//! The store conformance suite: generic tests over `S: ForTest`, expanded for each engine by
//! [`store_test_suite!`] (in `sqlite.rs` always, in `postgres.rs` skipping unless
//! `TEST_DATABASE_URL` is set). Each test gets its own fresh database.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::model::NewShareType;

pub(crate) mod admin;
pub(crate) mod availability_zones;
pub(crate) mod operations;
pub(crate) mod pools;
pub(crate) mod services;
pub(crate) mod share_types;

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
