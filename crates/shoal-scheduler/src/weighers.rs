//! Host weighers: rank the pools that passed every filter (Manila's
//! `manila/scheduler/weighers/`).
//!
//! Each weigher gives every candidate a raw weight; the raw weights of one weigher are
//! normalised to `0.0..=1.0` across the candidates ([`normalize`]), multiplied by the
//! weigher's multiplier and summed over weighers. The highest total wins; equal totals
//! are broken by pool name (ascending) so the choice never depends on input order.

use crate::evaluator::{PyValue, evaluate, reported_function, scheduler_variables};
use crate::pool::Capacity;
use crate::{PoolState, ScheduleRequest};

/// A host weigher (Manila's `BaseHostWeigher`).
pub trait Weigher {
    /// Manila's class name, for logs.
    fn name(&self) -> &'static str;

    /// Scale of this weigher's normalised weight in the sum (Manila's
    /// `weight_multiplier`); negative values invert its preference.
    fn multiplier(&self) -> f64 {
        1.0
    }

    /// The raw weight of one pool (higher is better). `±inf` are allowed and are mapped
    /// just below/above the finite weights before normalisation.
    fn weigh(&self, pool: &PoolState, req: &ScheduleRequest) -> f64;
}

/// Manila's `scheduler_default_weighers`: [`CapacityWeigher`], [`GoodnessWeigher`] and
/// [`HostAffinityWeigher`] (which only ranks shares created from snapshots), each with
/// multiplier 1.0.
pub fn default_weighers() -> Vec<Box<dyn Weigher>> {
    vec![
        Box::new(CapacityWeigher::default()),
        Box::new(GoodnessWeigher::default()),
        Box::new(HostAffinityWeigher),
    ]
}

/// Prefers pools close to the snapshot a share is created from
/// (`manila/scheduler/weighers/host_affinity.py`): 100 on the snapshot's pool, 75 on
/// another pool of its back end, 50 on another back end when the share asks for the zone of
/// the snapshot's share, 25 otherwise (no zone asked, or another); 0 for every pool when the
/// share is not created from a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostAffinityWeigher;

impl Weigher for HostAffinityWeigher {
    fn name(&self) -> &'static str {
        "HostAffinityWeigher"
    }

    fn weigh(&self, pool: &PoolState, req: &ScheduleRequest) -> f64 {
        let Some(snapshot_host) = &req.snapshot_host else {
            return 0.0;
        };
        let (snapshot_backend, snapshot_pool) = snapshot_host
            .split_once('#')
            .unwrap_or((snapshot_host.as_str(), ""));
        if snapshot_backend == pool.host {
            return if !snapshot_pool.is_empty() && snapshot_pool == pool.pool {
                100.0
            } else {
                75.0
            };
        }
        // As Manila: the requested zone (every candidate is in it) against the source's.
        match (&req.availability_zone, &req.snapshot_availability_zone) {
            (Some(wanted), Some(source)) if wanted == source => 50.0,
            _ => 25.0,
        }
    }
}

/// Spreads shares: prefers the pool with the most free space after the reserved share
/// (`CapacityWeigher`, `manila/scheduler/weighers/capacity.py`).
///
/// * thick (or the type opts out of thin): `floor(free - total * reserved%)`;
/// * thin: the virtual free space,
///   `floor(total * max_over_subscription_ratio - provisioned - total * reserved%)`;
/// * `"unknown"` (or `"infinite"`, or missing) capacity sorts last.
///
/// A negative multiplier stacks shares instead (unknown capacity then sorts first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityWeigher {
    /// Manila's `capacity_weight_multiplier` (default 1.0).
    pub multiplier: f64,
}

impl Default for CapacityWeigher {
    fn default() -> Self {
        Self { multiplier: 1.0 }
    }
}

impl Weigher for CapacityWeigher {
    fn name(&self) -> &'static str {
        "CapacityWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn weigh(&self, pool: &PoolState, req: &ScheduleRequest) -> f64 {
        let unknown = if self.multiplier > 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        let (Capacity::Gb(total), Capacity::Gb(free), Some(reserved_percentage)) = (
            pool.total_capacity(),
            pool.free_capacity(),
            pool.reserved_percentage(),
        ) else {
            return unknown;
        };
        let reserved = reserved_percentage / 100.0;
        if req.use_thin_logic() && pool.thin_provisioning() {
            return match pool.provisioned_capacity_gb() {
                Some(provisioned) => {
                    (total * pool.max_over_subscription_ratio() - provisioned - total * reserved)
                        .floor()
                }
                None => unknown,
            };
        }
        (free - total * reserved).floor()
    }
}

