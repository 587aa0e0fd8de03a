//! The `scheduler_hints` of share creation (2.65+): `same_host` and `different_host`
//! (comma-separated share ids) and, from 2.67, the admin `only_host` (Manila's
//! `share_api.save_scheduler_hints` / `delete_scheduler_hints` and the hints the
//! `AffinityFilter` / `AntiAffinityFilter` read).
//!
//! Persisted: the hints travel in the `schedule_share_instance` operation's payload, and,
//! as Manila does, as share metadata: the new share gets `__affinity_same_host` /
//! `__affinity_different_host` = the ids it named, and each named share gets the new
//! share's id appended to the same key (users see these keys in share metadata; tempest
//! checks them). Deleting a share takes its id out of the shares it named. Derived at
//! scheduling time: the pools of the named shares' instances ([`resolve`]).
//!
//! Unlike Manila, which validates the ids after the share row exists (so a bad hint leaves
//! a share behind), shoal validates them before anything is written.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use shoal_scheduler::AffinityHint;
use shoal_store::{ShareRow, StoreError};
use uuid::Uuid;

use crate::share_types::py_str;
use crate::shares::MALFORMED_BODY;
use crate::{Core, CoreError, CoreResult};

/// Hint key of the affinity filter.
pub const SAME_HOST: &str = "same_host";
/// Hint key of the anti-affinity filter.
pub const DIFFERENT_HOST: &str = "different_host";
/// Share metadata key recording `same_host` relations.
pub const AFFINITY_KEY: &str = "__affinity_same_host";
/// Share metadata key recording `different_host` relations.
pub const ANTI_AFFINITY_KEY: &str = "__affinity_different_host";

/// Parsed hints of one create request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareHints {
    /// Shares the new one must share a pool with, as given (order kept).
    pub same_host: Vec<Uuid>,
    /// Shares the new one must not share a pool with.
    pub different_host: Vec<Uuid>,
    /// Admin `only_host` (2.67+; the API drops it below, the core drops it for others).
    pub only_host: Option<String>,
}

impl ShareHints {
    /// Metadata the new share gets (Manila's `_save_scheduler_hints` on the new share).
    pub fn own_metadata(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, ids) in [
            (AFFINITY_KEY, &self.same_host),
            (ANTI_AFFINITY_KEY, &self.different_host),
        ] {
            if !ids.is_empty() {
                out.insert(key.to_owned(), join(ids));
            }
        }
        out
    }

    /// The payload of the scheduling operation.
    pub fn payload(&self) -> Value {
        let mut payload = json!({});
        if let Some(host) = &self.only_host {
            payload["only_host"] = json!(host);
        }
        let ids = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>();
        if !self.same_host.is_empty() {
            payload[SAME_HOST] = json!(ids(&self.same_host));
        }
        if !self.different_host.is_empty() {
            payload[DIFFERENT_HOST] = json!(ids(&self.different_host));
        }
        payload
    }
}

