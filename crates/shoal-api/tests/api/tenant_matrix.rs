//! The cross-tenant matrix (issue 13, item 4): every route of `shoal_api::route_table()`,
//! called by five keystone personas against objects owned by project A, must give Manila's
//! answer. The personas are the owner project's member (`alice`) and reader (`rita`),
//! another project's member (`bob`) and reader (`rex`), and `admin`.
//!
//! The expectations follow Manila's default policies (`shoal_policy::defaults`, i.e.
//! `manila/policies/*.py`) and the order in which Manila's controllers check them:
//! * an object of another project is **404**, never shown (Manila turns a failed `get`
//!   policy on the loaded object into `NotFound`, "to prevent existence detection");
//! * a rule checked before the lookup (`@wsgi.Controller.authorize`, whose target is the
//!   caller's own project) is **403** for every persona that lacks the role, in any project;
//! * a rule checked on the loaded object is **404** for other projects and 403 for the
//!   owner project's personas that lack the role;
//! * an admin-only rule is 403 for every non-admin.
//!
//! Where Manila itself answers otherwise the entry says so and expects Manila's answer
//! (share export locations: 403 to other projects; access-rule list: 400).
//!
//! A route without an entry, or an entry without a route, fails the test by name. A route
//! that changes state is first called by the personas that must be refused, and the watched
//! object must read the same afterwards; each allowed persona then runs on a fresh object
//! when the call consumes it (delete, promote, unmanage, ...), else on the shared fixture.
//! A 2xx answer to a persona of project B must not mention any of project A's objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use reqwest::Method;
use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::{PROJECT_A, PROJECT_B, TestApp, TestResponse};

use crate::replica_fixtures::{active_of, in_sync_replica, pool_of};
use crate::snapshot_fixtures::{available_snapshot, instances_of, share_of_type, snapshot_app};

/// Every entry runs at this version unless it names another (replica metadata is 2.95).
const V: &str = "2.95";

/// The personas, in the column order of [`Entry::expect`].
const WHO: [&str; 5] = ["alice", "rita", "bob", "rex", "admin"];
/// Columns of the personas of project B, whose 2xx answers must not leak project A.
const OTHER_PROJECT: [usize; 2] = [2, 3];

/// The answer one persona must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exp {
    /// Allowed: any 2xx (3xx for a redirect route is given as `Is`).
    Ok,
    /// Allowed by policy, but the fixture's state makes Manila answer exactly this status
    /// (e.g. 400 for a replica of a share whose type is not replicated, 404 for a literal
    /// collection name taken as an id).
    Is(u16),
    /// Refused by policy: 403.
    Forbidden,
    /// Another project's object, or none at all: 404.
    NotFound,
}
use Exp::{Forbidden as F, Is, NotFound as NF, Ok as OK};

/// Readable by the owner project, invisible to others.
const READ: [Exp; 5] = [OK, OK, NF, NF, OK];
/// A member rule checked on the loaded object: readers of the owner project get 403,
/// other projects 404.
const MEMBER: [Exp; 5] = [OK, F, NF, NF, OK];
/// A member rule checked before the lookup (`@wsgi.Controller.authorize`): every reader
/// gets 403, a member of another project passes it and then finds nothing (404).
const MEMBER_PRE: [Exp; 5] = [OK, F, NF, F, OK];
/// Admin-only.
const ADMIN: [Exp; 5] = [F, F, F, F, OK];
/// Anyone with a token (lists are filtered to the caller's project).
const ANYONE: [Exp; 5] = [OK; 5];
/// Creation in the caller's own project: members only.
const CREATE: [Exp; 5] = [OK, F, OK, F, OK];
/// A share's `update` and `delete` are `@authorize`d before the lookup: readers get 403,
/// the others find no share called `detail` or `manage` (404).
const LITERAL_ID: [Exp; 5] = [NF, F, NF, F, NF];
/// Allowed for everyone, the literal id finds nothing.
const ALL_404: [Exp; 5] = [NF; 5];

