//! Whole-scheduler tests: the entry points, the reference two-back-end setup from the
//! replication spec, and property tests of the invariants.

use proptest::prelude::*;
use serde_json::json;

use crate::test_utils::{pool, request};
use crate::*;

/// The acceptance environment: two dummy back ends, one pool each, in az1 and az2, one
/// replication domain, `readable` replication.
fn reference_pools() -> Vec<PoolState> {
    vec![
        pool("manila-acc@dummy1#fake_pool_for_dummy1")
            .az("az1")
            .replication("readable", "DUMMY_DOMAIN")
            .build(),
        pool("manila-acc@dummy2#fake_pool_for_dummy2")
            .az("az2")
            .replication("readable", "DUMMY_DOMAIN")
            .build(),
    ]
}

const DUMMY1: &str = "manila-acc@dummy1#fake_pool_for_dummy1";
const DUMMY2: &str = "manila-acc@dummy2#fake_pool_for_dummy2";

fn readable_type(req: &mut ScheduleRequest) {
    for (k, v) in [
        ("driver_handles_share_servers", "False"),
        ("snapshot_support", "True"),
        ("replication_type", "readable"),
    ] {
        req.extra_specs.insert(k.to_owned(), v.to_owned());
    }
}

fn replica_of(active: &str, existing: &[&str]) -> ScheduleRequest {
    let mut req = request(1);
    readable_type(&mut req);
    req.replication = Some(ReplicaRequest {
        active_replica_host: active.to_owned(),
        replication_type: "readable".to_owned(),
    });
    req.excluded_hosts = existing.iter().map(|h| (*h).to_owned()).collect();
    req
}

#[test]
fn share_in_az1_then_replica_lands_in_az2() {
    let mut pools = reference_pools();
    let mut share = request(1);
    readable_type(&mut share);
    share.availability_zone = Some("az1".to_owned());
    assert_eq!(schedule(&share, &mut pools).as_deref(), Ok(DUMMY1));

    // checklist 286: no AZ asked, any pool of the domain without a replica
    let replica = replica_of(DUMMY1, &[DUMMY1]);
    assert_eq!(schedule(&replica, &mut pools).as_deref(), Ok(DUMMY2));

    // checklist 287: every pool of the domain holds a replica
    let again = replica_of(DUMMY1, &[DUMMY1, DUMMY2]);
    let err = schedule(&again, &mut pools).unwrap_err();
    assert_eq!(err.last_filter, "ShareReplicationFilter");
    assert_eq!(err.detail_id(), "014");
}

#[test]
fn replica_asking_for_the_active_zone_fails() {
    let mut pools = reference_pools();
    let mut replica = replica_of(DUMMY1, &[DUMMY1]);
    replica.availability_zone = Some("az1".to_owned());
    // az1 leaves only the active replica's pool, which the replication filter removes
    let err = schedule(&replica, &mut pools).unwrap_err();
    assert_eq!(err.last_filter, "ShareReplicationFilter");
    // checklist 290: asking for az2 works
    replica.availability_zone = Some("az2".to_owned());
    assert_eq!(schedule(&replica, &mut pools).as_deref(), Ok(DUMMY2));
}

#[test]
fn errored_replica_keeps_its_pool_excluded() {
    // checklist 288: a replica in error on dummy2 still blocks dummy2
    let mut pools = reference_pools();
    let replica = replica_of(DUMMY1, &[DUMMY1, DUMMY2]);
    assert!(schedule(&replica, &mut pools).is_err());
}

#[test]
fn share_backend_name_does_not_pin_replicas() {
    // checklist 289
    let mut pools = reference_pools();
    let mut share = request(1);
    readable_type(&mut share);
    share
        .extra_specs
        .insert("share_backend_name".to_owned(), "dummy1".to_owned());
    assert_eq!(schedule(&share, &mut pools).as_deref(), Ok(DUMMY1));
    let mut replica = replica_of(DUMMY1, &[DUMMY1]);
    replica
        .extra_specs
        .insert("share_backend_name".to_owned(), "dummy1".to_owned());
    assert_eq!(schedule(&replica, &mut pools).as_deref(), Ok(DUMMY2));
}

