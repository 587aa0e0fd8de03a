//! HTTP-level fuzzing (issue 13, item 7): a bounded, seeded stream of generated requests
//! over a real HTTP connection, across every route, and not one 5xx answer.
//!
//! Each phase boots a node (keystone personas, noauth, built-in identity; dummy back ends),
//! creates real objects (share types, shares of two projects, a replica, a snapshot, an
//! access rule, metadata) and harvests every id it can list. The generator then picks a
//! route from the route table (so a new route is fuzzed without touching this file), a
//! method (mostly the routed one, sometimes another), fills the path parameters with real
//! ids of the right kind, other projects' ids, ids of other kinds, random UUIDs or garbage,
//! adds query strings, version/experimental/content-type headers and tokens (valid
//! personas, missing, invalid), and for bodies starts from the api-ref samples
//! (`*-request.json`) and per-route seeds and mutates them (dropped/added keys, wrong
//! types, huge numbers, nulls, deep nesting, invalid UTF-8, truncation, oversize).
//!
//! Every answer of 500 or above, every request that got no answer and every operation the
//! stream left stuck are collected and all of them are printed when the test fails. The
//! request count and the status histogram are printed at the end (`--nocapture`). Knobs:
//! `SHOAL_FUZZ_REQUESTS` (total, default 20,000), `SHOAL_FUZZ_SEED`,
//! `SHOAL_FUZZ_CONCURRENCY` (requests in flight, default 4), `SHOAL_FUZZ_TRACE` (print
//! every request and its status). Routes come from `shoal_api::route_table()`; objects the
//! stream deletes are re-created every [`REFRESH_EVERY`] requests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Map, Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::{REFERENCE, V, custom_app};
use crate::snapshot_fixtures::{SV, snapshot_specs};

/// Requests over all phases unless `SHOAL_FUZZ_REQUESTS` says otherwise.
const REQUESTS_DEFAULT: usize = 20_000;
/// Seed unless `SHOAL_FUZZ_SEED` says otherwise.
const SEED_DEFAULT: u64 = 0x5_40a1_f022;
/// Requests in flight unless `SHOAL_FUZZ_CONCURRENCY` says otherwise.
const CONCURRENCY_DEFAULT: usize = 4;
/// Every this many requests of a phase, the fixtures are created again (the stream deletes
/// and breaks them).
const REFRESH_EVERY: usize = 1_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: small, seedable, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        uuid::Uuid::from_u64_pair(a, b).to_string()
    }
}

/// The routes to fuzz: `(method, axum path template)`, from the table the router is built
/// from, so a new route is fuzzed without touching this file.
fn routes() -> Vec<(Method, &'static str)> {
    shoal_api::route_table()
        .into_iter()
        .map(|route| (route.method, route.path))
        .collect()
}

/// One phase's node, its personas and the ids it knows.
struct World {
    /// The node runs the built-in identity (its tokens can be revoked by the stream).
    builtin: bool,
    /// (persona label, token); the label is printed with failures.
    personas: Vec<(String, String)>,
    /// Project ids of the personas and a few others.
    projects: Vec<String>,
    /// Projects of the fixtures' owners, learnt from the shares they created.
    owner_projects: BTreeMap<String, String>,
    /// Real ids by kind (`share`, `replica`, `snapshot`, ...), of every owner.
    ids: BTreeMap<&'static str, Vec<String>>,
}

impl World {
    fn add(&mut self, kind: &'static str, id: impl Into<String>) {
        let id = id.into();
        let list = self.ids.entry(kind).or_default();
        if !list.contains(&id) {
            list.push(id);
        }
    }
    fn token(&self, persona: &str) -> String {
        self.personas
            .iter()
            .find(|p| p.0 == persona)
            .map(|p| p.1.clone())
            .unwrap_or_default()
    }
    fn project_of(&self, persona: &str) -> Option<String> {
        self.owner_projects.get(persona).cloned()
    }
    fn set_token(&mut self, persona: &str, token: &str) {
        if let Some(entry) = self.personas.iter_mut().find(|p| p.0 == persona) {
            entry.1 = token.to_owned();
        }
    }
    fn any_id(&self, rng: &mut Rng) -> String {
        let kinds: Vec<&Vec<String>> = self.ids.values().filter(|v| !v.is_empty()).collect();
        if kinds.is_empty() {
            return rng.uuid();
        }
        let list = *rng.pick(&kinds);
        rng.pick(list).clone()
    }
    fn id_of(&self, kind: &str, rng: &mut Rng) -> String {
        match self.ids.get(kind).filter(|v| !v.is_empty()) {
            Some(list) => rng.pick(list).clone(),
            None => self.any_id(rng),
        }
    }
}

/// Which kind of id a path parameter names, from the route's first segment after `/v2/`.
fn kind_of(template: &str, param: &str) -> &'static str {
    match param {
        "key" => return "key",
        "project_id" | "project" => return "project",
        "action" => return "service_action",
        "el" | "export_location_id" => return "export_location",
        "share_id" => return "share",
        "user" => return "user",
        "role" => return "role",
        _ => {}
    }
    let resource = template
        .trim_start_matches("/v2/")
        .trim_start_matches("/identity/v3/")
        .split('/')
        .next()
        .unwrap_or("");
    match resource {
        "shares" | "os-share-unmanage" => "share",
        "share-replicas" => "replica",
        "share_instances" => "share_instance",
        "snapshots" => "snapshot",
        "snapshot-instances" => "snapshot_instance",
        "types" => "type",
        "share-access-rules" => "access",
        "messages" => "message",
        "quota-sets" | "os-quota-sets" | "projects" => "project",
        "users" => "user",
        "roles" => "role",
        "domains" => "domain",
        _ => "share",
    }
}

const GARBAGE_SEGMENTS: &[&str] = &[
    "",
    "x",
    "0",
    "-1",
    "null",
    "None",
    "detail",
    "action",
    "..",
    "%2e%2e",
    "%00",
    "%ff%fe",
    "%zz",
    "%2F",
    "%20",
    "%C3%A9t%C3%A9",
    "%F0%9F%98%80",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa-extra",
    "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA",
    "{id}",
    "*",
    "'; DROP TABLE shares; --",
    "9223372036854775808",
    "1e400",
    "true",
];