/// Ranks pools by the back end's `goodness_function` (0 poor .. 100 perfect; a boolean
/// result counts as 0 or 100), Manila's `GoodnessWeigher`. A pool without a function, or
/// whose function fails or leaves that range, rates 0. With no goodness functions
/// configured anywhere, it changes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoodnessWeigher {
    /// Manila's `goodness_weight_multiplier` (default 1.0).
    pub multiplier: f64,
}

impl Default for GoodnessWeigher {
    fn default() -> Self {
        Self { multiplier: 1.0 }
    }
}

impl Weigher for GoodnessWeigher {
    fn name(&self) -> &'static str {
        "GoodnessWeigher"
    }

    fn multiplier(&self) -> f64 {
        self.multiplier
    }

    fn weigh(&self, pool: &PoolState, req: &ScheduleRequest) -> f64 {
        let Some(function) = reported_function(pool, "goodness_function") else {
            return 0.0;
        };
        let rating = match evaluate(&function, &scheduler_variables(pool, req)) {
            Ok(PyValue::Bool(b)) => {
                if b {
                    100.0
                } else {
                    0.0
                }
            }
            #[expect(clippy::cast_precision_loss, reason = "ratings are 0..=100")]
            Ok(PyValue::Int(i)) => i as f64,
            Ok(PyValue::Float(f)) => f,
            // Manila crashes comparing a string with 0; rate it 0.
            Ok(PyValue::Str(_) | PyValue::List(_)) | Err(_) => 0.0,
        };
        if (0.0..=100.0).contains(&rating) {
            rating
        } else {
            0.0
        }
    }
}

/// Manila's weight normalisation for one weigher: `-inf` becomes one below the smallest
/// finite weight and `+inf` one above the largest, then weights are scaled linearly to
/// `0.0..=1.0` (all zero when they are all equal).
pub fn normalize(raw: &[f64]) -> Vec<f64> {
    let finite = raw.iter().copied().filter(|w| w.is_finite());
    let finite_min = finite.clone().reduce(f64::min);
    let finite_max = finite.reduce(f64::max);
    let raw_max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let raw_min = raw.iter().copied().fold(f64::INFINITY, f64::min);
    let low = finite_min.map_or(raw_max, |m| m.min(raw_max)) - 1.0;
    let high = finite_max.map_or(raw_min, |m| m.max(raw_min)) + 1.0;
    let weights: Vec<f64> = raw
        .iter()
        .map(|w| {
            if *w == f64::NEG_INFINITY {
                low
            } else if *w == f64::INFINITY {
                high
            } else {
                *w
            }
        })
        .collect();
    let min = weights.iter().copied().fold(f64::INFINITY, f64::min);
    let max = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if min == max || !(max - min).is_finite() {
        return vec![0.0; weights.len()];
    }
    weights.iter().map(|w| (w - min) / (max - min)).collect()
}

/// A candidate pool with its total weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeighedPool<'a> {
    /// The pool.
    pub pool: &'a PoolState,
    /// Sum over weighers of multiplier × normalised weight.
    pub weight: f64,
}

/// Weighs `candidates` and returns them best first (highest weight, then pool name).
pub fn weigh_pools<'a>(
    req: &ScheduleRequest,
    candidates: &[&'a PoolState],
    weighers: &[&dyn Weigher],
) -> Vec<WeighedPool<'a>> {
    let mut totals = vec![0.0; candidates.len()];
    for weigher in weighers {
        let raw: Vec<f64> = candidates
            .iter()
            .map(|p| {
                let w = weigher.weigh(p, req);
                if w.is_nan() { 0.0 } else { w }
            })
            .collect();
        for (total, weight) in totals.iter_mut().zip(normalize(&raw)) {
            *total += weigher.multiplier() * weight;
        }
    }
    let mut weighed: Vec<WeighedPool<'a>> = candidates
        .iter()
        .zip(totals)
        .map(|(pool, weight)| WeighedPool { pool, weight })
        .collect();
    weighed.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.pool.name.cmp(&b.pool.name))
    });
    weighed
}