#[test]
fn down_and_disabled_services_get_no_work() {
    let pools = vec![
        pool("a@b#down").down().capacity(100, 100).build(),
        pool("a@b#disabled").disabled().capacity(100, 100).build(),
        pool("a@b#small").capacity(100, 5).build(),
    ];
    let names = |r: Result<Vec<&PoolState>, NoValidHost>| -> Vec<String> {
        r.map(|v| v.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(filter_pools(&request(1), &pools)), ["a@b#small"]);
    let err = filter_pools(&request(10), &pools).unwrap_err();
    assert_eq!(err.last_filter, "CapacityFilter");

    // an admin naming a disabled service reaches it; a down one never
    let mut req = request(10);
    req.only_host = Some("a@b#disabled".to_owned());
    assert_eq!(names(filter_pools(&req, &pools)), ["a@b#disabled"]);
    req.only_host = Some("a@b#down".to_owned());
    assert_eq!(
        filter_pools(&req, &pools).unwrap_err().last_filter,
        "OnlyHostFilter"
    );
    // a back-end hint selects among its pools
    req.only_host = Some("a@b".to_owned());
    req.size_gb = 1;
    assert_eq!(
        names(filter_pools(&req, &pools)),
        ["a@b#disabled", "a@b#small"]
    );
}

#[test]
fn no_usable_service_is_reported_as_such() {
    let pools = vec![
        pool("a@b#p").down().build(),
        pool("c@d#p").disabled().build(),
    ];
    let err = filter_pools(&request(1), &pools).unwrap_err();
    assert!(err.is_no_hosts());
    assert_eq!(err.detail_id(), "028");
    assert_eq!(
        err.to_string(),
        "There are no hosts to fulfill this provisioning request. Are share backend services down?"
    );
    assert!(filter_pools(&request(1), &[]).unwrap_err().is_no_hosts());
}

#[test]
fn failure_message_names_the_last_filter() {
    let mut pools = vec![pool("a@b#p").az("az1").build()];
    let mut req = request(1);
    req.availability_zone = Some("az2".to_owned());
    let err = schedule(&req, &mut pools).unwrap_err();
    assert_eq!(err.last_filter, "AvailabilityZoneFilter");
    assert_eq!(err.detail_id(), "007");
    assert_eq!(
        err.reason,
        "No valid host was found. Failed to find a weighted host, the last executed filter \
         was AvailabilityZoneFilter."
    );
    assert!(!err.is_no_hosts());

    let mut req = request(1);
    req.extra_specs
        .insert("snapshot_support".to_owned(), "False".to_owned());
    assert_eq!(
        schedule(&req, &mut pools).unwrap_err().last_filter,
        "CapabilitiesFilter"
    );
    let mut req = request(1);
    req.only_host = Some("x@y#z".to_owned());
    let err = schedule(&req, &mut pools).unwrap_err();
    assert_eq!(
        (err.last_filter, err.detail_id()),
        ("OnlyHostFilter", "002")
    );
    let mut pools = vec![pool("a@b#p").cap("filter_function", json!("0")).build()];
    let err = schedule(&request(1), &mut pools).unwrap_err();
    assert_eq!((err.last_filter, err.detail_id()), ("DriverFilter", "010"));
}

#[test]
fn a_batch_spreads_by_consuming_capacity() {
    let mut pools = vec![
        pool("h@b#a").capacity(100, 30).build(),
        pool("h@b#b").capacity(100, 25).build(),
    ];
    let req = request(10);
    let placed: Vec<String> = (0..6)
        .map(|_| schedule(&req, &mut pools).unwrap_or_default())
        .collect();
    // free a/b: 30/25 -> a, 20/25 -> b, 20/15 -> a, 10/15 -> b, 10/5 -> a, 0/5 -> none
    assert_eq!(placed, ["h@b#a", "h@b#b", "h@b#a", "h@b#b", "h@b#a", ""]);
    assert_eq!(pools[0].capabilities["free_capacity_gb"], json!(0));
    assert_eq!(pools[1].capabilities["free_capacity_gb"], json!(5));
    assert_eq!(pools[0].capabilities["allocated_capacity_gb"], json!(30));
}

#[test]
fn schedule_with_custom_filters_and_weighers() {
    let mut pools = vec![
        pool("h@b#a").capacity(100, 30).build(),
        pool("h@b#b").capacity(100, 60).build(),
    ];
    let stack = CapacityWeigher { multiplier: -1.0 };
    let chosen = schedule_with(&request(5), &mut pools, &[&CapacityFilter], &[&stack]);
    assert_eq!(chosen.as_deref(), Ok("h@b#a"));
    let none = schedule_with(&request(5), &mut pools, &[], &[]);
    assert_eq!(none.as_deref(), Ok("h@b#a")); // no weighers: ties by name
}

// ----------------------------------------------------------------------------------------
// Properties

const AZS: [&str; 3] = ["az1", "az2", "az3"];
const DOMAINS: [Option<&str>; 3] = [None, Some("D1"), Some("D2")];

fn arb_pool(index: usize) -> impl Strategy<Value = PoolState> {
    (
        (0..3usize, 1..1000u64, 0..=100u64, 0..50u64),
        (any::<bool>(), prop::option::of(1..50u32), 0..3u64),
        (
            prop_oneof![1 => Just(0usize), 4 => Just(1), 1 => Just(2)],
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.1),
        ),
    )
        .prop_map(
            move |(
                (az, total, free_pct, reserved),
                (thin, ratio_tenths, prov_factor),
                (domain, readable, up, disabled),
            )| {
                let mut b = pool(&format!("h{}@b{}#p{index}", index % 3, index % 2))
                    .az(AZS[az])
                    .capacity(total, total * free_pct / 100)
                    .cap("reserved_percentage", json!(reserved))
                    .cap(
                        "replication_type",
                        json!(if readable { "readable" } else { "dr" }),
                    );
                if thin {
                    b = b
                        .thin()
                        .cap("provisioned_capacity_gb", json!(total * prov_factor));
                    if let Some(r) = ratio_tenths {
                        b = b.cap("max_over_subscription_ratio", json!(f64::from(r) / 10.0));
                    }
                }
                if let Some(d) = DOMAINS[domain] {
                    b = b.cap("replication_domain", json!(d));
                }
                if !up {
                    b = b.down();
                }
                if disabled {
                    b = b.disabled();
                }
                b.build()
            },
        )
}