fn garbage_segment(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => "a".repeat(1 + rng.below(400)),
        1 => format!(
            "{}{}",
            rng.uuid(),
            rng.pick(&["x", "/", "%00", ".json", " "])
        ),
        2 => rng.uuid().replace('-', ""),
        _ => (*rng.pick(GARBAGE_SEGMENTS)).to_owned(),
    }
}

const QUERY_KEYS: &[&str] = &[
    "limit",
    "offset",
    "marker",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "project_id",
    "name",
    "name~",
    "description~",
    "status",
    "share_id",
    "share_type_id",
    "snapshot_id",
    "host",
    "with_count",
    "created_since",
    "created_before",
    "metadata",
    "extra_specs",
    "is_public",
    "export_location_id",
    "export_location_path",
    "share_network_id",
    "is_soft_deleted",
    "access_type",
    "access_to",
    "access_level",
    "replica_state",
    "share_instance_id",
    "detail",
    "user_id",
    "resource_id",
    "message_level",
    "action_id",
    "request_id",
    "share_type",
    "backend",
    "pool",
    "capabilities",
    "binary",
    "zone",
    "state",
    "source_share_group_snapshot_member_id",
    "is_admin_only",
    "scheduled_to_be_deleted_at",
    "display_name",
    "x",
];

fn query_value(rng: &mut Rng, world: &World) -> String {
    match rng.below(16) {
        0 => world.any_id(rng),
        1 => rng.uuid(),
        2 => rng.below(1000).to_string(),
        3 => format!("-{}", rng.below(100)),
        4 => "18446744073709551616".to_owned(),
        5 => "9223372036854775807".to_owned(),
        6 => (*rng.pick(&[
            "asc",
            "desc",
            "up",
            "created_at",
            "id",
            "size",
            "name",
            "status",
        ]))
        .to_owned(),
        7 => (*rng.pick(&["true", "false", "1", "0", "yes", "on", "True", "maybe", ""])).to_owned(),
        8 => (*rng.pick(&[
            "2020-01-01T00:00:00",
            "2020-01-01",
            "2020-13-45T25:61:61",
            "not-a-date",
            "99999-01-01T00:00:00Z",
            "1970-01-01T00:00:00.000000+99:00",
        ]))
        .to_owned(),
        9 => (*rng.pick(&[
            "{'k':'v'}",
            "%7B%27k%27%3A%27v%27%7D",
            "{\"k\":\"v\"}",
            "{",
            "[1,2]",
            "{'a':{'b':'c'}}",
        ]))
        .to_owned(),
        10 => (*rng.pick(&[
            "available",
            "error",
            "creating",
            "in_sync",
            "active",
            "%ff",
            "%00",
        ]))
        .to_owned(),
        11 => "z".repeat(rng.below(3000)),
        12 => (*rng.pick(&["%C3%A9", "%F0%9F%98%80", "%e9", "%", "%%", "a%2", "+"])).to_owned(),
        13 => (*rng.pick(&["NFS", "CIFS", "nfs", "ip", "cert", "user", "rw", "ro"])).to_owned(),
        14 => rng.pick(&world.projects).clone(),
        _ => garbage_segment(rng),
    }
}

fn query_string(rng: &mut Rng, world: &World) -> String {
    let mut parts = Vec::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(12) {
            0 => parts.push(garbage_segment(rng)),
            1 => parts.push(format!("{}=", rng.pick(QUERY_KEYS))),
            2 => parts.push("=".to_owned()),
            _ => parts.push(format!(
                "{}={}",
                rng.pick(QUERY_KEYS),
                query_value(rng, world)
            )),
        }
    }
    parts.join(if rng.chance(95) { "&" } else { ";" })
}

/// A path for `template` with its parameters filled in.
fn fill_path(template: &str, rng: &mut Rng, world: &World) -> String {
    let mut out = String::new();
    for (i, segment) in template.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push_str(segment);
            continue;
        };
        let param = param.trim_start_matches('*');
        let kind = kind_of(template, param);
        let value = match rng.below(20) {
            0..=13 => world.id_of(kind, rng),
            14 => world.any_id(rng),
            15..=16 => rng.uuid(),
            _ => garbage_segment(rng),
        };
        out.push_str(&value);
    }
    // The project segment Manila clients put after /v2.
    if let Some(rest) = out.strip_prefix("/v2/")
        && rng.chance(25)
    {
        let project = match rng.below(4) {
            0 => "ffff".to_owned(),
            1 => "0".to_owned(),
            _ => rng.pick(&world.projects).clone(),
        };
        out = format!("/v2/{project}/{rest}");
    }
    if rng.chance(4) {
        out.push('/');
    }
    out
}

/// A path that is probably not routed.
fn random_path(rng: &mut Rng, world: &World) -> String {
    let prefix = *rng.pick(&[
        "/v2/",
        "/v2",
        "/",
        "/identity/v3/",
        "/v1/",
        "/v3/",
        "//",
        "/v2//",
    ]);
    let mut out = prefix.to_owned();
    for i in 0..rng.below(6) {
        if i > 0 {
            out.push('/');
        }
        let segment = match rng.below(4) {
            0 => world.any_id(rng),
            1 => (*rng.pick(&[
                "shares",
                "types",
                "snapshots",
                "share-replicas",
                "action",
                "detail",
                "metadata",
                "export_locations",
                "healthcheck",
                "auth",
                "tokens",
                "manage",
            ]))
            .to_owned(),
            _ => garbage_segment(rng),
        };
        out.push_str(&segment);
    }
    out
}

/// Seed bodies: the api-ref request samples plus per-route ones. `$kind` strings are
/// replaced by a real id of that kind when used.
struct Seeds {
    /// Samples by file name stem.
    samples: Vec<(String, Value)>,
}

/// Where the api-ref samples are: `SHOAL_API_REF_SAMPLES`, else `shared/reference/...`
/// found walking up from the crate (the checkout sits beside or below `shared`).
fn samples_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("SHOAL_API_REF_SAMPLES") {
        return Some(PathBuf::from(dir));
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|dir| dir.join("shared/reference/manila-api-ref/samples"))
        .find(|dir| dir.is_dir())
}