/// What a call does to the fixture.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// Reads only.
    Read,
    /// Changes the fixture in place; refused personas must leave `watch` (an admin GET)
    /// unchanged.
    InPlace(&'static str),
    /// Consumes the object; each allowed persona runs on a fresh one made by `Fresh`,
    /// refused personas run on the shared fixture and must leave `watch` unchanged.
    Consumes(Fresh, &'static str),
}

/// A fresh object for a consuming call; the placeholder it replaces.
#[derive(Debug, Clone, Copy)]
enum Fresh {
    /// An available share of type `snap` (`{share2}`).
    Share,
    /// An available snapshot of `{share2}` (`{snap}`).
    Snapshot,
    /// A replicated share with an in-sync secondary (`{replica}`: the secondary,
    /// `{active}`: the active one, `{share}`: the share).
    Replica,
    /// A private share type (`{priv}`).
    Type,
    /// A user message of project A (`{msg}`).
    Message,
    /// The metadata key `gone` set on the object; the entry's URL deletes it.
    MetaKey(&'static str),
    /// An extra spec `gone` on `{priv}`.
    ExtraSpec,
}

/// One route and how each persona must fare.
struct Entry {
    method: &'static str,
    path: &'static str,
    /// The concrete URL; `{name}` placeholders come from the fixture.
    url: &'static str,
    /// Request body template (placeholders and `{who}` are replaced), if any.
    body: Option<&'static str>,
    /// Expected answer per persona ([`WHO`] order); `None` when excluded.
    expect: Option<[Exp; 5]>,
    effect: Effect,
    /// Why the entry is excluded (empty otherwise).
    excluded_because: &'static str,
    version: &'static str,
}

const fn e(
    method: &'static str,
    path: &'static str,
    url: &'static str,
    body: Option<&'static str>,
    expect: [Exp; 5],
    effect: Effect,
) -> Entry {
    Entry {
        method,
        path,
        url,
        body,
        expect: Some(expect),
        effect,
        excluded_because: "",
        version: V,
    }
}

const fn excluded(method: &'static str, path: &'static str, reason: &'static str) -> Entry {
    Entry {
        method,
        path,
        url: "",
        body: None,
        expect: None,
        effect: Effect::Read,
        excluded_because: reason,
        version: V,
    }
}

const fn at(mut entry: Entry, version: &'static str) -> Entry {
    entry.version = version;
    entry
}

const IDENTITY: &str = "built-in identity only (auth_strategy = \"builtin\"): not mounted in \
    keystone mode, where the matrix runs; Keystone's own rules for it are covered by \
    identity.rs and identity_admin.rs";

use Effect::{Consumes, InPlace, Read};

const SHARE2: &str = "/v2/shares/{share2}";
const SNAP: &str = "/v2/snapshots/{snap}";
const PRIV: &str = "/v2/types/{priv}";
const REPLICA: &str = "/v2/share-replicas/{replica}";

/// The matrix. One entry per route of `shoal_api::route_table()`.
fn table() -> Vec<Entry> {
    let get = |path, url, expect| e("GET", path, url, None, expect, Read);
    vec![
        // Public routes, no token needed; personas still send theirs.
        // Manila answers the version list with 300 Multiple Choices.
        get("/", "/", [Is(300); 5]),
        get("/v2", "/v2", [Is(302); 5]),
        get("/healthcheck", "/healthcheck", ANYONE),
        get("/v2/", "/v2/", ANYONE),
        // Share types. `{priv}` is private with access for project A only.
        get("/v2/types", "/v2/types", ANYONE),
        e(
            "POST",
            "/v2/types",
            "/v2/types",
            Some(
                r#"{"share_type": {"name": "mx-{who}", "extra_specs": {"driver_handles_share_servers": false}}}"#,
            ),
            ADMIN,
            InPlace("/v2/types?is_public=all"),
        ),
        // No default share type is configured: 404 for every reader.
        get("/v2/types/default", "/v2/types/default", ALL_404),
        e(
            "PUT",
            "/v2/types/default",
            "/v2/types/default",
            Some(r#"{"share_type": {"description": "x"}}"#),
            [F, F, F, F, NF],
            InPlace("/v2/types?is_public=all"),
        ),
        e(
            "DELETE",
            "/v2/types/default",
            "/v2/types/default",
            None,
            [F, F, F, F, NF],
            InPlace("/v2/types?is_public=all"),
        ),
        // Routed by Manila without a handler.
        get("/v2/types/detail", "/v2/types/detail", ALL_404),
        e(
            "PUT",
            "/v2/types/detail",
            "/v2/types/detail",
            Some(r#"{"share_type": {"description": "x"}}"#),
            [F, F, F, F, NF],
            InPlace("/v2/types?is_public=all"),
        ),
        e(
            "DELETE",
            "/v2/types/detail",
            "/v2/types/detail",
            None,
            [F, F, F, F, NF],
            InPlace("/v2/types?is_public=all"),
        ),
        get("/v2/types/{id}", PRIV, READ),
        e(
            "PUT",
            "/v2/types/{id}",
            PRIV,
            Some(r#"{"share_type": {"description": "by {who}"}}"#),
            ADMIN,
            InPlace(PRIV),
        ),
        e(
            "DELETE",
            "/v2/types/{id}",
            PRIV,
            None,
            ADMIN,
            Consumes(Fresh::Type, PRIV),
        ),
        e(
            "POST",
            "/v2/types/{id}/action",
            "/v2/types/{priv}/action",
            Some(r#"{"addProjectAccess": {"project": "{project_b}"}}"#),
            ADMIN,
            InPlace("/v2/types/{priv}/share_type_access"),
        ),
        get(
            "/v2/types/{id}/extra_specs",
            "/v2/types/{priv}/extra_specs",
            ADMIN,
        ),
        e(
            "POST",
            "/v2/types/{id}/extra_specs",
            "/v2/types/{priv}/extra_specs",
            Some(r#"{"extra_specs": {"mx": "{who}"}}"#),
            ADMIN,
            InPlace("/v2/types/{priv}/extra_specs"),
        ),
        get(
            "/v2/types/{id}/extra_specs/{key}",
            "/v2/types/{priv}/extra_specs/driver_handles_share_servers",
            ADMIN,
        ),
        e(
            "PUT",
            "/v2/types/{id}/extra_specs/{key}",
            "/v2/types/{priv}/extra_specs/mx",
            Some(r#"{"mx": "{who}"}"#),
            ADMIN,
            InPlace("/v2/types/{priv}/extra_specs"),
        ),
        e(
            "DELETE",
            "/v2/types/{id}/extra_specs/{key}",
            "/v2/types/{priv}/extra_specs/gone",
            None,
            ADMIN,
            Consumes(Fresh::ExtraSpec, "/v2/types/{priv}/extra_specs"),
        ),
        get(
            "/v2/types/{id}/share_type_access",
            "/v2/types/{priv}/share_type_access",
            ADMIN,
        ),
        get(
            "/v2/types/{id}/os-share-type-access",
            "/v2/types/{priv}/os-share-type-access",
            ADMIN,
        ),
        // Shares. `{share}` is replicated (type rsnap), `{share2}` is not (type snap).
        get("/v2/shares", "/v2/shares", ANYONE),
        e(
            "POST",
            "/v2/shares",
            "/v2/shares",
            Some(
                r#"{"share": {"share_proto": "NFS", "size": 1, "availability_zone": "az1", "share_type": "snap", "name": "mx-{who}"}}"#,
            ),
            CREATE,
            InPlace("/v2/shares/detail?all_tenants=1&name=mx-{who}"),
        ),
        get("/v2/shares/detail", "/v2/shares/detail", ANYONE),
        // `detail` taken as a share id.
        e(
            "PUT",
            "/v2/shares/detail",
            "/v2/shares/detail",
            Some(r#"{"share": {"display_description": "x"}}"#),
            LITERAL_ID,
            Read,
        ),
        e(
            "DELETE",
            "/v2/shares/detail",
            "/v2/shares/detail",
            None,
            LITERAL_ID,
            Read,
        ),
        get("/v2/shares/{id}", SHARE2, READ),
        e(
            "PUT",
            "/v2/shares/{id}",
            SHARE2,
            Some(r#"{"share": {"display_description": "by {who}"}}"#),
            MEMBER_PRE,
            InPlace(SHARE2),
        ),
        e(
            "DELETE",
            "/v2/shares/{id}",
            SHARE2,
            None,
            MEMBER_PRE,
            Consumes(Fresh::Share, SHARE2),
        ),
        // A member action, `@authorize`d before the lookup (Manila's `_allow_access`).
        e(
            "POST",
            "/v2/shares/{id}/action",
            "/v2/shares/{share2}/action",
            Some(r#"{"allow_access": {"access_type": "ip", "access_to": "10.9.{who}.0/24"}}"#),
            MEMBER_PRE,
            InPlace("/v2/share-access-rules?share_id={share2}"),
        ),
        get(
            "/v2/shares/{id}/metadata",
            "/v2/shares/{share2}/metadata",
            READ,
        ),
        e(
            "POST",
            "/v2/shares/{id}/metadata",
            "/v2/shares/{share2}/metadata",
            Some(r#"{"metadata": {"mx": "{who}"}}"#),
            MEMBER_PRE,
            InPlace("/v2/shares/{share2}/metadata"),
        ),
        e(
            "PUT",
            "/v2/shares/{id}/metadata",
            "/v2/shares/{share2}/metadata",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/shares/{share2}/metadata"),
        ),
        get(
            "/v2/shares/{id}/metadata/{key}",
            "/v2/shares/{share2}/metadata/k",
            READ,
        ),
        e(
            "POST",
            "/v2/shares/{id}/metadata/{key}",
            "/v2/shares/{share2}/metadata/k",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/shares/{share2}/metadata"),
        ),
        e(
            "PUT",
            "/v2/shares/{id}/metadata/{key}",
            "/v2/shares/{share2}/metadata/k",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/shares/{share2}/metadata"),
        ),
        e(
            "DELETE",
            "/v2/shares/{id}/metadata/{key}",
            "/v2/shares/{share2}/metadata/gone",
            None,
            MEMBER_PRE,
            Consumes(
                Fresh::MetaKey("/v2/shares/{share2}/metadata"),
                "/v2/shares/{share2}/metadata",
            ),
        ),
        // Manage and unmanage (admin-only, checked first).
        e(
            "POST",
            "/v2/shares/manage",
            "/v2/shares/manage",
            Some(
                r#"{"share": {"protocol": "NFS", "export_path": "10.0.0.9:/mx-{who}", "service_host": "{pool1}", "share_type": "snap", "name": "mx-managed"}}"#,
            ),
            ADMIN,
            InPlace("/v2/shares/detail?all_tenants=1&name=mx-managed"),
        ),
        // `manage` taken as a share id.
        get("/v2/shares/manage", "/v2/shares/manage", ALL_404),
        e(
            "PUT",
            "/v2/shares/manage",
            "/v2/shares/manage",
            Some(r#"{"share": {"display_description": "x"}}"#),
            LITERAL_ID,
            Read,
        ),
        e(
            "DELETE",
            "/v2/shares/manage",
            "/v2/shares/manage",
            None,
            LITERAL_ID,
            Read,
        ),
        at(
            e(
                "POST",
                "/v2/os-share-manage",
                "/v2/os-share-manage",
                Some(
                    r#"{"share": {"protocol": "NFS", "export_path": "10.0.0.9:/mxl-{who}", "service_host": "{pool1}", "share_type": "snap", "name": "mx-managed"}}"#,
                ),
                ADMIN,
                InPlace("/v2/shares/detail?all_tenants=1&name=mx-managed"),
            ),
            "2.6",
        ),
        at(
            e(
                "POST",
                "/v2/os-share-unmanage/{id}/unmanage",
                "/v2/os-share-unmanage/{share2}/unmanage",
                None,
                ADMIN,
                Consumes(Fresh::Share, SHARE2),
            ),
            "2.6",
        ),
        // Export locations.
        // Manila's `_verify_share` loads the share unfiltered and lets the `share:get`
        // policy failure through: 403, not 404, for other projects.
        get(
            "/v2/shares/{share_id}/export_locations",
            "/v2/shares/{share2}/export_locations",
            [OK, OK, F, F, OK],
        ),
        get(
            "/v2/shares/{share_id}/export_locations/{export_location_id}",
            "/v2/shares/{share2}/export_locations/{el}",
            [OK, OK, F, F, OK],
        ),
        // Share instances: admin-only (checked first).
        get("/v2/share_instances", "/v2/share_instances", ADMIN),
        get(
            "/v2/share_instances/{id}",
            "/v2/share_instances/{inst}",
            ADMIN,
        ),
        e(
            "POST",
            "/v2/share_instances/{id}/action",
            "/v2/share_instances/{inst}/action",
            Some(r#"{"reset_status": {"status": "available"}}"#),
            ADMIN,
            InPlace("/v2/share_instances/{inst}"),
        ),
        get(
            "/v2/shares/{share_id}/instances",
            "/v2/shares/{share2}/instances",
            ADMIN,
        ),
        get(
            "/v2/share_instances/{id}/export_locations",
            "/v2/share_instances/{inst}/export_locations",
            ADMIN,
        ),
        get(
            "/v2/share_instances/{id}/export_locations/{export_location_id}",
            "/v2/share_instances/{inst}/export_locations/{el}",
            ADMIN,
        ),
        // Replicas. Create and delete check their rule first (`@authorize`).
        get("/v2/share-replicas", "/v2/share-replicas", ANYONE),
        // `{share2}`'s type is not replicated: allowed personas get 400 after the lookup.
        e(
            "POST",
            "/v2/share-replicas",
            "/v2/share-replicas",
            Some(r#"{"share_replica": {"share_id": "{share2}", "availability_zone": "az2"}}"#),
            [Is(400), F, NF, F, Is(400)],
            InPlace("/v2/share-replicas/detail?share_id={share2}"),
        ),
        get(
            "/v2/share-replicas/detail",
            "/v2/share-replicas/detail",
            ANYONE,
        ),
        e(
            "DELETE",
            "/v2/share-replicas/detail",
            "/v2/share-replicas/detail",
            None,
            [NF, F, NF, F, NF],
            Read,
        ),
        get("/v2/share-replicas/{id}", REPLICA, READ),
        e(
            "DELETE",
            "/v2/share-replicas/{id}",
            REPLICA,
            None,
            MEMBER_PRE,
            Consumes(Fresh::Replica, REPLICA),
        ),
        e(
            "POST",
            "/v2/share-replicas/{id}/action",
            "/v2/share-replicas/{replica}/action",
            Some(r#"{"promote": null}"#),
            MEMBER_PRE,
            Consumes(Fresh::Replica, REPLICA),
        ),
        // shoal's own addition, admin-only (`share_replica:replication_history`).
        get(
            "/v2/share-replicas/{id}/replication-history",
            "/v2/share-replicas/{replica}/replication-history",
            ADMIN,
        ),
        get(
            "/v2/share-replicas/{id}/export-locations",
            "/v2/share-replicas/{replica}/export-locations",
            READ,
        ),
        get(
            "/v2/share-replicas/{id}/export-locations/{export_location_id}",
            "/v2/share-replicas/{replica}/export-locations/{rel}",
            READ,
        ),
        // Replica metadata: even reading is a member rule (`share_replica:get_metadata`).
        get(
            "/v2/share-replicas/{id}/metadata",
            "/v2/share-replicas/{replica}/metadata",
            MEMBER_PRE,
        ),
        e(
            "POST",
            "/v2/share-replicas/{id}/metadata",
            "/v2/share-replicas/{replica}/metadata",
            Some(r#"{"metadata": {"mx": "{who}"}}"#),
            MEMBER_PRE,
            InPlace("/v2/share-replicas/{replica}/metadata"),
        ),
        e(
            "PUT",
            "/v2/share-replicas/{id}/metadata",
            "/v2/share-replicas/{replica}/metadata",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/share-replicas/{replica}/metadata"),
        ),
        get(
            "/v2/share-replicas/{id}/metadata/{key}",
            "/v2/share-replicas/{replica}/metadata/k",
            MEMBER_PRE,
        ),
        e(
            "POST",
            "/v2/share-replicas/{id}/metadata/{key}",
            "/v2/share-replicas/{replica}/metadata/k",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/share-replicas/{replica}/metadata"),
        ),
        e(
            "DELETE",
            "/v2/share-replicas/{id}/metadata/{key}",
            "/v2/share-replicas/{replica}/metadata/gone",
            None,
            MEMBER_PRE,
            Consumes(
                Fresh::MetaKey("/v2/share-replicas/{replica}/metadata"),
                "/v2/share-replicas/{replica}/metadata",
            ),
        ),
        // Snapshots.
        get("/v2/snapshots", "/v2/snapshots", ANYONE),
        // Manila's snapshot `update` and `delete` check their rule first; `create` looks the
        // share up first (404 for other projects), then checks `share:create_snapshot` on it.
        e(
            "POST",
            "/v2/snapshots",
            "/v2/snapshots",
            Some(r#"{"snapshot": {"share_id": "{share2}", "name": "mx-{who}"}}"#),
            MEMBER,
            InPlace("/v2/snapshots/detail?all_tenants=1&share_id={share2}"),
        ),
        get("/v2/snapshots/detail", "/v2/snapshots/detail", ANYONE),
        e(
            "POST",
            "/v2/snapshots/manage",
            "/v2/snapshots/manage",
            Some(
                r#"{"snapshot": {"share_id": "{share2}", "provider_location": "mx-{who}", "name": "mx-managed"}}"#,
            ),
            ADMIN,
            InPlace("/v2/snapshots/detail?all_tenants=1&share_id={share2}"),
        ),
        get("/v2/snapshots/{id}", SNAP, READ),
        e(
            "PUT",
            "/v2/snapshots/{id}",
            SNAP,
            Some(r#"{"snapshot": {"display_description": "by {who}"}}"#),
            MEMBER_PRE,
            InPlace(SNAP),
        ),
        e(
            "DELETE",
            "/v2/snapshots/{id}",
            SNAP,
            None,
            MEMBER_PRE,
            Consumes(Fresh::Snapshot, SNAP),
        ),
        e(
            "POST",
            "/v2/snapshots/{id}/action",
            "/v2/snapshots/{snap}/action",
            Some(r#"{"reset_status": {"status": "available"}}"#),
            ADMIN,
            InPlace(SNAP),
        ),
        get(
            "/v2/snapshots/{id}/access-list",
            "/v2/snapshots/{snap}/access-list",
            READ,
        ),
        get(
            "/v2/snapshots/{id}/export-locations",
            "/v2/snapshots/{snap}/export-locations",
            READ,
        ),
        get(
            "/v2/snapshots/{id}/export-locations/{el}",
            "/v2/snapshots/{snap}/export-locations/{sel}",
            READ,
        ),
        get(
            "/v2/snapshots/{id}/metadata",
            "/v2/snapshots/{snap}/metadata",
            READ,
        ),
        e(
            "POST",
            "/v2/snapshots/{id}/metadata",
            "/v2/snapshots/{snap}/metadata",
            Some(r#"{"metadata": {"mx": "{who}"}}"#),
            MEMBER_PRE,
            InPlace("/v2/snapshots/{snap}/metadata"),
        ),
        e(
            "PUT",
            "/v2/snapshots/{id}/metadata",
            "/v2/snapshots/{snap}/metadata",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/snapshots/{snap}/metadata"),
        ),
        get(
            "/v2/snapshots/{id}/metadata/{key}",
            "/v2/snapshots/{snap}/metadata/k",
            READ,
        ),
        e(
            "PUT",
            "/v2/snapshots/{id}/metadata/{key}",
            "/v2/snapshots/{snap}/metadata/k",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/snapshots/{snap}/metadata"),
        ),
        e(
            "POST",
            "/v2/snapshots/{id}/metadata/{key}",
            "/v2/snapshots/{snap}/metadata/k",
            Some(r#"{"metadata": {"k": "v"}}"#),
            MEMBER_PRE,
            InPlace("/v2/snapshots/{snap}/metadata"),
        ),
        e(
            "DELETE",
            "/v2/snapshots/{id}/metadata/{key}",
            "/v2/snapshots/{snap}/metadata/gone",
            None,
            MEMBER_PRE,
            Consumes(
                Fresh::MetaKey("/v2/snapshots/{snap}/metadata"),
                "/v2/snapshots/{snap}/metadata",
            ),
        ),
        // Snapshot instances: admin-only.
        get("/v2/snapshot-instances", "/v2/snapshot-instances", ADMIN),
        get(
            "/v2/snapshot-instances/detail",
            "/v2/snapshot-instances/detail",
            ADMIN,
        ),
        get(
            "/v2/snapshot-instances/{id}",
            "/v2/snapshot-instances/{sinst}",
            ADMIN,
        ),
        e(
            "POST",
            "/v2/snapshot-instances/{id}/action",
            "/v2/snapshot-instances/{sinst}/action",
            Some(r#"{"reset_status": {"status": "available"}}"#),
            ADMIN,
            InPlace("/v2/snapshot-instances/{sinst}"),
        ),
        get(
            "/v2/snapshot-instances/{id}/export-locations",
            "/v2/snapshot-instances/{sinst}/export-locations",
            ADMIN,
        ),
        get(
            "/v2/snapshot-instances/{id}/export-locations/{el}",
            "/v2/snapshot-instances/{sinst}/export-locations/{sel}",
            ADMIN,
        ),
        // Availability zones, services, pools.
        get("/v2/availability-zones", "/v2/availability-zones", ANYONE),
        at(
            get(
                "/v2/os-availability-zone",
                "/v2/os-availability-zone",
                ANYONE,
            ),
            "2.6",
        ),
        get("/v2/services", "/v2/services", ADMIN),
        at(get("/v2/os-services", "/v2/os-services", ADMIN), "2.6"),
        e(
            "PUT",
            "/v2/services/{action}",
            "/v2/services/enable",
            Some(r#"{"host": "{host1}", "binary": "manila-share"}"#),
            ADMIN,
            InPlace("/v2/services"),
        ),
        at(
            e(
                "PUT",
                "/v2/os-services/{action}",
                "/v2/os-services/enable",
                Some(r#"{"host": "{host1}", "binary": "manila-share"}"#),
                ADMIN,
                InPlace("/v2/services"),
            ),
            "2.6",
        ),
        get(
            "/v2/scheduler-stats/pools",
            "/v2/scheduler-stats/pools",
            ADMIN,
        ),
        get(
            "/v2/scheduler-stats/pools/detail",
            "/v2/scheduler-stats/pools/detail",
            ADMIN,
        ),
        // Access rules (≥2.45).
        // Manila answers another project's `share_id` with 400 "Share %s not found.".
        get(
            "/v2/share-access-rules",
            "/v2/share-access-rules?share_id={share2}",
            [OK, OK, Is(400), Is(400), OK],
        ),
        // Routed by Manila without a handler.
        get(
            "/v2/share-access-rules/detail",
            "/v2/share-access-rules/detail",
            ALL_404,
        ),
        get(
            "/v2/share-access-rules/{id}",
            "/v2/share-access-rules/{rule}",
            READ,
        ),
        e(
            "PUT",
            "/v2/share-access-rules/{id}",
            "/v2/share-access-rules/{rule}",
            Some(r#"{"update_access": {"access_level": "ro"}}"#),
            MEMBER_PRE,
            InPlace("/v2/share-access-rules/{rule}"),
        ),
        e(
            "PUT",
            "/v2/share-access-rules/{id}/metadata",
            "/v2/share-access-rules/{rule}/metadata",
            Some(r#"{"metadata": {"mx": "{who}"}}"#),
            MEMBER_PRE,
            InPlace("/v2/share-access-rules/{rule}"),
        ),
        e(
            "DELETE",
            "/v2/share-access-rules/{id}/metadata/{key}",
            "/v2/share-access-rules/{rule}/metadata/gone",
            None,
            MEMBER_PRE,
            Consumes(
                Fresh::MetaKey("/v2/share-access-rules/{rule}/metadata"),
                "/v2/share-access-rules/{rule}",
            ),
        ),
        // Quotas of project A: readers of A and admins; other projects are refused by
        // Manila's `authorize_project_context` (403).
        get(
            "/v2/quota-sets/{project_id}",
            "/v2/quota-sets/{project_a}",
            [OK, OK, F, F, OK],
        ),
        e(
            "PUT",
            "/v2/quota-sets/{project_id}",
            "/v2/quota-sets/{project_a}",
            Some(r#"{"quota_set": {"snapshots": 60}}"#),
            ADMIN,
            InPlace("/v2/quota-sets/{project_a}"),
        ),
        e(
            "DELETE",
            "/v2/quota-sets/{project_id}",
            "/v2/quota-sets/{project_a}",
            None,
            ADMIN,
            InPlace("/v2/quota-sets/{project_a}"),
        ),
        get(
            "/v2/quota-sets/{project_id}/defaults",
            "/v2/quota-sets/{project_a}/defaults",
            ANYONE,
        ),
        get(
            "/v2/quota-sets/{project_id}/detail",
            "/v2/quota-sets/{project_a}/detail",
            [OK, OK, F, F, OK],
        ),
        at(
            get(
                "/v2/os-quota-sets/{project_id}",
                "/v2/os-quota-sets/{project_a}",
                [OK, OK, F, F, OK],
            ),
            "2.6",
        ),
        at(
            e(
                "PUT",
                "/v2/os-quota-sets/{project_id}",
                "/v2/os-quota-sets/{project_a}",
                Some(r#"{"quota_set": {"snapshots": 60}}"#),
                ADMIN,
                InPlace("/v2/quota-sets/{project_a}"),
            ),
            "2.6",
        ),
        at(
            e(
                "DELETE",
                "/v2/os-quota-sets/{project_id}",
                "/v2/os-quota-sets/{project_a}",
                None,
                ADMIN,
                InPlace("/v2/quota-sets/{project_a}"),
            ),
            "2.6",
        ),
        at(
            get(
                "/v2/os-quota-sets/{project_id}/defaults",
                "/v2/os-quota-sets/{project_a}/defaults",
                ANYONE,
            ),
            "2.6",
        ),
        get("/v2/limits", "/v2/limits", ANYONE),
        // Messages.
        get("/v2/messages", "/v2/messages", ANYONE),
        get("/v2/messages/{id}", "/v2/messages/{msg}", READ),
        e(
            "DELETE",
            "/v2/messages/{id}",
            "/v2/messages/{msg}",
            None,
            MEMBER_PRE,
            Consumes(Fresh::Message, "/v2/messages/{msg}"),
        ),
        // The built-in identity.
        excluded("GET", "/identity", IDENTITY),
        excluded("GET", "/identity/", IDENTITY),
        excluded("GET", "/identity/v3", IDENTITY),
        excluded("GET", "/identity/v3/", IDENTITY),
        excluded("GET", "/identity/v3/auth/tokens", IDENTITY),
        excluded("HEAD", "/identity/v3/auth/tokens", IDENTITY),
        excluded("POST", "/identity/v3/auth/tokens", IDENTITY),
        excluded("DELETE", "/identity/v3/auth/tokens", IDENTITY),
        excluded("GET", "/identity/v3/auth/projects", IDENTITY),
        excluded("GET", "/identity/v3/projects", IDENTITY),
        excluded("POST", "/identity/v3/projects", IDENTITY),
        excluded("GET", "/identity/v3/projects/{id}", IDENTITY),
        excluded("DELETE", "/identity/v3/projects/{id}", IDENTITY),
        excluded(
            "GET",
            "/identity/v3/projects/{project}/users/{user}/roles",
            IDENTITY,
        ),
        excluded(
            "GET",
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            IDENTITY,
        ),
        excluded(
            "HEAD",
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            IDENTITY,
        ),
        excluded(
            "PUT",
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            IDENTITY,
        ),
        excluded(
            "DELETE",
            "/identity/v3/projects/{project}/users/{user}/roles/{role}",
            IDENTITY,
        ),
        excluded("GET", "/identity/v3/users", IDENTITY),
        excluded("POST", "/identity/v3/users", IDENTITY),
        excluded("GET", "/identity/v3/users/{id}", IDENTITY),
        excluded("PATCH", "/identity/v3/users/{id}", IDENTITY),
        excluded("DELETE", "/identity/v3/users/{id}", IDENTITY),
        excluded("GET", "/identity/v3/domains", IDENTITY),
        excluded("GET", "/identity/v3/domains/{id}", IDENTITY),
        excluded("GET", "/identity/v3/roles", IDENTITY),
        excluded("GET", "/identity/v3/roles/{id}", IDENTITY),
        excluded("GET", "/identity/v3/role_assignments", IDENTITY),
    ]
}

/// The objects of project A the entries address, by placeholder name.
struct Fixture {
    ids: HashMap<&'static str, String>,
    /// Ids of project A's objects that project B must never see.
    secrets: BTreeSet<String>,
}

impl Fixture {
    fn fill(&self, template: &str, who: usize) -> String {
        let mut out = template.replace("{who}", &who.to_string());
        for (name, id) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), id);
        }
        out
    }
}

async fn call(
    app: &TestApp,
    user: &str,
    method: &str,
    url: &str,
    version: &str,
    body: Option<&str>,
) -> TestResponse {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = app
        .request(method, url)
        .version(version)
        .token(&app.token_for(user));
    if let Some(body) = body {
        let value: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body}: {e}"));
        request = request.json(&value);
    }
    request.send().await
}

async fn admin_get(app: &TestApp, url: &str) -> Value {
    let resp = call(app, "admin", "GET", url, V, None).await;
    assert_eq!(resp.status, 200, "watch {url}: {}", resp.text());
    let text = resp.text();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    json!({"status": resp.status, "body": body})
}

/// The id of `list[0]` in `GET url` as admin.
async fn first_id(app: &TestApp, url: &str, key: &str) -> String {
    first_id_as(app, "admin", url, key).await
}

/// The id of `list[0]` in `GET url` as `user`.
async fn first_id_as(app: &TestApp, user: &str, url: &str, key: &str) -> String {
    let resp = call(app, user, "GET", url, V, None).await;
    assert_eq!(resp.status, 200, "{url}: {}", resp.text());
    resp.json()[key][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{url} lists no {key}: {}", resp.text()))
        .to_owned()
}

async fn ok(app: &TestApp, user: &str, method: &str, url: &str, body: &str) -> Value {
    let resp = call(app, user, method, url, V, Some(body)).await;
    assert!(
        (200..300).contains(&resp.status),
        "{method} {url}: {} {}",
        resp.status,
        resp.text()
    );
    if resp.body.is_empty() {
        Value::Null
    } else {
        resp.json()
    }
}

async fn private_type(app: &TestApp, name: &str) -> String {
    let body = format!(
        r#"{{"share_type": {{"name": "{name}", "os-share-type-access:is_public": false, "extra_specs": {{"driver_handles_share_servers": false, "gone": "x"}}}}}}"#
    );
    let id = ok(app, "admin", "POST", "/v2/types", &body).await["share_type"]["id"]
        .as_str()
        .expect("type id")
        .to_owned();
    let access = format!(r#"{{"addProjectAccess": {{"project": "{PROJECT_A}"}}}}"#);
    ok(
        app,
        "admin",
        "POST",
        &format!("/v2/types/{id}/action"),
        &access,
    )
    .await;
    id
}

async fn message(app: &TestApp) -> String {
    let resource = uuid::Uuid::new_v4().to_string();
    shoal_core::messages::record(
        app.core(),
        PROJECT_A,
        "SHARE",
        &resource,
        shoal_core::messages::ACTION_ALLOCATE_HOST,
        shoal_core::messages::DETAIL_FILTER_REPLICATION,
        "ERROR",
    )
    .await
    .expect("record");
    first_id(
        app,
        &format!("/v2/messages?resource_id={resource}"),
        "messages",
    )
    .await
}

async fn fixture(app: &TestApp) -> Fixture {
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    let share = share_of_type(app, "alice", "rsnap").await;
    let replica = in_sync_replica(app, "alice", &share).await;
    let active = active_of(app, &share).await;
    let share2 = share_of_type(app, "alice", "snap").await;
    let snap = available_snapshot(app, "alice", &share2).await;
    let rule = ok(
        app,
        "alice",
        "POST",
        &format!("/v2/shares/{share2}/action"),
        r#"{"allow_access": {"access_type": "ip", "access_to": "10.8.0.0/24", "metadata": {"k": "v"}}}"#,
    )
    .await["access"]["id"]
        .as_str()
        .expect("rule id")
        .to_owned();
    app.settle().await;
    for url in [
        format!("/v2/shares/{share2}/metadata"),
        format!("/v2/snapshots/{snap}/metadata"),
        format!("/v2/share-replicas/{replica}/metadata"),
    ] {
        ok(app, "alice", "POST", &url, r#"{"metadata": {"k": "v"}}"#).await;
    }
    // Export locations as the owner sees them (admin-only ones are hidden from it).
    let el = first_id_as(
        app,
        "alice",
        &format!("/v2/shares/{share2}/export_locations"),
        "export_locations",
    )
    .await;
    let inst = first_id(
        app,
        &format!("/v2/shares/{share2}/instances"),
        "share_instances",
    )
    .await;
    let rel = first_id_as(
        app,
        "alice",
        &format!("/v2/share-replicas/{replica}/export-locations"),
        "export_locations",
    )
    .await;
    let sinst = instances_of(app, &snap).await[0]["id"]
        .as_str()
        .expect("snapshot instance")
        .to_owned();
    let sel = first_id_as(
        app,
        "alice",
        &format!("/v2/snapshots/{snap}/export-locations"),
        "share_snapshot_export_locations",
    )
    .await;
    let msg = message(app).await;
    let private = private_type(app, "mx-private").await;
    let secrets: BTreeSet<String> = [
        &share, &replica, &active, &share2, &snap, &rule, &el, &inst, &rel, &sinst, &msg, &private,
    ]
    .into_iter()
    .cloned()
    .collect();
    ids.extend([
        ("share", share),
        ("replica", replica),
        ("active", active),
        ("share2", share2),
        ("snap", snap),
        ("rule", rule),
        ("el", el),
        ("inst", inst),
        ("rel", rel),
        ("sinst", sinst),
        ("sel", sel),
        ("msg", msg),
        ("priv", private),
        ("project_a", PROJECT_A.to_owned()),
        ("project_b", PROJECT_B.to_owned()),
        ("pool1", pool_of("dummy1")),
        ("host1", format!("{}@dummy1", shoal_testkit::TEST_HOST)),
    ]);
    Fixture { ids, secrets }
}

/// Makes the fresh object `kind` and returns the placeholders it replaces.
async fn make_fresh(app: &TestApp, fx: &Fixture, kind: Fresh) -> Vec<(&'static str, String)> {
    match kind {
        Fresh::Share => vec![("share2", share_of_type(app, "alice", "snap").await)],
        Fresh::Snapshot => vec![(
            "snap",
            available_snapshot(app, "alice", &fx.ids["share2"]).await,
        )],
        Fresh::Replica => {
            let share = share_of_type(app, "alice", "rsnap").await;
            let replica = in_sync_replica(app, "alice", &share).await;
            let active = active_of(app, &share).await;
            vec![("share", share), ("replica", replica), ("active", active)]
        }
        Fresh::Type => vec![(
            "priv",
            private_type(app, &format!("mx-{}", uuid::Uuid::new_v4())).await,
        )],
        Fresh::Message => vec![("msg", message(app).await)],
        Fresh::MetaKey(url) => {
            let url = fx.fill(url, 0);
            let method = if url.starts_with("/v2/share-access-rules") {
                "PUT"
            } else {
                "POST"
            };
            ok(app, "alice", method, &url, r#"{"metadata": {"gone": "x"}}"#).await;
            vec![]
        }
        Fresh::ExtraSpec => {
            let url = fx.fill("/v2/types/{priv}/extra_specs", 0);
            ok(
                app,
                "admin",
                "POST",
                &url,
                r#"{"extra_specs": {"gone": "x"}}"#,
            )
            .await;
            vec![]
        }
    }
}

fn matches(exp: Exp, status: u16) -> bool {
    match exp {
        Exp::Ok => (200..300).contains(&status),
        Exp::Is(code) => status == code,
        Exp::Forbidden => status == 403,
        Exp::NotFound => status == 404,
    }
}

#[tokio::test]
async fn every_route_answers_each_persona_as_manila() {
    let started = std::time::Instant::now();
    let entries = table();

    // The table and the router's route table list the same routes.
    let routes: BTreeSet<String> = shoal_api::route_table()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut listed = BTreeMap::new();
    for entry in &entries {
        let key = format!("{} {}", entry.method, entry.path);
        assert!(
            listed.insert(key.clone(), ()).is_none(),
            "two entries for {key}"
        );
    }
    let listed: BTreeSet<String> = listed.into_keys().collect();
    let missing: Vec<_> = routes.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without a matrix entry: {missing:#?}"
    );
    assert!(
        stale.is_empty(),
        "matrix entries without a route: {stale:#?}"
    );

    let app = snapshot_app(AuthStrategy::Keystone, json!({})).await;
    let mut fx = fixture(&app).await;
    let mut failures = Vec::new();

    for entry in &entries {
        let Some(expect) = entry.expect else {
            assert!(
                !entry.excluded_because.is_empty(),
                "{} {} is excluded without a reason",
                entry.method,
                entry.path
            );
            continue;
        };
        // Fresh objects replace placeholders for this entry only: the shared fixture (and
        // every id that depends on it) is back for the next entry.
        let shared_ids = fx.ids.clone();
        // Refused personas first, on the shared fixture; then the allowed ones.
        let mut order: Vec<usize> = (0..5).filter(|&i| matches!(expect[i], F | NF)).collect();
        order.extend((0..5).filter(|&i| !matches!(expect[i], F | NF)));
        for who in order {
            let refused = matches!(expect[who], F | NF);
            let (watch, fresh) = match entry.effect {
                Effect::Read => (None, None),
                Effect::InPlace(watch) => (Some(watch), None),
                Effect::Consumes(kind, watch) => (Some(watch), Some(kind)),
            };
            if let (false, Some(kind)) = (refused, fresh) {
                for (name, id) in make_fresh(&app, &fx, kind).await {
                    fx.secrets.insert(id.clone());
                    fx.ids.insert(name, id);
                }
            }
            let before = match (refused, watch) {
                (true, Some(watch)) => Some(admin_get(&app, &fx.fill(watch, who)).await),
                _ => None,
            };
            let url = fx.fill(entry.url, who);
            let body = entry.body.map(|b| fx.fill(b, who));
            let resp = call(
                &app,
                WHO[who],
                entry.method,
                &url,
                entry.version,
                body.as_deref(),
            )
            .await;
            let route = format!("{} {}", entry.method, entry.path);
            if !matches(expect[who], resp.status) {
                failures.push(format!(
                    "{route} as {}: expected {:?}, got {} {}",
                    WHO[who],
                    expect[who],
                    resp.status,
                    resp.text().chars().take(300).collect::<String>()
                ));
            }
            if resp.status >= 500 {
                failures.push(format!(
                    "{route} as {}: server error {}",
                    WHO[who], resp.status
                ));
            }
            if OTHER_PROJECT.contains(&who) && (200..300).contains(&resp.status) {
                let text = resp.text();
                for secret in &fx.secrets {
                    if text.contains(secret.as_str()) {
                        failures.push(format!("{route} as {}: leaks {secret}", WHO[who]));
                    }
                }
            }
            if let (Some(before), Some(watch)) = (before, watch) {
                let after = admin_get(&app, &fx.fill(watch, who)).await;
                if before != after {
                    failures.push(format!(
                        "{route} as {} (refused) changed {watch}: {before} -> {after}",
                        WHO[who]
                    ));
                }
            }
            // Let the work an allowed call queued finish, so that the next refused call
            // is compared against a settled fixture.
            if !refused && watch.is_some() {
                app.settle().await;
            }
        }
        fx.ids = shared_ids;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "tenant matrix: {} entries in {:?}",
        entries.len(),
        started.elapsed()
    );
    app.finish().await;
}