fn arb_pools() -> impl Strategy<Value = Vec<PoolState>> {
    (1..9usize).prop_flat_map(|n| (0..n).map(arb_pool).collect::<Vec<_>>())
}

/// A request over `pools`: maybe an AZ, maybe type AZs, maybe a replica of one of the
/// pools (whose name is then excluded along with a random subset).
fn arb_request(pools: &[PoolState]) -> impl Strategy<Value = ScheduleRequest> + use<> {
    let names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
    let n = names.len();
    (
        0..150u64,
        prop::option::weighted(0.3, 0..3usize),
        prop::option::weighted(0.3, prop::collection::vec(0..3usize, 0..3)),
        prop::option::weighted(0.5, (0..n, prop::bool::weighted(0.8))),
        prop::collection::vec(prop::bool::weighted(0.15), n),
        prop::bool::weighted(0.25),
    )
        .prop_map(move |(size, az, type_azs, replica, excluded, thick_type)| {
            let mut req = request(size);
            req.availability_zone = az.map(|i| AZS[i].to_owned());
            req.availability_zones =
                type_azs.map(|v| v.into_iter().map(|i| AZS[i].to_owned()).collect());
            if thick_type {
                req.extra_specs
                    .insert("thin_provisioning".to_owned(), "<is> False".to_owned());
            }
            req.excluded_hosts = names
                .iter()
                .zip(&excluded)
                .filter(|(_, e)| **e)
                .map(|(name, _)| name.clone())
                .collect();
            if let Some((active, readable)) = replica {
                let rtype = if readable { "readable" } else { "dr" };
                req.extra_specs
                    .insert("replication_type".to_owned(), rtype.to_owned());
                req.replication = Some(ReplicaRequest {
                    active_replica_host: names[active].clone(),
                    replication_type: rtype.to_owned(),
                });
                req.excluded_hosts.push(names[active].clone());
            }
            req
        })
}