fn join(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a hint value on commas and checks each part is a UUID (`InvalidUUID`, 400).
fn split_ids(value: &Value) -> CoreResult<Vec<Uuid>> {
    let text = py_str(value);
    text.split(',')
        .map(|part| {
            Uuid::parse_str(part)
                .map_err(|_| CoreError::bad_request(format!("{part} is not a valid uuid.")))
        })
        .collect()
}

/// Parses the raw hints (`None` or falsy: no hints). `visible` tells whether the caller may
/// see a share (Manila's `share_api.get`); a named share that does not exist or is not
/// visible is a 404 `Share <id> could not be found.`. `same_host` is checked before
/// `different_host`, each id in order, as Manila does.
pub async fn parse(
    core: &Core,
    raw: Option<&Value>,
    is_admin: bool,
    visible: impl Fn(&ShareRow) -> bool,
) -> CoreResult<ShareHints> {
    let map = match raw {
        None | Some(Value::Null) => return Ok(ShareHints::default()),
        Some(Value::Object(map)) => map,
        Some(other) if !crate::share_access::truthy(other) => return Ok(ShareHints::default()),
        // Manila calls `.get` on it and fails; a client error here.
        Some(_) => return Err(CoreError::bad_request(MALFORMED_BODY)),
    };
    let mut hints = ShareHints::default();
    for (key, target) in [
        (SAME_HOST, &mut hints.same_host),
        (DIFFERENT_HOST, &mut hints.different_host),
    ] {
        let Some(value) = map.get(key).filter(|v| crate::share_access::truthy(v)) else {
            continue;
        };
        let ids = split_ids(value)?;
        for id in &ids {
            let found = match core.store.get_share(*id).await {
                Ok(share) => Some(share),
                Err(StoreError::NotFound(_)) => None,
                Err(other) => return Err(other.into()),
            };
            if !found.is_some_and(|s| s.is_public || visible(&s)) {
                return Err(CoreError::not_found(format!(
                    "Share {id} could not be found."
                )));
            }
        }
        *target = ids;
    }
    // `OnlyHostFilter` honours the hint for admins only.
    hints.only_host = map
        .get("only_host")
        .filter(|_| is_admin)
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    Ok(hints)
}

/// Appends `new_share` to the hint keys of the shares it named (Manila's
/// `share_metadata_update_item` on each). A named share deleted meanwhile is skipped.
pub async fn record_on_named_shares(
    core: &Core,
    new_share: Uuid,
    hints: &ShareHints,
) -> CoreResult<()> {
    for (key, ids) in [
        (AFFINITY_KEY, &hints.same_host),
        (ANTI_AFFINITY_KEY, &hints.different_host),
    ] {
        for id in ids.iter().collect::<BTreeSet<_>>() {
            let share = match core.store.get_share(*id).await {
                Ok(share) => share,
                Err(StoreError::NotFound(_)) => continue,
                Err(other) => return Err(other.into()),
            };
            let value = match share.metadata.get(key).filter(|v| !v.is_empty()) {
                Some(existing) => format!("{existing},{new_share}"),
                None => new_share.to_string(),
            };
            let item = BTreeMap::from([(key.to_owned(), value)]);
            match core
                .store
                .set_share_metadata(*id, &item, false, core.now())
                .await
            {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    Ok(())
}

/// Takes a share being deleted out of the hint keys of the shares it named (Manila's
/// `delete_scheduler_hints`): a key left empty is removed. Its own keys go with its rows.
pub async fn forget_share(core: &Core, share: &ShareRow) -> CoreResult<()> {
    let me = share.id.to_string();
    for key in [AFFINITY_KEY, ANTI_AFFINITY_KEY] {
        let Some(named) = share.metadata.get(key) else {
            continue;
        };
        for id in named.split(',').filter_map(|p| Uuid::parse_str(p).ok()) {
            let other = match core.store.get_share(id).await {
                Ok(other) => other,
                Err(StoreError::NotFound(_)) => continue,
                Err(err) => return Err(err.into()),
            };
            let Some(current) = other.metadata.get(key) else {
                continue;
            };
            let left: Vec<&str> = current.split(',').filter(|p| *p != me).collect();
            let result = if left.is_empty() {
                core.store.delete_share_metadata_key(id, key).await
            } else {
                let item = BTreeMap::from([(key.to_owned(), left.join(","))]);
                core.store
                    .set_share_metadata(id, &item, false, core.now())
                    .await
                    .map(|_| ())
            };
            match result {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

/// The ids of one hint in a scheduling payload.
fn payload_ids(payload: &Value, key: &str) -> Option<Vec<Uuid>> {
    let ids = payload.get(key)?.as_array()?;
    Some(
        ids.iter()
            .filter_map(Value::as_str)
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect(),
    )
}

/// Resolves the affinity hints of a scheduling payload to pools, at scheduling time as
/// Manila's filters do: `(same_host, different_host)`. `same_host` keeps the pools every
/// named share has an instance on, `different_host` every pool any has one on; a named
/// share that is gone or has no instance makes its hint unresolvable (no pool passes).
pub async fn resolve(
    core: &Core,
    payload: &Value,
) -> CoreResult<(Option<AffinityHint>, Option<AffinityHint>)> {
    let mut out = [None, None];
    for (slot, key) in out.iter_mut().zip([SAME_HOST, DIFFERENT_HOST]) {
        let Some(ids) = payload_ids(payload, key).filter(|ids| !ids.is_empty()) else {
            continue;
        };
        let mut per_share: Vec<BTreeSet<String>> = Vec::new();
        let mut unresolved = false;
        for id in ids {
            let instances = core.store.list_share_instances(id).await?;
            if instances.is_empty() {
                unresolved = true;
                break;
            }
            per_share.push(instances.into_iter().map(|i| i.host).collect());
        }
        *slot = Some(if unresolved {
            AffinityHint::Unresolved
        } else if key == SAME_HOST {
            let mut sets = per_share.into_iter();
            let first = sets.next().unwrap_or_default();
            AffinityHint::Hosts(
                sets.fold(first, |acc, s| acc.intersection(&s).cloned().collect())
                    .into_iter()
                    .collect(),
            )
        } else {
            AffinityHint::Hosts(
                per_share
                    .into_iter()
                    .flatten()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            )
        });
    }
    let [same, different] = out;
    Ok((same, different))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_split_on_commas_and_checked() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(split_ids(&json!(format!("{a},{b}"))).ok(), Some(vec![a, b]));
        let err = split_ids(&json!(format!("{a},nope"))).unwrap_err();
        assert_eq!(err.to_string(), "nope is not a valid uuid.");
        assert!(split_ids(&json!(format!("{a},"))).is_err());
    }

    #[test]
    fn metadata_and_payload_of_hints() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let hints = ShareHints {
            same_host: vec![a, b],
            different_host: vec![],
            only_host: Some("h@b#p".to_owned()),
        };
        assert_eq!(
            hints.own_metadata(),
            BTreeMap::from([(AFFINITY_KEY.to_owned(), format!("{a},{b}"))])
        );
        assert_eq!(
            hints.payload(),
            json!({"only_host": "h@b#p", "same_host": [a.to_string(), b.to_string()]})
        );
        assert_eq!(payload_ids(&hints.payload(), SAME_HOST), Some(vec![a, b]));
        assert_eq!(payload_ids(&hints.payload(), DIFFERENT_HOST), None);
        assert_eq!(ShareHints::default().payload(), json!({}));
    }
}