impl Seeds {
    fn load() -> Self {
        let mut samples = Vec::new();
        if let Some(dir) = samples_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            files.sort();
            for path in files {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some(stem) = name.strip_suffix("-request.json") else {
                    continue;
                };
                let text = std::fs::read_to_string(&path).expect("readable sample");
                let value = serde_json::from_str(&text).expect("api-ref samples are JSON");
                samples.push((stem.to_owned(), value));
            }
        }
        Self { samples }
    }

    /// Seeds for `method template`: the route's own first, then the samples.
    fn for_route(&self, method: &Method, template: &str) -> Vec<Value> {
        let mut out = route_seeds(method, template);
        let prefix = match template {
            t if t.starts_with("/v2/shares") => "share-",
            t if t.starts_with("/v2/share-replicas") => "share-replica",
            t if t.starts_with("/v2/types") => "share-type",
            _ => "\u{0}",
        };
        let suffix_action = template.ends_with("/action");
        for (stem, value) in &self.samples {
            let action_sample = stem.contains("-actions-")
                || stem.contains("promote")
                || stem.contains("resync")
                || stem.contains("reset")
                || stem.contains("force-delete");
            if stem.starts_with(prefix) && action_sample == suffix_action {
                out.push(value.clone());
            }
        }
        out
    }

    fn any(&self, rng: &mut Rng) -> Value {
        if self.samples.is_empty() {
            return json!({});
        }
        rng.pick(&self.samples).1.clone()
    }
}

/// Bodies each POST/PUT/PATCH route is meant to take.
fn route_seeds(method: &Method, template: &str) -> Vec<Value> {
    let access = json!({"access_type": "ip", "access_to": "10.9.0.0/24", "access_level": "ro"});
    match template {
        "/v2/shares" => vec![
            json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "plain",
                "availability_zone": "az1", "name": "f", "metadata": {"a": "b"}}}),
            json!({"share": {"share_proto": "NFS", "size": 1, "snapshot_id": "$snapshot"}}),
            json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "$type",
                "scheduler_hints": {"same_host": "$share", "different_host": "$share"}}}),
        ],
        "/v2/shares/{id}" => vec![
            json!({"share": {"display_name": "n", "display_description": "d", "is_public": true}}),
        ],
        "/v2/shares/manage" | "/v2/os-share-manage" => vec![json!({"share": {
            "protocol": "NFS", "export_path": "10.0.0.1:/x", "service_host": "testhost@dummy1#pool1",
            "share_type": "plain", "driver_options": {}, "is_public": false}})],
        "/v2/os-share-unmanage/{id}/unmanage" => vec![Value::Null, json!({})],
        "/v2/shares/{id}/action" => vec![
            json!({"allow_access": access}),
            json!({"os-allow_access": access}),
            json!({"deny_access": {"access_id": "$access"}}),
            json!({"extend": {"new_size": 2}}),
            json!({"os-extend": {"new_size": 3}}),
            json!({"shrink": {"new_size": 1}}),
            json!({"reset_status": {"status": "available"}}),
            json!({"os-reset_status": {"status": "error"}}),
            json!({"force_delete": null}),
            json!({"access_list": null}),
            json!({"revert": {"snapshot_id": "$snapshot"}}),
            json!({"soft_delete": null}),
            json!({"restore": null}),
            json!({"unmanage": null}),
            json!({"reset_task_state": {"task_state": null}}),
            json!({"migration_start": {"host": "testhost@dummy2#pool1", "writable": false,
                "preserve_metadata": false, "preserve_snapshots": false, "nondisruptive": false,
                "force_host_assisted_migration": false}}),
            json!({"migration_complete": null}),
            json!({"migration_cancel": null}),
            json!({"migration_get_progress": null}),
        ],
        "/v2/shares/{id}/metadata"
        | "/v2/snapshots/{id}/metadata"
        | "/v2/share-replicas/{id}/metadata"
        | "/v2/share-access-rules/{id}/metadata" => {
            vec![
                json!({"metadata": {"k1": "v1", "k2": ""}}),
                json!({"metadata": null}),
            ]
        }
        "/v2/shares/{id}/metadata/{key}"
        | "/v2/snapshots/{id}/metadata/{key}"
        | "/v2/share-replicas/{id}/metadata/{key}" => vec![json!({"meta": {"k1": "v9"}})],
        "/v2/share-replicas" => vec![json!({"share_replica": {"share_id": "$share",
            "availability_zone": "az2", "scheduler_hints": {"only_host": "testhost@dummy2#pool1"},
            "metadata": {"a": "b"}}})],
        "/v2/share-replicas/{id}/action" => vec![
            json!({"promote": {"quiesce_wait_time": 1}}),
            json!({"resync": null}),
            json!({"reset_status": {"status": "available"}}),
            json!({"reset_replica_state": {"replica_state": "in_sync"}}),
            json!({"force_delete": null}),
        ],
        "/v2/share_instances/{id}/action" | "/v2/snapshot-instances/{id}/action" => vec![
            json!({"reset_status": {"status": "available"}}),
            json!({"force_delete": null}),
        ],
        "/v2/snapshots" => vec![json!({"snapshot": {"share_id": "$share", "name": "s",
            "description": "d", "force": true, "metadata": {"a": "b"}}})],
        "/v2/snapshots/{id}" => vec![json!({"snapshot": {"display_name": "x", "name": "y"}})],
        "/v2/snapshots/manage" => vec![json!({"snapshot": {"share_id": "$share",
            "provider_location": "/p", "driver_options": {}}})],
        "/v2/snapshots/{id}/action" => vec![
            json!({"allow_access": {"access_type": "ip", "access_to": "10.1.0.0/24"}}),
            json!({"deny_access": {"access_id": "$access"}}),
            json!({"reset_status": {"status": "error"}}),
            json!({"os-reset_status": {"status": "available"}}),
            json!({"force_delete": null}),
            json!({"unmanage": null}),
        ],
        "/v2/types" => vec![json!({"share_type": {"name": "t", "description": "d",
            "share_type_access:is_public": false, "extra_specs": {
                "driver_handles_share_servers": false, "snapshot_support": true}}})],
        "/v2/types/{id}" => vec![json!({"share_type": {"name": "t2", "description": null,
            "share_type_access:is_public": true}})],
        "/v2/types/{id}/action" => vec![
            json!({"addProjectAccess": {"project": "$project"}}),
            json!({"removeProjectAccess": {"project": "$project"}}),
        ],
        "/v2/types/{id}/extra_specs" => vec![json!({"extra_specs": {"k": "v",
            "snapshot_support": "True"}})],
        "/v2/types/{id}/extra_specs/{key}" => vec![json!({"k": "v"})],
        "/v2/share-access-rules/{id}" => vec![json!({"update_access": {"access_level": "ro"}})],
        "/v2/services/{action}" | "/v2/os-services/{action}" => vec![
            json!({"host": "testhost", "binary": "manila-share"}),
            json!({"host": "testhost@dummy1", "binary": "manila-share", "disabled_reason": "x"}),
        ],
        "/v2/quota-sets/{project_id}" | "/v2/os-quota-sets/{project_id}" => vec![
            json!({"quota_set": {"shares": 10, "gigabytes": 100, "snapshots": 5,
                "share_replicas": 3, "replica_gigabytes": 50, "per_share_gigabytes": -1}}),
        ],
        "/identity/v3/auth/tokens" => vec![json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": "demo", "domain": {"id": "default"},
                "password": "demo-secret"}}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})],
        "/identity/v3/users" | "/identity/v3/users/{id}" => vec![json!({"user": {
            "name": "u", "password": "p", "default_project_id": "$project", "enabled": true}})],
        "/identity/v3/projects" | "/identity/v3/projects/{id}" => {
            vec![json!({"project": {"name": "p", "domain_id": "default", "enabled": true}})]
        }
        "/identity/v3/domains" | "/identity/v3/domains/{id}" => {
            vec![json!({"domain": {"name": "d", "enabled": true}})]
        }
        "/identity/v3/roles" | "/identity/v3/roles/{id}" => vec![json!({"role": {"name": "r"}})],
        _ if *method == Method::GET || *method == Method::DELETE || *method == Method::HEAD => {
            vec![]
        }
        _ => vec![json!({})],
    }
}