fn arb_case() -> impl Strategy<Value = (Vec<PoolState>, ScheduleRequest)> {
    arb_pools().prop_flat_map(|pools| {
        let req = arb_request(&pools);
        (Just(pools), req)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn scheduling_twice_gives_the_same_result((pools, req) in arb_case()) {
        let mut first = pools.clone();
        let mut second = pools.clone();
        prop_assert_eq!(schedule(&req, &mut first), schedule(&req, &mut second));
        prop_assert_eq!(first, second);
    }

    #[test]
    fn input_order_does_not_matter((pools, req) in arb_case(), seed in any::<u64>()) {
        let mut shuffled = pools.clone();
        // a deterministic permutation from the seed
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = usize::try_from(seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)).unwrap();
            shuffled.swap(i, j);
        }
        let mut original = pools.clone();
        prop_assert_eq!(schedule(&req, &mut original), schedule(&req, &mut shuffled));
    }

    #[test]
    fn thick_pools_keep_their_reserve((pools, req) in arb_case()) {
        let mut after = pools.clone();
        if let Ok(name) = schedule(&req, &mut after) {
            let chosen = after.iter().find(|p| p.name == name).unwrap();
            if !(chosen.thin_provisioning() && req.use_thin_logic()) {
                let total = chosen.total_capacity().gb().unwrap();
                let free = chosen.free_capacity().gb().unwrap();
                let reserved = chosen.reserved_percentage().unwrap() / 100.0;
                prop_assert!(free >= total * reserved, "{name}: free {free} total {total} reserved {reserved}");
            }
        }
    }

    #[test]
    fn placement_respects_zones_domains_and_exclusions((pools, req) in arb_case()) {
        let mut after = pools.clone();
        let Ok(name) = schedule(&req, &mut after) else { return Ok(()) };
        let chosen = pools.iter().find(|p| p.name == name).unwrap();
        prop_assert!(chosen.service_up && !chosen.service_disabled);
        if let Some(az) = &req.availability_zone {
            prop_assert_eq!(&chosen.availability_zone, az);
        }
        if let Some(azs) = req.availability_zones.as_ref().filter(|v| !v.is_empty()) {
            prop_assert!(azs.contains(&chosen.availability_zone));
        }
        prop_assert!(!req.excluded_hosts.contains(&name));
        if let Some(replica) = &req.replication {
            prop_assert_ne!(&name, &replica.active_replica_host);
            let active = pools.iter().find(|p| p.name == replica.active_replica_host).unwrap();
            prop_assert!(active.service_up && !active.service_disabled);
            prop_assert!(chosen.replication_domain().is_some());
            prop_assert_eq!(chosen.replication_domain(), active.replication_domain());
            prop_assert_eq!(&chosen.capabilities["replication_type"], &json!(replica.replication_type));
        }
    }

    #[test]
    fn the_chosen_pool_passes_every_filter_and_wins((pools, req) in arb_case()) {
        let Ok(candidates) = filter_pools(&req, &pools) else { return Ok(()) };
        let weighers = default_weighers();
        let weighers: Vec<&dyn Weigher> = weighers.iter().map(AsRef::as_ref).collect();
        let best = weigh_pools(&req, &candidates, &weighers)[0].pool.name.clone();
        let mut after = pools.clone();
        prop_assert_eq!(schedule(&req, &mut after), Ok(best.clone()));
        // consumption touched the winner only
        for (before, now) in pools.iter().zip(&after) {
            if before.name != best {
                prop_assert_eq!(before, now);
            }
        }
    }
}