#[cfg(test)]
mod host_affinity_tests {
    use super::*;
    use crate::test_utils::{pool, request};

    #[test]
    fn closer_to_the_snapshot_weighs_more() {
        let mut req = request(1);
        let p = |name: &str| pool(name).build();
        assert_eq!(HostAffinityWeigher.weigh(&p("h@b1#p1"), &req), 0.0);
        req.snapshot_host = Some("h@b1#p1".to_owned());
        req.snapshot_availability_zone = Some("az1".to_owned());
        assert_eq!(HostAffinityWeigher.weigh(&p("h@b1#p1"), &req), 100.0);
        assert_eq!(HostAffinityWeigher.weigh(&p("h@b1#p2"), &req), 75.0);
        assert_eq!(HostAffinityWeigher.weigh(&p("h@b2#p1"), &req), 25.0);
        req.availability_zone = Some("az1".to_owned());
        assert_eq!(HostAffinityWeigher.weigh(&p("h@b2#p1"), &req), 50.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};
    use serde_json::json;

    #[test]
    fn capacity_weigher_table() {
        // (total, free, reserved %, thin, ratio, provisioned, type thin spec, weight)
        let rows = [
            (
                json!(100),
                json!(40),
                json!(0),
                false,
                None,
                None,
                None,
                40.0,
            ),
            (
                json!(100),
                json!(40.7),
                json!(0),
                false,
                None,
                None,
                None,
                40.0,
            ),
            (
                json!(100),
                json!(40),
                json!(10),
                false,
                None,
                None,
                None,
                30.0,
            ),
            (
                json!(100),
                json!(40),
                json!(12.5),
                false,
                None,
                None,
                None,
                27.0,
            ),
            // thin: 100 * 2 - 50 - 10 = 140
            (
                json!(100),
                json!(40),
                json!(10),
                true,
                Some(2.0),
                Some(50),
                None,
                140.0,
            ),
            // default ratio 20: 2000 - 50
            (
                json!(100),
                json!(40),
                json!(0),
                true,
                None,
                Some(50),
                None,
                1950.0,
            ),
            // provisioned falls back to allocated (0 here)
            (
                json!(100),
                json!(40),
                json!(0),
                true,
                Some(1.5),
                None,
                None,
                150.0,
            ),
            // the type opts out: thick formula
            (
                json!(100),
                json!(40),
                json!(0),
                true,
                Some(2.0),
                Some(50),
                Some("False"),
                40.0,
            ),
            (
                json!("unknown"),
                json!(40),
                json!(0),
                false,
                None,
                None,
                None,
                f64::NEG_INFINITY,
            ),
            (
                json!(100),
                json!("unknown"),
                json!(0),
                false,
                None,
                None,
                None,
                f64::NEG_INFINITY,
            ),
            (
                json!(100),
                json!("infinite"),
                json!(0),
                false,
                None,
                None,
                None,
                f64::NEG_INFINITY,
            ),
        ];
        for (total, free, reserved, thin, ratio, provisioned, spec, expected) in rows {
            let mut b = pool("h@b#p")
                .cap("total_capacity_gb", total.clone())
                .cap("free_capacity_gb", free.clone())
                .cap("reserved_percentage", reserved.clone());
            if thin {
                b = b.thin();
            }
            if let Some(r) = ratio {
                b = b.cap("max_over_subscription_ratio", json!(r));
            }
            if let Some(p) = provisioned {
                b = b.cap("provisioned_capacity_gb", json!(p));
            }
            let mut req = request(1);
            if let Some(s) = spec {
                req.extra_specs
                    .insert("thin_provisioning".to_owned(), s.to_owned());
            }
            let w = CapacityWeigher::default().weigh(&b.build(), &req);
            assert_eq!(
                w, expected,
                "total={total} free={free} reserved={reserved} thin={thin}"
            );
        }
        let unknown = pool("h@b#p")
            .cap("free_capacity_gb", json!("unknown"))
            .build();
        let stacking = CapacityWeigher { multiplier: -1.0 };
        assert_eq!(stacking.weigh(&unknown, &request(1)), f64::INFINITY);
    }

    #[test]
    fn normalize_like_manila() {
        assert_eq!(normalize(&[]), Vec::<f64>::new());
        assert_eq!(normalize(&[5.0]), [0.0]);
        assert_eq!(normalize(&[3.0, 3.0]), [0.0, 0.0]);
        assert_eq!(normalize(&[0.0, 5.0, 10.0]), [0.0, 0.5, 1.0]);
        // -inf sits one below the smallest finite weight
        assert_eq!(
            normalize(&[f64::NEG_INFINITY, 4.0, 6.0]),
            [0.0, 1.0 / 3.0, 1.0]
        );
        assert_eq!(normalize(&[f64::INFINITY, 4.0, 6.0]), [1.0, 0.0, 2.0 / 3.0]);
        assert_eq!(
            normalize(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
            [0.0, 0.0]
        );
        assert_eq!(normalize(&[f64::NEG_INFINITY, 7.0]), [0.0, 1.0]);
    }

    #[test]
    fn most_free_space_wins_and_ties_go_by_name() {
        let a = pool("h@b#a").capacity(100, 50).build();
        let b = pool("h@b#b").capacity(100, 80).build();
        let c = pool("h@b#c").capacity(100, 80).build();
        let unknown = pool("h@b#0")
            .cap("free_capacity_gb", json!("unknown"))
            .build();
        let cap = CapacityWeigher::default();
        let weighers: [&dyn Weigher; 1] = [&cap];
        let order: Vec<&str> = weigh_pools(&request(1), &[&a, &unknown, &c, &b], &weighers)
            .iter()
            .map(|w| w.pool.name.as_str())
            .collect();
        assert_eq!(order, ["h@b#b", "h@b#c", "h@b#a", "h@b#0"]);

        let stack = CapacityWeigher { multiplier: -1.0 };
        let weighers: [&dyn Weigher; 1] = [&stack];
        let order: Vec<&str> = weigh_pools(&request(1), &[&a, &c, &b], &weighers)
            .iter()
            .map(|w| w.pool.name.as_str())
            .collect();
        assert_eq!(order, ["h@b#a", "h@b#b", "h@b#c"]);
    }

    #[test]
    fn goodness_weigher_table() {
        for (function, expected) in [
            (json!(null), 0.0),
            (json!("75"), 75.0),
            (json!("share.size * 10"), 20.0),
            (json!("share.size > 1"), 100.0),
            (json!("share.size > 5"), 0.0),
            (json!("101"), 0.0),
            (json!("-1"), 0.0),
            (json!("'text'"), 0.0),
            (json!("1 +"), 0.0),
            (json!("stats.free_capacity_gb / 2"), 25.0),
        ] {
            let mut b = pool("h@b#p").capacity(100, 50);
            if !function.is_null() {
                b = b.cap("goodness_function", function.clone());
            }
            let w = GoodnessWeigher::default().weigh(&b.build(), &request(2));
            assert_eq!(w, expected, "{function}");
        }
    }

    #[test]
    fn goodness_and_capacity_add_up() {
        // a has more space, b a better goodness rating: each normalises to 0..1, and
        // with equal multipliers the tie goes to the name.
        let a = pool("h@b#a").capacity(100, 90).build();
        let b = pool("h@b#b")
            .capacity(100, 10)
            .cap("goodness_function", json!("100"))
            .build();
        let weighers = default_weighers();
        let refs: Vec<&dyn Weigher> = weighers.iter().map(AsRef::as_ref).collect();
        let weighed = weigh_pools(&request(1), &[&b, &a], &refs);
        assert_eq!(weighed[0].weight, 1.0);
        assert_eq!(weighed[1].weight, 1.0);
        assert_eq!(weighed[0].pool.name, "h@b#a");

        let half = GoodnessWeigher { multiplier: 0.5 };
        let cap = CapacityWeigher::default();
        let weighed = weigh_pools(&request(1), &[&b, &a], &[&cap, &half]);
        assert_eq!(weighed[0].pool.name, "h@b#a");
        assert_eq!(weighed[1].weight, 0.5);
    }
}