/// Replaces `$kind` strings by real ids.
fn fill_ids(value: &mut Value, rng: &mut Rng, world: &World) {
    match value {
        Value::String(s) if s.starts_with('$') => {
            let kind = s[1..].to_owned();
            *s = world.id_of(&kind, rng);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill_ids(v, rng, world)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_ids(v, rng, world)),
        _ => {}
    }
}

const FIELD_NAMES: &[&str] = &[
    "share",
    "share_proto",
    "size",
    "new_size",
    "name",
    "description",
    "display_name",
    "share_type",
    "share_type_id",
    "availability_zone",
    "metadata",
    "meta",
    "share_id",
    "snapshot_id",
    "access_type",
    "access_to",
    "access_level",
    "access_id",
    "status",
    "replica_state",
    "task_state",
    "is_public",
    "extra_specs",
    "scheduler_hints",
    "only_host",
    "same_host",
    "different_host",
    "quiesce_wait_time",
    "project",
    "host",
    "binary",
    "driver_handles_share_servers",
    "lock_deletion",
    "lock_visibility",
    "lock_reason",
    "force",
    "share_network_id",
    "share_group_id",
    "mount_point_name",
    "unrestrict",
    "",
    " ",
    "é",
    "__proto__",
    "$ref",
    "share_type_access:is_public",
    "os-share-type-access:is_public",
];

fn random_scalar(rng: &mut Rng, world: &World) -> Value {
    match rng.below(24) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(1),
        6 => json!(2_147_483_648_i64),
        7 => json!(i64::MAX),
        8 => json!(i64::MIN),
        9 => json!(u64::MAX),
        10 => json!(1e300),
        11 => json!(-0.5),
        12 => json!(""),
        13 => json!("x".repeat(rng.below(70_000))),
        14 => json!("é😀\u{0}\u{202e}\n"),
        15 => json!(world.any_id(rng)),
        16 => json!(rng.uuid()),
        17 => json!(*rng.pick(&["None", "True", "false", "1", " 2 ", "1.5", "-3", "0x10"])),
        18 => json!([]),
        19 => json!({}),
        20 => json!(*rng.pick(&[
            "available",
            "error",
            "in_sync",
            "active",
            "ro",
            "rw",
            "ip",
            "NFS"
        ])),
        21 => json!(rng.pick(&world.projects)),
        22 => json!(1.0e-320),
        _ => json!(*rng.pick(FIELD_NAMES)),
    }
}

/// A value nested `depth` levels deep.
fn nested(depth: usize, object: bool) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = if object {
            json!({ "a": v })
        } else {
            json!([v])
        };
    }
    v
}

/// A random node of `value`, by walking down at most a few levels.
fn random_node<'a>(value: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    let mut node = value;
    for _ in 0..rng.below(4) {
        let len = match &*node {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        let i = rng.below(len);
        node = match node {
            Value::Object(m) => m.values_mut().nth(i).expect("index below len"),
            Value::Array(a) => &mut a[i],
            _ => unreachable!("checked above"),
        };
    }
    node
}

fn mutate(value: &mut Value, rng: &mut Rng, world: &World, seeds: &Seeds) {
    let node = random_node(value, rng);
    match rng.below(12) {
        10 | 11 => {
            // Numbers at the edges of every integer type, in a field that exists.
            let extreme = rng
                .pick(&[
                    json!(i64::MAX),
                    json!(i64::MIN),
                    json!(u64::MAX),
                    json!(2_147_483_648_i64),
                    json!(-2_147_483_649_i64),
                    json!(4_294_967_296_i64),
                    json!(1e300),
                    json!(-1),
                    json!(0),
                    json!("9223372036854775808"),
                    json!("-1"),
                ])
                .clone();
            match node {
                Value::Object(map) if !map.is_empty() => {
                    let i = rng.below(map.len());
                    *map.values_mut().nth(i).expect("index below len") = extreme;
                }
                _ => *node = extreme,
            }
        }
        0 => {
            if let Value::Object(map) = node
                && !map.is_empty()
            {
                let key = map.keys().nth(rng.below(map.len())).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
        }
        1 | 2 => {
            if let Value::Object(map) = node {
                map.insert(
                    (*rng.pick(FIELD_NAMES)).to_owned(),
                    random_scalar(rng, world),
                );
            } else {
                *node = random_scalar(rng, world);
            }
        }
        3 | 4 => *node = random_scalar(rng, world),
        5 => *node = json!([node.take()]),
        6 => {
            let mut wrapper = Map::new();
            wrapper.insert((*rng.pick(FIELD_NAMES)).to_owned(), node.take());
            *node = Value::Object(wrapper);
        }
        7 => *node = nested(1 + rng.below(200), rng.chance(50)),
        8 => *node = seeds.any(rng),
        _ => {
            // An object's values, each replaced by something of another type.
            if let Value::Object(map) = node {
                for v in map.values_mut() {
                    *v = random_scalar(rng, world);
                }
            }
        }
    }
}

/// The body bytes (and content type) of one request.
fn body_for(
    method: &Method,
    template: &str,
    rng: &mut Rng,
    world: &World,
    seeds: &Seeds,
    max_body: usize,
) -> (Option<&'static str>, Option<Vec<u8>>) {
    let content_type = if rng.chance(85) {
        Some("application/json")
    } else {
        Some(*rng.pick(&[
            "text/plain",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/json;;;",
            "application/jsonx",
            "",
            "none",
        ]))
        .filter(|ct| *ct != "none")
    };
    let wants_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH) || rng.chance(5);
    if !wants_body {
        return (content_type.filter(|_| rng.chance(10)), None);
    }
    let route_seeds = seeds.for_route(method, template);
    let mut value = if !route_seeds.is_empty() && rng.chance(85) {
        rng.pick(&route_seeds).clone()
    } else {
        seeds.any(rng)
    };
    fill_ids(&mut value, rng, world);
    // A third of the bodies go as they are, the others get up to four mutations.
    if !rng.chance(33) {
        for _ in 0..1 + rng.below(4) {
            mutate(&mut value, rng, world, seeds);
        }
    }
    let mut bytes = serde_json::to_vec(&value).expect("a Value serializes");
    match rng.below(40) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => {
            let at = rng.below(bytes.len() + 1);
            const BAD: [&[u8]; 5] = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xfe\xff"];
            let bad = *rng.pick(&BAD);
            let tail = bytes.split_off(at);
            bytes.extend_from_slice(bad);
            bytes.extend_from_slice(&tail);
        }
        2 => bytes = b"[".repeat(1 + rng.below(100_000)),
        3 => bytes = br#"{"share": {"size": 1e400}}"#.to_vec(),
        4 => {
            bytes = format!(
                "{{\"share\": {{\"size\": 1{}}}}}",
                "0".repeat(rng.below(500))
            )
            .into_bytes()
        }
        5 => bytes = b"{\"a\":1,\"a\":2}".to_vec(),
        6 => bytes = vec![b' '; max_body + 1 + rng.below(1000)],
        7 => {
            let mut big = br#"{"metadata": {"k": ""#.to_vec();
            big.resize(max_body + 10, b'x');
            big.extend_from_slice(b"\"}}");
            bytes = big;
        }
        8 => bytes = (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        9 => bytes = [&b"\xef\xbb\xbf"[..], &bytes].concat(),
        10 => bytes = b"NaN".to_vec(),
        11 => bytes.clear(),
        _ => {}
    }
    (content_type, Some(bytes))
}

fn version_header(rng: &mut Rng) -> Option<String> {
    Some(match rng.below(40) {
        0..=2 => return None,
        3 => (*rng.pick(&[
            "1.0",
            "2.100",
            "3.0",
            "2.4294967296",
            "2.99999999999999999999",
        ]))
        .to_owned(),
        4 => (*rng.pick(&[
            "latest",
            "",
            "2",
            "2.",
            "v2.1",
            "2.05",
            " 2.5",
            "２.1",
            "2.1\u{7f}",
        ]))
        .to_owned(),
        5..=16 => format!("2.{}", rng.below(100)),
        17..=26 => format!("2.{}", 56 + rng.below(44)),
        _ => (*rng.pick(&[
            "2.0", "2.6", "2.11", "2.45", "2.55", "2.56", "2.65", "2.79", "2.95", "2.99",
        ]))
        .to_owned(),
    })
}

/// One generated request.
#[derive(Debug, Clone)]
struct Generated {
    /// The route template it was made from (empty: a random path).
    route: &'static str,
    method: Method,
    path: String,
    persona: String,
    token: Option<String>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

fn generate(
    rng: &mut Rng,
    routes: &[(Method, &'static str)],
    world: &World,
    seeds: &Seeds,
    max_body: usize,
) -> Generated {
    const METHODS: &[&str] = &[
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FUZZ",
    ];
    let (method, template) = if rng.chance(92) {
        let (method, template) = rng.pick(routes);
        let method = if rng.chance(80) {
            method.clone()
        } else {
            Method::from_bytes(rng.pick(METHODS).as_bytes()).expect("valid method")
        };
        (method, *template)
    } else {
        let method = Method::from_bytes(rng.pick(METHODS).as_bytes()).expect("valid method");
        (method, "")
    };
    let mut path = if template.is_empty() {
        random_path(rng, world)
    } else {
        fill_path(template, rng, world)
    };
    if rng.chance(30) {
        path = format!("{path}?{}", query_string(rng, world));
    }
    let mut headers = Vec::new();
    if let Some(version) = version_header(rng) {
        headers.push(("x-openstack-manila-api-version", version.into_bytes()));
    }
    if rng.chance(35) {
        let value = *rng.pick(&["true", "True", "false", "1", "yes", "garbage", ""]);
        headers.push((
            "x-openstack-manila-api-experimental",
            value.as_bytes().to_vec(),
        ));
    }
    if rng.chance(3) {
        headers.push(("x-openstack-manila-api-version", b"2.\xff".to_vec()));
    }
    if rng.chance(3) {
        headers.push(("accept", b"application/xml".to_vec()));
    }
    let (persona, token) = match rng.below(100) {
        0..=3 => ("(no token)".to_owned(), None),
        4..=7 => {
            let token = rng
                .pick(&[
                    "garbage",
                    "",
                    "admin:",
                    ":",
                    "a:b:c",
                    "gAAAAA-invalid",
                    "x\u{7f}",
                ])
                .to_string();
            ("(invalid token)".to_owned(), Some(token))
        }
        8 => ("(long token)".to_owned(), Some("t".repeat(9000))),
        _ => {
            let (label, token) = rng.pick(&world.personas);
            (label.clone(), Some(token.clone()))
        }
    };
    let (content_type, body) = body_for(&method, template, rng, world, seeds, max_body);
    if let Some(ct) = content_type {
        headers.push(("content-type", ct.as_bytes().to_vec()));
    }
    Generated {
        route: template,
        method,
        path,
        persona,
        token,
        headers,
        body,
    }
}

/// What the server said, or why it said nothing.
type Outcome = Result<u16, String>;

async fn send(client: &reqwest::Client, base: &str, request: &Generated) -> (Outcome, String) {
    let mut builder = client.request(request.method.clone(), format!("{base}{}", request.path));
    for (name, value) in &request.headers {
        match reqwest::header::HeaderValue::from_bytes(value) {
            Ok(value) => builder = builder.header(*name, value),
            Err(_) => continue,
        }
    }
    if let Some(token) = &request.token
        && let Ok(value) = reqwest::header::HeaderValue::from_str(token)
    {
        builder = builder.header("x-auth-token", value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (Ok(status), text)
        }
        Err(err) => (Err(format!("no answer: {err:?}")), String::new()),
    }
}

fn describe(request: &Generated, outcome: &Outcome, answer: &str) -> String {
    let mut out = format!("{} {} as {}", request.method, request.path, request.persona);
    for (name, value) in &request.headers {
        out.push_str(&format!("\n    {name}: {}", String::from_utf8_lossy(value)));
    }
    if let Some(body) = &request.body {
        let shown = String::from_utf8_lossy(&body[..body.len().min(600)]);
        out.push_str(&format!("\n    body ({} bytes): {shown}", body.len()));
    }
    match outcome {
        Ok(status) => out.push_str(&format!(
            "\n  -> {status}: {}",
            &answer.chars().take(400).collect::<String>()
        )),
        Err(err) => out.push_str(&format!("\n  -> {err}")),
    }
    out
}

/// Waits for the operations the stream queued. A stuck one is a finding: the error lists
/// every unfinished operation (kind, target, attempts, last error).
async fn settle(app: &TestApp) -> Result<(), String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let store = &app.core().store;
    while Instant::now() < deadline {
        if store
            .count_unfinished_operations()
            .await
            .expect("count operations")
            == 0
        {
            app.settle().await;
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let operations = store.list_operations(None).await.expect("list operations");
    let stuck: Vec<String> = operations
        .iter()
        .filter(|op| {
            matches!(
                op.state,
                shoal_store::OperationState::Pending | shoal_store::OperationState::Running
            )
        })
        .map(|op| format!("{op:?}"))
        .collect();
    Err(format!(
        "operations left unfinished by the stream:\n{}",
        stuck.join("\n")
    ))
}

/// Whether the admin persona's token still works.
async fn admin_works(app: &TestApp, world: &World) -> bool {
    let response = app
        .get("/v2/types")
        .token(&world.token("admin"))
        .send()
        .await;
    response.status == 200
}

/// A response's JSON, or null.
fn json_of(response: &TestResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_default()
}

/// Creates the objects of a phase (again, after the stream broke them) and harvests ids.
async fn populate(app: &TestApp, world: &mut World, owners: &[&str]) -> Result<(), String> {
    if world.builtin {
        // The stream may have revoked the tokens issued at start (or changed passwords).
        for (user, password, project, _) in shoal_testkit::BUILTIN_USERS {
            let response = app.issue_builtin_token(user, password, project).await;
            if let Some(token) = response.header("x-subject-token") {
                world.set_token(user, token);
            }
        }
    }
    let admin = world.token("admin");
    // The stream may have deleted the types, disabled the back ends or cut the quotas:
    // undo that first (outcomes ignored; what exists stays).
    for (name, specs) in [
        ("readable", json!({"replication_type": "readable"})),
        ("plain", json!({})),
        ("snap", snapshot_specs()),
    ] {
        let mut extra_specs = json!({"driver_handles_share_servers": false});
        for (k, v) in specs.as_object().into_iter().flatten() {
            extra_specs[k] = v.clone();
        }
        app.post("/v2/types")
            .token(&admin)
            .version(V)
            .json(&json!({"share_type": {"name": name, "extra_specs": extra_specs}}))
            .send()
            .await;
    }
    for backend in ["dummy1", "dummy2"] {
        app.put("/v2/services/enable")
            .token(&admin)
            .version(V)
            .json(
                &json!({"host": format!("{}@{backend}", shoal_testkit::TEST_HOST),
                "binary": "manila-share"}),
            )
            .send()
            .await;
    }
    for project in world.projects.clone() {
        app.delete(&format!("/v2/quota-sets/{project}"))
            .token(&admin)
            .version(V)
            .send()
            .await;
    }
    // The fixtures' owners get room for the fixtures whatever the stream created.
    for owner in owners {
        let Some(project) = world.project_of(owner) else {
            continue;
        };
        let roomy = json!({"quota_set": {"shares": 10_000, "gigabytes": 100_000,
            "snapshots": 10_000, "snapshot_gigabytes": 100_000, "share_replicas": 10_000,
            "replica_gigabytes": 100_000, "per_share_gigabytes": -1}});
        app.put(&format!("/v2/quota-sets/{project}"))
            .token(&admin)
            .version(V)
            .json(&roomy)
            .send()
            .await;
    }
    for owner in owners {
        let token = world.token(owner);
        let create = |share_type: &'static str| {
            app.post("/v2/shares")
                .version(V)
                .token(&token)
                .json(&json!({"share": {"share_proto": "NFS", "size": 1,
                    "availability_zone": "az1", "share_type": share_type}}))
                .send()
        };
        let created = create("readable").await;
        let Some(share) = json_of(&created)["share"]["id"].as_str().map(str::to_owned) else {
            println!(
                "fuzz: fixture share of {owner} not created: {}",
                created.text()
            );
            continue;
        };
        world.add("share", share.clone());
        if let Some(project) = json_of(&created)["share"]["project_id"].as_str() {
            world
                .owner_projects
                .insert((*owner).to_owned(), project.to_owned());
        }
        let created = create("snap").await;
        let snap_share = json_of(&created)["share"]["id"].as_str().map(str::to_owned);
        settle(app).await?;
        // A secondary replica, a snapshot of a snapshot-capable share, an access rule and
        // metadata; their outcome does not matter here, only that they exist.
        let replica = app
            .post("/v2/share-replicas")
            .version(V)
            .token(&token)
            .json(&json!({"share_replica": {"share_id": share}}))
            .send()
            .await;
        if let Some(id) = json_of(&replica)["share_replica"]["id"].as_str() {
            world.add("replica", id);
        }
        if let Some(snap_share) = snap_share {
            world.add("share", snap_share.clone());
            let snapshot = app
                .post("/v2/snapshots")
                .version(SV)
                .token(&token)
                .json(&json!({"snapshot": {"share_id": snap_share, "name": "fuzz"}}))
                .send()
                .await;
            if let Some(id) = json_of(&snapshot)["snapshot"]["id"].as_str() {
                world.add("snapshot", id);
            }
        }
        let rule = app
            .post(&format!("/v2/shares/{share}/action"))
            .version(V)
            .token(&token)
            .json(&json!({"allow_access": {"access_type": "ip", "access_to": "10.7.0.0/16"}}))
            .send()
            .await;
        if let Some(id) = json_of(&rule)["access"]["id"].as_str() {
            world.add("access", id);
        }
        app.post(&format!("/v2/shares/{share}/metadata"))
            .version(V)
            .token(&token)
            .json(&json!({"metadata": {"k1": "v1", "k2": "v2"}}))
            .send()
            .await;
        settle(app).await?;
    }
    let harvest: &[(&str, &str, &'static str)] = &[
        ("/v2/types?is_public=all", "share_types", "type"),
        ("/v2/shares?all_tenants=1", "shares", "share"),
        (
            "/v2/share-replicas?all_tenants=1",
            "share_replicas",
            "replica",
        ),
        ("/v2/share_instances", "share_instances", "share_instance"),
        ("/v2/snapshots?all_tenants=1", "snapshots", "snapshot"),
        (
            "/v2/snapshot-instances",
            "snapshot_instances",
            "snapshot_instance",
        ),
        ("/v2/messages", "messages", "message"),
    ];
    for (path, key, kind) in harvest {
        let response = app.get(path).token(&admin).version("2.95").send().await;
        if response.status != 200 {
            continue;
        }
        for item in json_of(&response)[*key].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_str() {
                world.add(kind, id);
            }
            if let Some(project) = item["project_id"].as_str()
                && !world.projects.iter().any(|p| p == project)
            {
                world.projects.push(project.to_owned());
            }
        }
    }
    let shares = world.ids.get("share").cloned().unwrap_or_default();
    for share in shares.iter().take(4) {
        let response = app
            .get(&format!("/v2/shares/{share}/export_locations"))
            .token(&admin)
            .version(V)
            .send()
            .await;
        if response.status == 200 {
            for item in json_of(&response)["export_locations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(id) = item["id"].as_str() {
                    world.add("export_location", id);
                }
            }
        }
        let response = app
            .get(&format!("/v2/share-access-rules?share_id={share}"))
            .token(&admin)
            .version("2.82")
            .send()
            .await;
        if response.status == 200 {
            for item in json_of(&response)["access_list"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(id) = item["id"].as_str() {
                    world.add("access", id);
                }
            }
        }
    }
    for (path, key, kind) in [
        ("/identity/v3/users", "users", "user"),
        ("/identity/v3/projects", "projects", "project"),
        ("/identity/v3/roles", "roles", "role"),
        ("/identity/v3/domains", "domains", "domain"),
    ] {
        let response = app.get(path).token(&admin).send().await;
        for item in json_of(&response)[key].as_array().into_iter().flatten() {
            if let Some(id) = item["id"].as_str() {
                world.add(kind, id);
                if kind == "project" && !world.projects.iter().any(|p| p == id) {
                    world.projects.push(id.to_owned());
                }
            }
        }
    }
    for key in ["k1", "k2", "snapshot_support", "replication_type", "nokey"] {
        world.add("key", key);
    }
    for action in ["enable", "disable", "os-disable", "x"] {
        world.add("service_action", action);
    }
    Ok(())
}

/// One phase: a node with `auth`, fixtures owned by `owners`, `count` requests.
async fn phase(
    label: &str,
    auth: AuthStrategy,
    personas: &[&str],
    owners: &[&str],
    count: usize,
    rng: &mut Rng,
    totals: &mut Totals,
) {
    let new_world = |app: &TestApp| World {
        builtin: auth == AuthStrategy::Builtin,
        personas: personas
            .iter()
            .map(|p| ((*p).to_owned(), app.token_for(p)))
            .collect(),
        projects: shoal_testkit::PERSONAS
            .iter()
            .map(|p| p.1.to_owned())
            .chain(["admin".to_owned(), "demo".to_owned()])
            .collect(),
        ids: BTreeMap::new(),
        owner_projects: BTreeMap::new(),
    };
    let mut app = custom_app(auth, REFERENCE, json!({})).await;
    let mut world = new_world(&app);
    // Routes of the built-in identity exist only in that phase: elsewhere they are still
    // asked (and must not fail) but less often.
    let identity_weight = if auth == AuthStrategy::Builtin { 4 } else { 1 };
    let distinct_routes = routes().len();
    let routes: Vec<(Method, &'static str)> = routes()
        .into_iter()
        .flat_map(|route| {
            let weight = if route.1.starts_with("/identity") {
                identity_weight
            } else {
                4
            };
            std::iter::repeat_n(route, weight)
        })
        .collect();
    let seeds = Seeds::load();
    let max_body = shoal_core::Config::default().api.max_request_body_size;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    // For retries: a new connection each time.
    let fresh = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let concurrency = env_or("SHOAL_FUZZ_CONCURRENCY", CONCURRENCY_DEFAULT).max(1);
    let trace = std::env::var_os("SHOAL_FUZZ_TRACE").is_some();
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        if sent % REFRESH_EVERY == 0 {
            let mut ready = populate(&app, &mut world, owners).await;
            if ready.is_ok() && !admin_works(&app, &world).await {
                // The stream locked the admin out (built-in identity: a changed password, a
                // disabled user): nothing can repair the fixtures, so start a new node.
                println!("fuzz phase {label}: admin locked out after {sent} requests, new node");
                ready = settle(&app).await;
                if ready.is_ok() {
                    app.finish().await;
                    app = custom_app(auth, REFERENCE, json!({})).await;
                    world = new_world(&app);
                    ready = populate(&app, &mut world, owners).await;
                }
            }
            if let Err(stuck) = ready {
                // The node cannot be finished cleanly: report and end the phase here.
                totals
                    .failures
                    .push(format!("[{label} after #{sent}] {stuck}"));
                totals.requests += sent;
                return;
            }
        }
        let batch_len = concurrency
            .min(count - sent)
            .min(REFRESH_EVERY - sent % REFRESH_EVERY);
        let batch: Vec<Generated> = (0..batch_len)
            .map(|_| generate(rng, &routes, &world, &seeds, max_body))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, request) in batch.into_iter().enumerate() {
            let client = client.clone();
            let fresh = fresh.clone();
            let base = app.base.clone();
            tasks.spawn(async move {
                let (mut outcome, mut answer) = send(&client, &base, &request).await;
                let mut retried = false;
                if outcome.is_err() {
                    // A pooled keep-alive connection that closed as it was reused: ask again
                    // once on a new one and count it (answers given before the whole body
                    // was read say `Connection: close` since the fuzzer found them
                    // silently closing); a second silence is a failure.
                    retried = true;
                    (outcome, answer) = send(&fresh, &base, &request).await;
                }
                (sent + i, request, outcome, answer, retried)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (index, request, outcome, answer, retried) = done.expect("request task");
            totals.retried += usize::from(retried);
            if trace {
                let status = outcome.as_ref().map_or(0, |s| *s);
                let route = if request.route.is_empty() {
                    "(random)"
                } else {
                    request.route
                };
                println!(
                    "fuzz-trace {status} {} {route} {} {}",
                    request.method, request.path, request.persona
                );
            }
            match &outcome {
                Ok(status) => *totals.statuses.entry(*status).or_default() += 1,
                Err(_) => totals.no_answer += 1,
            }
            if request.body.is_some()
                && (request.method == Method::POST || request.method == Method::PUT)
            {
                *totals
                    .bodies
                    .entry((request.method.to_string(), request.route))
                    .or_default() += 1;
            }
            if !matches!(outcome, Ok(status) if status < 500) {
                totals.failures.push(format!(
                    "[{label} #{index}] {}",
                    describe(&request, &outcome, &answer)
                ));
            }
        }
        sent += batch_len;
    }
    totals.requests += sent;
    println!(
        "fuzz phase {label}: {sent} requests in {:.1}s over {} routes",
        started.elapsed().as_secs_f64(),
        distinct_routes
    );
    match settle(&app).await {
        Ok(()) => app.finish().await,
        Err(stuck) => totals
            .failures
            .push(format!("[{label} at the end] {stuck}")),
    }
}

#[derive(Default)]
struct Totals {
    requests: usize,
    statuses: BTreeMap<u16, usize>,
    no_answer: usize,
    /// Requests asked again on a new connection after the pooled one failed.
    retried: usize,
    failures: Vec<String>,
    /// Requests with a body per (method, route template), POST and PUT only.
    bodies: BTreeMap<(String, &'static str), usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_never_get_a_5xx() {
    let total = env_or("SHOAL_FUZZ_REQUESTS", REQUESTS_DEFAULT);
    let seed = env_or("SHOAL_FUZZ_SEED", SEED_DEFAULT);
    let mut rng = Rng(seed);
    let mut totals = Totals::default();
    let keystone = total * 3 / 5;
    let noauth = total / 5;
    let builtin = total - keystone - noauth;
    phase(
        "keystone",
        AuthStrategy::Keystone,
        &["admin", "alice", "rita", "bob", "nobody"],
        &["alice", "bob"],
        keystone,
        &mut rng,
        &mut totals,
    )
    .await;
    phase(
        "noauth",
        AuthStrategy::Noauth,
        &["admin", "alice", "bob"],
        &["alice", "bob"],
        noauth,
        &mut rng,
        &mut totals,
    )
    .await;
    phase(
        "builtin",
        AuthStrategy::Builtin,
        &["admin", "demo", "rita"],
        &["demo", "admin"],
        builtin,
        &mut rng,
        &mut totals,
    )
    .await;
    let histogram: Vec<String> = totals
        .statuses
        .iter()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    println!(
        "fuzz: {} requests (seed {seed:#x}), {} retried on a new connection, {} without an \
         answer; statuses {}",
        totals.requests,
        totals.retried,
        totals.no_answer,
        histogram.join(", ")
    );
    // Item 7 asks for the request bodies of every POST and PUT route: each one got some.
    let body_routes: Vec<(String, &'static str)> = routes()
        .into_iter()
        .filter(|(method, _)| *method == Method::POST || *method == Method::PUT)
        .map(|(method, route)| (method.to_string(), route))
        .collect();
    let fewest = body_routes
        .iter()
        .map(|route| totals.bodies.get(route).copied().unwrap_or(0))
        .min()
        .unwrap_or(0);
    println!(
        "fuzz: {} POST/PUT routes, the fewest request bodies one of them got: {fewest}",
        body_routes.len()
    );
    if total >= REQUESTS_DEFAULT {
        let missed: Vec<_> = body_routes
            .iter()
            .filter(|route| !totals.bodies.contains_key(*route))
            .collect();
        assert!(missed.is_empty(), "no body was sent to {missed:?}");
    }
    assert!(totals.requests >= total, "every generated request was sent");
    assert!(
        totals.failures.is_empty(),
        "{} requests got a 5xx or no answer:\n{}",
        totals.failures.len(),
        totals.failures.join("\n")
    );
}
