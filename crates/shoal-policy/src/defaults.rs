//! Manila's default policy rules, as registered by `manila/policies/*.py` (policy in
//! code), with the current, non-deprecated check strings.
//!
//! Taken from openstack/manila at commit `d28877849f29` by evaluating each module's
//! `list_rules()`; names, check strings, descriptions and documented operations are
//! Manila's own, in Manila's registration order. The check strings are literal copies of
//! what Manila builds from the persona constants in `base.py`, which are also exported
//! here ([`ADMIN`], [`ADMIN_OR_PROJECT_MEMBER`], ...) for code and tests that want to
//! name a persona.

/// An API operation a rule guards, as Manila documents it (`method` + URL `path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// HTTP method, e.g. `"POST"`.
    pub method: &'static str,
    /// URL path template below the API root, e.g. `"/shares/{share_id}/action"`.
    pub path: &'static str,
}

/// One default rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRule {
    /// Policy name, e.g. `"share:create"`.
    pub name: &'static str,
    /// Default check string.
    pub check_str: &'static str,
    /// Manila's description of the rule.
    pub description: &'static str,
    /// The API operations Manila documents for it (empty for helper rules).
    pub operations: &'static [Operation],
}

/// The defaults of one Manila policy module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultGroup {
    /// Module name under `manila/policies/`, e.g. `"share_replica"`.
    pub module: &'static str,
    /// Its rules, in Manila's order.
    pub rules: &'static [DefaultRule],
}

/// Every shipped default rule, in registration order.
pub fn all() -> impl Iterator<Item = &'static DefaultRule> {
    MANILA_DEFAULTS.iter().flat_map(|group| group.rules)
}

/// The default rule called `name`, if Manila has one.
pub fn find(name: &str) -> Option<&'static DefaultRule> {
    all().find(|rule| rule.name == name)
}

// Persona check strings, spelled exactly as `manila/policies/base.py` composes them.

/// Administrators (any project): `base.ADMIN`.
pub const ADMIN: &str = "rule:context_is_admin";
/// A service user or an administrator: `base.ADMIN_OR_SERVICE`.
pub const ADMIN_OR_SERVICE: &str = "rule:admin_or_service_api";
/// A member of the target's project: `base.PROJECT_MEMBER`.
pub const PROJECT_MEMBER: &str = "rule:project-member";
/// A reader of the target's project: `base.PROJECT_READER`.
pub const PROJECT_READER: &str = "rule:project-reader";
/// The user who owns a user-specific resource: `base.OWNER_USER`.
pub const OWNER_USER: &str = "rule:owner-user";
/// `base.ADMIN_OR_PROJECT_MEMBER`.
pub const ADMIN_OR_PROJECT_MEMBER: &str = "(rule:context_is_admin) or (rule:project-member)";
/// `base.ADMIN_OR_PROJECT_READER`.
pub const ADMIN_OR_PROJECT_READER: &str = "(rule:context_is_admin) or (rule:project-reader)";
/// `base.ADMIN_OR_SERVICE_OR_PROJECT_READER`.
pub const ADMIN_OR_SERVICE_OR_PROJECT_READER: &str =
    "(rule:admin_or_service_api) or (rule:project-reader)";
/// `base.ADMIN_OR_SERVICE_OR_PROJECT_MEMBER`.
pub const ADMIN_OR_SERVICE_OR_PROJECT_MEMBER: &str =
    "(rule:admin_or_service_api) or (rule:project-member)";
/// `base.ADMIN_OR_SERVICE_OR_OWNER_USER`.
pub const ADMIN_OR_SERVICE_OR_OWNER_USER: &str = "(rule:owner-user or rule:admin_or_service_api)";

const fn rule(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
    operations: &'static [Operation],
) -> DefaultRule {
    DefaultRule {
        name,
        check_str,
        description,
        operations,
    }
}

const fn op(method: &'static str, path: &'static str) -> Operation {
    Operation { method, path }
}

/// Personas and legacy helper rules from `manila/policies/base.py`.
///
/// Every other group refers to these through `rule:` checks, so overriding
/// e.g. `context_is_admin` or `project-member` changes every API that uses the
/// persona, exactly as in Manila.
pub const BASE: &[DefaultRule] = &[
    rule(
        "project-admin",
        "role:admin and project_id:%(project_id)s",
        "Project scoped Administrator",
        &[],
    ),
    rule(
        "project-member",
        "role:member and project_id:%(project_id)s",
        "Project scoped Member",
        &[],
    ),
    rule(
        "project-reader",
        "role:reader and project_id:%(project_id)s",
        "Project scoped Reader",
        &[],
    ),
    rule(
        "owner-user",
        "user_id:%(user_id)s and project_id:%(project_id)s",
        "Project scoped user that owns a user specific resource",
        &[],
    ),
    rule(
        "admin_or_service_api",
        "role:admin or role:service",
        "A service user or an administrator user.",
        &[],
    ),
    rule(
        "context_is_admin",
        "role:admin",
        "Privileged users checked via \"context.is_admin\"",
        &[],
    ),
    rule(
        "context_is_host_admin",
        "role:admin and project_id:%(project_id)s",
        "Privileged user who can select host during scheduling",
        &[],
    ),
    rule(
        "admin_or_owner",
        "is_admin:True or project_id:%(project_id)s",
        "Administrator or Member of the project",
        &[],
    ),
    rule(
        "admin_or_owner_user",
        "is_admin:True or project_id:%(project_id)s and user_id:%(user_id)s",
        "Administrator or owner user of a resource",
        &[],
    ),
    rule(
        "default",
        "rule:admin_or_owner",
        "Default rule for most non-Admin APIs",
        &[],
    ),
    rule(
        "admin_api",
        "is_admin:True",
        "Default rule for most Admin APIs.",
        &[],
    ),
];

/// Availability zone listing (`manila/policies/availability_zone.py`).
pub const AVAILABILITY_ZONE: &[DefaultRule] = &[rule(
    "availability_zone:index",
    "(rule:context_is_admin) or (rule:project-reader)",
    "Get all storage availability zones.",
    &[
        op("GET", "/os-availability-zone"),
        op("GET", "/availability-zone"),
    ],
)];

/// Scheduler pool statistics (`manila/policies/scheduler_stats.py`); admin only.
pub const SCHEDULER_STATS: &[DefaultRule] = &[
    rule(
        "scheduler_stats:pools:index",
        "rule:context_is_admin",
        "Get information regarding backends (and storage pools) known to the scheduler.",
        &[op("GET", "/scheduler-stats/pools?{query}")],
    ),
    rule(
        "scheduler_stats:pools:detail",
        "rule:context_is_admin",
        "Get detailed information regarding backends (and storage pools) known to the scheduler.",
        &[op("GET", "/scheduler-stats/pools/detail?{query}")],
    ),
];

/// Share lifecycle, access, metadata and snapshot-through-share actions
/// (`share:*`, `manila/policies/shares.py`).
pub const SHARE: &[DefaultRule] = &[
    rule(
        "share:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create share.",
        &[op("POST", "/shares")],
    ),
    rule(
        "share:create_public_share",
        "rule:context_is_admin",
        "Create shares visible across all projects in the cloud.",
        &[op("POST", "/shares")],
    ),
    rule(
        "share:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share.",
        &[op("GET", "/shares/{share_id}")],
    ),
    rule(
        "share:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List shares.",
        &[
            op("GET", "/shares?{query}"),
            op("GET", "/shares/detail?{query}"),
        ],
    ),
    rule(
        "share:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update a share.",
        &[op("PUT", "/shares/{share_id}")],
    ),
    rule(
        "share:set_public_share",
        "rule:context_is_admin",
        "Update a share to be visible across all projects in the cloud.",
        &[op("PUT", "/shares/{share_id}")],
    ),
    rule(
        "share:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share.",
        &[op("DELETE", "/shares/{share_id}")],
    ),
    rule(
        "share:soft_delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Soft Delete a share.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:restore",
        "(rule:context_is_admin) or (rule:project-member)",
        "Restore a share.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:force_delete",
        "rule:context_is_admin",
        "Force Delete a share.",
        &[op("DELETE", "/shares/{share_id}")],
    ),
    rule(
        "share:manage",
        "rule:context_is_admin",
        "Manage share.",
        &[op("POST", "/shares/manage")],
    ),
    rule(
        "share:unmanage",
        "rule:context_is_admin",
        "Unmanage share.",
        &[op("POST", "/shares/unmanage")],
    ),
    rule(
        "share:list_by_host",
        "rule:context_is_admin",
        "List share by host.",
        &[
            op("GET", "/shares?host={host}"),
            op("GET", "/shares/detail?host={host}"),
        ],
    ),
    rule(
        "share:list_by_share_server_id",
        "rule:context_is_admin",
        "List share by server id.",
        &[
            op("GET", "/shares?share_server_id={share_server_id}"),
            op("GET", "/shares/detail?share_server_id={share_server_id}"),
        ],
    ),
    rule(
        "share:access_get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share access rule (deprecated in API version 2.45).",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:access_get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List share access rules (deprecated in API version 2.45).",
        &[op("GET", "/shares/{share_id}/action")],
    ),
    rule(
        "share:extend",
        "(rule:context_is_admin) or (rule:project-member)",
        "Extend share.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:force_extend",
        "rule:context_is_admin",
        "Force extend share.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:extend_beyond_max_share_size_spec",
        "rule:context_is_admin",
        "Extend share beyond max share size.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:shrink",
        "(rule:context_is_admin) or (rule:project-member)",
        "Shrink share.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:migration_start",
        "rule:context_is_admin",
        "Migrate a share to the specified host.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:migration_complete",
        "rule:context_is_admin",
        "Invoke 2nd phase of share migration.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:migration_cancel",
        "rule:context_is_admin",
        "Attempt to cancel share migration.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:migration_get_progress",
        "rule:context_is_admin",
        "Retrieve share migration progress for a given share.",
        &[
            op("POST", "/shares/{share_id}/action"),
            op("GET", "/shares/{share_id}/migration-progress"),
        ],
    ),
    rule(
        "share:reset_task_state",
        "rule:context_is_admin",
        "Reset task state.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:reset_status",
        "rule:context_is_admin",
        "Reset status.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:revert_to_snapshot",
        "(rule:context_is_admin) or (rule:project-member)",
        "Revert a share to a snapshot.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:allow_access",
        "(rule:context_is_admin) or (rule:project-member)",
        "Add share access rule.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:deny_access",
        "(rule:context_is_admin) or (rule:project-member)",
        "Remove share access rule.",
        &[op("POST", "/shares/{share_id}/action")],
    ),
    rule(
        "share:update_share_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update share metadata.",
        &[
            op("PUT", "/shares/{share_id}/metadata"),
            op("POST", "/shares/{share_id}/metadata/{key}"),
            op("POST", "/shares/{share_id}/metadata"),
        ],
    ),
    rule(
        "share:delete_share_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share metadata.",
        &[op("DELETE", "/shares/{share_id}/metadata/{key}")],
    ),
    rule(
        "share:get_share_metadata",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share metadata.",
        &[
            op("GET", "/shares/{share_id}/metadata"),
            op("GET", "/shares/{share_id}/metadata/{key}"),
        ],
    ),
    rule(
        "share:list_shares_in_deferred_deletion_states",
        "rule:context_is_admin",
        "List (or get) shares whose deletion has been deferred",
        &[op("GET", "/v2/shares"), op("GET", "/shares/{share_id}")],
    ),
    rule(
        "share:list_all_projects",
        "rule:context_is_admin",
        "List share by all projects.",
        &[
            op("GET", "/shares?all_tenants=1"),
            op("GET", "/shares/detail?all_tenants=1"),
        ],
    ),
    rule(
        "share:create_snapshot",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create share snapshot.",
        &[op("POST", "/snapshots")],
    ),
    rule(
        "share:delete_snapshot",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share snapshot.",
        &[op("DELETE", "/snapshots/{snapshot_id}")],
    ),
    rule(
        "share:snapshot_update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update share snapshot.",
        &[op("PUT", "/snapshots/{snapshot_id}/action")],
    ),
    rule(
        "share:update_admin_only_metadata",
        "rule:context_is_admin",
        "Update metadata items that are considered \"admin only\" by the service.",
        &[op("PUT", "/shares/{share_id}/metadata")],
    ),
];

/// Export locations of share instances (`manila/policies/share_instance_export_location.py`); admin only.
pub const SHARE_INSTANCE_EXPORT_LOCATION: &[DefaultRule] = &[
    rule(
        "share_instance_export_location:index",
        "rule:context_is_admin",
        "Return data about the requested export location.",
        &[op(
            "POST",
            "/share_instances/{share_instance_id}/export_locations",
        )],
    ),
    rule(
        "share_instance_export_location:show",
        "rule:context_is_admin",
        "Return data about the requested export location.",
        &[op(
            "GET",
            "/share_instances/{share_instance_id}/export_locations/{export_location_id}",
        )],
    ),
];

/// Share types and their project access lists (`share_type:*`, `manila/policies/share_type.py`).
///
/// Manila has no separate `share_type_access:*` policies: type access is
/// governed by `share_type:list_project_access`, `:add_project_access` and
/// `:remove_project_access` here.
pub const SHARE_TYPE: &[DefaultRule] = &[
    rule(
        "share_type:create",
        "rule:context_is_admin",
        "Create share type.",
        &[op("POST", "/types")],
    ),
    rule(
        "share_type:update",
        "rule:context_is_admin",
        "Update share type.",
        &[op("PUT", "/types/{share_type_id}")],
    ),
    rule(
        "share_type:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share type.",
        &[op("GET", "/types/{share_type_id}")],
    ),
    rule(
        "share_type:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List share types.",
        &[op("GET", "/types?is_public=all")],
    ),
    rule(
        "share_type:default",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get default share type.",
        &[op("GET", "/types/default")],
    ),
    rule(
        "share_type:delete",
        "rule:context_is_admin",
        "Delete share type.",
        &[op("DELETE", "/types/{share_type_id}")],
    ),
    rule(
        "share_type:list_project_access",
        "rule:context_is_admin",
        "List share type project access.",
        &[op("GET", "/types/{share_type_id}")],
    ),
    rule(
        "share_type:add_project_access",
        "rule:context_is_admin",
        "Add share type to project.",
        &[op("POST", "/types/{share_type_id}/action")],
    ),
    rule(
        "share_type:remove_project_access",
        "rule:context_is_admin",
        "Remove share type from project.",
        &[op("POST", "/types/{share_type_id}/action")],
    ),
];

/// Share type extra specs (`share_types_extra_spec:*`, `manila/policies/share_types_extra_spec.py`); admin only.
pub const SHARE_TYPES_EXTRA_SPEC: &[DefaultRule] = &[
    rule(
        "share_types_extra_spec:create",
        "rule:context_is_admin",
        "Create share type extra spec.",
        &[op("POST", "/types/{share_type_id}/extra_specs")],
    ),
    rule(
        "share_types_extra_spec:show",
        "rule:context_is_admin",
        "Get share type extra specs of a given share type.",
        &[op("GET", "/types/{share_type_id}/extra_specs")],
    ),
    rule(
        "share_types_extra_spec:index",
        "rule:context_is_admin",
        "Get details of a share type extra spec.",
        &[op(
            "GET",
            "/types/{share_type_id}/extra_specs/{extra_spec_id}",
        )],
    ),
    rule(
        "share_types_extra_spec:update",
        "rule:context_is_admin",
        "Update share type extra spec.",
        &[op("PUT", "/types/{share_type_id}/extra_specs")],
    ),
    rule(
        "share_types_extra_spec:delete",
        "rule:context_is_admin",
        "Delete share type extra spec.",
        &[op("DELETE", "/types/{share_type_id}/extra_specs/{key}")],
    ),
];

/// Share snapshots (`share_snapshot:*`, `manila/policies/share_snapshot.py`).
pub const SHARE_SNAPSHOT: &[DefaultRule] = &[
    rule(
        "share_snapshot:get_snapshot",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share snapshot.",
        &[op("GET", "/snapshots/{snapshot_id}")],
    ),
    rule(
        "share_snapshot:get_all_snapshots",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share snapshots.",
        &[
            op("GET", "/snapshots?{query}"),
            op("GET", "/snapshots/detail?{query}"),
        ],
    ),
    rule(
        "share_snapshot:list_all_projects",
        "rule:context_is_admin",
        "List share snapshots by all projects.",
        &[
            op("GET", "/snapshots?all_tenants=1"),
            op("GET", "/snapshots/detail?all_tenants=1"),
        ],
    ),
    rule(
        "share_snapshot:force_delete",
        "rule:context_is_admin",
        "Force Delete a share snapshot.",
        &[op("DELETE", "/snapshots/{snapshot_id}")],
    ),
    rule(
        "share_snapshot:manage_snapshot",
        "rule:context_is_admin",
        "Manage share snapshot.",
        &[op("POST", "/snapshots/manage")],
    ),
    rule(
        "share_snapshot:unmanage_snapshot",
        "rule:context_is_admin",
        "Unmanage share snapshot.",
        &[op("POST", "/snapshots/{snapshot_id}/action")],
    ),
    rule(
        "share_snapshot:reset_status",
        "rule:context_is_admin",
        "Reset status.",
        &[op("POST", "/snapshots/{snapshot_id}/action")],
    ),
    rule(
        "share_snapshot:access_list",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List access rules of a share snapshot.",
        &[op("GET", "/snapshots/{snapshot_id}/access-list")],
    ),
    rule(
        "share_snapshot:allow_access",
        "(rule:context_is_admin) or (rule:project-member)",
        "Allow access to a share snapshot.",
        &[op("POST", "/snapshots/{snapshot_id}/action")],
    ),
    rule(
        "share_snapshot:deny_access",
        "(rule:context_is_admin) or (rule:project-member)",
        "Deny access to a share snapshot.",
        &[op("POST", "/snapshots/{snapshot_id}/action")],
    ),
    rule(
        "share_snapshot:update_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update snapshot metadata.",
        &[
            op("PUT", "/snapshots/{snapshot_id}/metadata"),
            op("POST", "/snapshots/{snapshot_id}/metadata/{key}"),
            op("POST", "/snapshots/{snapshot_id}/metadata"),
        ],
    ),
    rule(
        "share_snapshot:delete_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete snapshot metadata.",
        &[op("DELETE", "/snapshots/{snapshot_id}/metadata/{key}")],
    ),
    rule(
        "share_snapshot:get_metadata",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get snapshot metadata.",
        &[
            op("GET", "/snapshots/{snapshot_id}/metadata"),
            op("GET", "/snapshots/{snapshot_id}/metadata/{key}"),
        ],
    ),
    rule(
        "share_snapshot:list_snapshots_in_deferred_deletion_states",
        "rule:context_is_admin",
        "List (or get) snapshots whose deletion has been deferred",
        &[
            op("GET", "/v2/snapshots"),
            op("GET", "/snapshots/{snapshot_id}"),
        ],
    ),
];

/// Export locations of snapshots (`manila/policies/share_snapshot_export_location.py`).
pub const SHARE_SNAPSHOT_EXPORT_LOCATION: &[DefaultRule] = &[
    rule(
        "share_snapshot_export_location:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List export locations of a share snapshot.",
        &[op("GET", "/snapshots/{snapshot_id}/export-locations/")],
    ),
    rule(
        "share_snapshot_export_location:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a specified export location of a share snapshot.",
        &[op(
            "GET",
            "/snapshots/{snapshot_id}/export-locations/{export_location_id}",
        )],
    ),
];

/// Snapshot instances (`manila/policies/share_snapshot_instance.py`); admin only.
pub const SHARE_SNAPSHOT_INSTANCE: &[DefaultRule] = &[
    rule(
        "share_snapshot_instance:show",
        "rule:context_is_admin",
        "Get share snapshot instance.",
        &[op("GET", "/snapshot-instances/{snapshot_instance_id}")],
    ),
    rule(
        "share_snapshot_instance:index",
        "rule:context_is_admin",
        "Get all share snapshot instances.",
        &[op("GET", "/snapshot-instances?{query}")],
    ),
    rule(
        "share_snapshot_instance:detail",
        "rule:context_is_admin",
        "Get details of share snapshot instances.",
        &[op("GET", "/snapshot-instances/detail?{query}")],
    ),
    rule(
        "share_snapshot_instance:reset_status",
        "rule:context_is_admin",
        "Reset share snapshot instance's status.",
        &[op(
            "POST",
            "/snapshot-instances/{snapshot_instance_id}/action",
        )],
    ),
];

/// Export locations of snapshot instances (`manila/policies/share_snapshot_instance_export_location.py`); admin only.
pub const SHARE_SNAPSHOT_INSTANCE_EXPORT_LOCATION: &[DefaultRule] = &[
    rule(
        "share_snapshot_instance_export_location:index",
        "rule:context_is_admin",
        "List export locations of a share snapshot instance.",
        &[op(
            "GET",
            "/snapshot-instances/{snapshot_instance_id}/export-locations",
        )],
    ),
    rule(
        "share_snapshot_instance_export_location:show",
        "rule:context_is_admin",
        "Show details of a specified export location of a share snapshot instance.",
        &[op(
            "GET",
            "/snapshot-instances/{snapshot_instance_id}/export-locations/{export_location_id}",
        )],
    ),
];

/// Share servers (`manila/policies/share_server.py`); admin only.
pub const SHARE_SERVER: &[DefaultRule] = &[
    rule(
        "share_server:index",
        "rule:context_is_admin",
        "Get share servers.",
        &[op("GET", "/share-servers?{query}")],
    ),
    rule(
        "share_server:show",
        "rule:context_is_admin",
        "Show share server.",
        &[op("GET", "/share-servers/{server_id}")],
    ),
    rule(
        "share_server:details",
        "rule:context_is_admin",
        "Get share server details.",
        &[op("GET", "/share-servers/{server_id}/details")],
    ),
    rule(
        "share_server:delete",
        "rule:context_is_admin",
        "Delete share server.",
        &[op("DELETE", "/share-servers/{server_id}")],
    ),
    rule(
        "share_server:manage_share_server",
        "rule:context_is_admin",
        "Manage share server.",
        &[op("POST", "/share-servers/manage")],
    ),
    rule(
        "share_server:unmanage_share_server",
        "rule:context_is_admin",
        "Unmanage share server.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:reset_status",
        "rule:context_is_admin",
        "Reset the status of a share server.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:share_server_migration_start",
        "rule:context_is_admin",
        "Migrates a share server to the specified host.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:share_server_migration_check",
        "rule:context_is_admin",
        "Check if can migrates a share server to the specified host.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:share_server_migration_complete",
        "rule:context_is_admin",
        "Invokes the 2nd phase of share server migration.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:share_server_migration_cancel",
        "rule:context_is_admin",
        "Attempts to cancel share server migration.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:share_server_migration_get_progress",
        "rule:context_is_admin",
        "Retrieves the share server migration progress for a given share server.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
    rule(
        "share_server:share_server_reset_task_state",
        "rule:context_is_admin",
        "Resets task state.",
        &[op("POST", "/share-servers/{share_server_id}/action")],
    ),
];

/// Manila services (`manila/policies/service.py`); admin only.
pub const SERVICE: &[DefaultRule] = &[
    rule(
        "service:index",
        "rule:context_is_admin",
        "Return a list of all running services.",
        &[
            op("GET", "/os-services?{query}"),
            op("GET", "/services?{query}"),
        ],
    ),
    rule(
        "service:update",
        "rule:context_is_admin",
        "Enable/Disable scheduling for a service.",
        &[
            op("PUT", "/os-services/disable"),
            op("PUT", "/os-services/enable"),
            op("PUT", "/services/disable"),
            op("PUT", "/services/enable"),
        ],
    ),
    rule(
        "service:ensure_shares",
        "rule:context_is_admin",
        "Run ensure shares for a manila-share binary.",
        &[op("POST", "/services/ensure")],
    ),
];

/// Project and user quotas (`manila/policies/quota_set.py`).
pub const QUOTA_SET: &[DefaultRule] = &[
    rule(
        "quota_set:update",
        "rule:context_is_admin",
        "Update the quotas for a project/user and/or share type.",
        &[
            op("PUT", "/quota-sets/{project_id}"),
            op("PUT", "/quota-sets/{project_id}?user_id={user_id}"),
            op("PUT", "/quota-sets/{project_id}?share_type={share_type_id}"),
            op("PUT", "/os-quota-sets/{project_id}"),
            op("PUT", "/os-quota-sets/{project_id}?user_id={user_id}"),
        ],
    ),
    rule(
        "quota_set:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List the quotas for a project/user.",
        &[
            op("GET", "/quota-sets/{project_id}/defaults"),
            op("GET", "/os-quota-sets/{project_id}/defaults"),
        ],
    ),
    rule(
        "quota_set:delete",
        "rule:context_is_admin",
        "Delete quota for a project/user or project/share-type. The quota will revert back to default (Admin only).",
        &[
            op("DELETE", "/quota-sets/{project_id}"),
            op("DELETE", "/quota-sets/{project_id}?user_id={user_id}"),
            op(
                "DELETE",
                "/quota-sets/{project_id}?share_type={share_type_id}",
            ),
            op("DELETE", "/os-quota-sets/{project_id}"),
            op("DELETE", "/os-quota-sets/{project_id}?user_id={user_id}"),
        ],
    ),
];

/// Quota classes (`manila/policies/quota_class_set.py`).
pub const QUOTA_CLASS_SET: &[DefaultRule] = &[
    rule(
        "quota_class_set:update",
        "rule:context_is_admin",
        "Update quota class.",
        &[
            op("PUT", "/quota-class-sets/{class_name}"),
            op("PUT", "/os-quota-class-sets/{class_name}"),
        ],
    ),
    rule(
        "quota_class_set:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get quota class.",
        &[
            op("GET", "/quota-class-sets/{class_name}"),
            op("GET", "/os-quota-class-sets/{class_name}"),
        ],
    ),
];

/// Resource locks (`manila/policies/resource_lock.py`); these use the
/// service and owner-user personas.
pub const RESOURCE_LOCK: &[DefaultRule] = &[
    rule(
        "resource_lock:get",
        "(rule:admin_or_service_api) or (rule:project-reader)",
        "Get details of a given resource lock.",
        &[op("GET", "/resource-locks/{lock_id}")],
    ),
    rule(
        "resource_lock:get_all",
        "(rule:admin_or_service_api) or (rule:project-reader)",
        "Get all resource locks.",
        &[
            op("GET", "/resource-locks"),
            op("GET", "/resource-locks?{query}"),
        ],
    ),
    rule(
        "resource_lock:get_all_projects",
        "rule:admin_or_service_api",
        "Get resource locks from all project namespaces.",
        &[
            op("GET", "/resource-locks?all_projects=1"),
            op(
                "GET",
                "/resource-locks?all_projects=1&project_id={project_id}",
            ),
        ],
    ),
    rule(
        "resource_lock:create",
        "(rule:admin_or_service_api) or (rule:project-member)",
        "Create a resource lock.",
        &[op("POST", "/resource-locks")],
    ),
    rule(
        "resource_lock:update",
        "(rule:owner-user or rule:admin_or_service_api)",
        "Update a resource lock.",
        &[op("PUT", "/resource-locks/{lock_id}")],
    ),
    rule(
        "resource_lock:delete",
        "(rule:owner-user or rule:admin_or_service_api)",
        "Delete a resource lock.",
        &[op("DELETE", "/resource-locks/{lock_id}")],
    ),
    rule(
        "resource_lock:bypass_locked_show_action",
        "(rule:owner-user or rule:admin_or_service_api)",
        "Bypass a visibility lock placed in a resource.",
        &[
            op("GET", "/share-access-rules/{share_access_id}"),
            op(
                "GET",
                "/share-access-rules?share_id={share_id}&key1=value1&key2=value2",
            ),
        ],
    ),
];

/// Share group type specs (`manila/policies/share_group_types_spec.py`); admin only.
pub const SHARE_GROUP_TYPES_SPEC: &[DefaultRule] = &[
    rule(
        "share_group_types_spec:create",
        "rule:context_is_admin",
        "Create share group type specs.",
        &[op(
            "POST",
            "/share-group-types/{share_group_type_id}/group-specs",
        )],
    ),
    rule(
        "share_group_types_spec:index",
        "rule:context_is_admin",
        "Get share group type specs.",
        &[op(
            "GET",
            "/share-group-types/{share_group_type_id}/group-specs",
        )],
    ),
    rule(
        "share_group_types_spec:show",
        "rule:context_is_admin",
        "Get details of a share group type spec.",
        &[op(
            "GET",
            "/share-group-types/{share_group_type_id}/group-specs/{key}",
        )],
    ),
    rule(
        "share_group_types_spec:update",
        "rule:context_is_admin",
        "Update a share group type spec.",
        &[op(
            "PUT",
            "/share-group-types/{share_group_type_id}/group-specs/{key}",
        )],
    ),
    rule(
        "share_group_types_spec:delete",
        "rule:context_is_admin",
        "Delete a share group type spec.",
        &[op(
            "DELETE",
            "/share-group-types/{share_group_type_id}/group-specs/{key}",
        )],
    ),
];

/// Share group types (`manila/policies/share_group_type.py`).
pub const SHARE_GROUP_TYPE: &[DefaultRule] = &[
    rule(
        "share_group_type:create",
        "rule:context_is_admin",
        "Create a new share group type.",
        &[op("POST", "/share-group-types")],
    ),
    rule(
        "share_group_type:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get the list of share group types.",
        &[op("GET", "/share-group-types?is_public=all")],
    ),
    rule(
        "share_group_type:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details regarding the specified share group type.",
        &[op("GET", "/share-group-types/{share_group_type_id}")],
    ),
    rule(
        "share_group_type:default",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get the default share group type.",
        &[op("GET", "/share-group-types/default")],
    ),
    rule(
        "share_group_type:delete",
        "rule:context_is_admin",
        "Delete an existing group type.",
        &[op("DELETE", "/share-group-types/{share_group_type_id}")],
    ),
    rule(
        "share_group_type:list_project_access",
        "rule:context_is_admin",
        "Get project access by share group type.",
        &[op("GET", "/share-group-types/{share_group_type_id}/access")],
    ),
    rule(
        "share_group_type:add_project_access",
        "rule:context_is_admin",
        "Allow project to use the share group type.",
        &[op(
            "POST",
            "/share-group-types/{share_group_type_id}/action",
        )],
    ),
    rule(
        "share_group_type:remove_project_access",
        "rule:context_is_admin",
        "Deny project access to use the share group type.",
        &[op(
            "POST",
            "/share-group-types/{share_group_type_id}/action",
        )],
    ),
];

/// Share group snapshots (`manila/policies/share_group_snapshot.py`).
pub const SHARE_GROUP_SNAPSHOT: &[DefaultRule] = &[
    rule(
        "share_group_snapshot:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create a new share group snapshot.",
        &[op("POST", "/share-group-snapshots")],
    ),
    rule(
        "share_group_snapshot:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a share group snapshot.",
        &[op(
            "GET",
            "/share-group-snapshots/{share_group_snapshot_id}",
        )],
    ),
    rule(
        "share_group_snapshot:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share group snapshots.",
        &[
            op("GET", "/share-group-snapshots?{query}"),
            op("GET", "/share-group-snapshots/detail?{query}"),
        ],
    ),
    rule(
        "share_group_snapshot:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update a share group snapshot.",
        &[op(
            "PUT",
            "/share-group-snapshots/{share_group_snapshot_id}",
        )],
    ),
    rule(
        "share_group_snapshot:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete a share group snapshot.",
        &[op(
            "DELETE",
            "/share-group-snapshots/{share_group_snapshot_id}",
        )],
    ),
    rule(
        "share_group_snapshot:force_delete",
        "rule:context_is_admin",
        "Force delete a share group snapshot.",
        &[op(
            "POST",
            "/share-group-snapshots/{share_group_snapshot_id}/action",
        )],
    ),
    rule(
        "share_group_snapshot:reset_status",
        "rule:context_is_admin",
        "Reset a share group snapshot's status.",
        &[op(
            "POST",
            "/share-group-snapshots/{share_group_snapshot_id}/action",
        )],
    ),
];

/// Share groups (`manila/policies/share_group.py`).
pub const SHARE_GROUP: &[DefaultRule] = &[
    rule(
        "share_group:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create share group.",
        &[op("POST", "/share-groups")],
    ),
    rule(
        "share_group:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a share group.",
        &[op("GET", "/share-groups/{share_group_id}")],
    ),
    rule(
        "share_group:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share groups.",
        &[
            op("GET", "/share-groups?{query}"),
            op("GET", "/share-groups/detail?{query}"),
        ],
    ),
    rule(
        "share_group:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update share group.",
        &[op("PUT", "/share-groups/{share_group_id}")],
    ),
    rule(
        "share_group:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share group.",
        &[op("DELETE", "/share-groups/{share_group_id}")],
    ),
    rule(
        "share_group:force_delete",
        "rule:context_is_admin",
        "Force delete a share group.",
        &[op("POST", "/share-groups/{share_group_id}/action")],
    ),
    rule(
        "share_group:reset_status",
        "rule:context_is_admin",
        "Reset share group's status.",
        &[op("POST", "/share-groups/{share_group_id}/action")],
    ),
];

/// Share replicas (`share_replica:*`, `manila/policies/share_replica.py`).
pub const SHARE_REPLICA: &[DefaultRule] = &[
    rule(
        "share_replica:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create share replica.",
        &[op("POST", "/share-replicas")],
    ),
    rule(
        "share_replica:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share replicas.",
        &[
            op("GET", "/share-replicas"),
            op("GET", "/share-replicas/detail"),
            op("GET", "/share-replicas/detail?share_id={share_id}"),
        ],
    ),
    rule(
        "share_replica:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a share replica.",
        &[op("GET", "/share-replicas/{share_replica_id}")],
    ),
    rule(
        "share_replica:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete a share replica.",
        &[op("DELETE", "/share-replicas/{share_replica_id}")],
    ),
    rule(
        "share_replica:force_delete",
        "rule:context_is_admin",
        "Force delete a share replica.",
        &[op("POST", "/share-replicas/{share_replica_id}/action")],
    ),
    rule(
        "share_replica:promote",
        "(rule:context_is_admin) or (rule:project-member)",
        "Promote a non-active share replica to active.",
        &[op("POST", "/share-replicas/{share_replica_id}/action")],
    ),
    rule(
        "share_replica:resync",
        "rule:context_is_admin",
        "Resync a share replica that is out of sync.",
        &[op("POST", "/share-replicas/{share_replica_id}/action")],
    ),
    rule(
        "share_replica:reset_replica_state",
        "rule:context_is_admin",
        "Reset share replica's replica_state attribute.",
        &[op("POST", "/share-replicas/{share_replica_id}/action")],
    ),
    rule(
        "share_replica:reset_status",
        "rule:context_is_admin",
        "Reset share replica's status.",
        &[op("POST", "/share-replicas/{share_replica_id}/action")],
    ),
    rule(
        "share_replica:update_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update replica metadata.",
        &[
            op("PUT", "/share-replicas/{share_replica_id}/metadata"),
            op("POST", "/share-replicas/{share_replica_id}/metadata/{key}"),
            op("POST", "/share-replicas/{share_replica_id}/metadata"),
        ],
    ),
    rule(
        "share_replica:delete_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete replica metadata.",
        &[op(
            "DELETE",
            "/share-replicas/{share_replica_id}/metadata/{key}",
        )],
    ),
    rule(
        "share_replica:get_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Get replica metadata.",
        &[
            op("GET", "/share-replicas/{share_replica_id}/metadata"),
            op("GET", "/share-replicas/{share_replica_id}/metadata/{key}"),
        ],
    ),
];

/// Export locations of share replicas (`manila/policies/share_replica_export_location.py`).
pub const SHARE_REPLICA_EXPORT_LOCATION: &[DefaultRule] = &[
    rule(
        "share_replica_export_location:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all export locations of a given share replica.",
        &[op(
            "GET",
            "/share-replicas/{share_replica_id}/export-locations",
        )],
    ),
    rule(
        "share_replica_export_location:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details about the requested share replica export location.",
        &[op(
            "GET",
            "/share-replicas/{share_replica_id}/export-locations/{export_location_id}",
        )],
    ),
];

/// Share networks (`share_network:*`, `manila/policies/share_network.py`).
pub const SHARE_NETWORK: &[DefaultRule] = &[
    rule(
        "share_network:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create share network.",
        &[op("POST", "/share-networks")],
    ),
    rule(
        "share_network:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a share network.",
        &[op("GET", "/share-networks/{share_network_id}")],
    ),
    rule(
        "share_network:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share networks under a project.",
        &[op("GET", "/share-networks?{query}")],
    ),
    rule(
        "share_network:detail",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of share networks under a project.",
        &[op("GET", "/share-networks/detail?{query}")],
    ),
    rule(
        "share_network:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update a share network.",
        &[op("PUT", "/share-networks/{share_network_id}")],
    ),
    rule(
        "share_network:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete a share network.",
        &[op("DELETE", "/share-networks/{share_network_id}")],
    ),
    rule(
        "share_network:add_security_service",
        "(rule:context_is_admin) or (rule:project-member)",
        "Add security service to share network.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:add_security_service_check",
        "(rule:context_is_admin) or (rule:project-member)",
        "Check the feasibility of add security service to a share network.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:remove_security_service",
        "(rule:context_is_admin) or (rule:project-member)",
        "Remove security service from share network.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:update_security_service",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update security service from share network.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:update_security_service_check",
        "(rule:context_is_admin) or (rule:project-member)",
        "Check the feasibility of update a security service from share network.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:reset_status",
        "rule:context_is_admin",
        "Reset share network`s status.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:get_all_share_networks",
        "rule:context_is_admin",
        "Get share networks belonging to all projects.",
        &[
            op("GET", "/share-networks?all_tenants=1"),
            op("GET", "/share-networks/detail?all_tenants=1"),
        ],
    ),
    rule(
        "share_network:subnet_create_check",
        "(rule:context_is_admin) or (rule:project-member)",
        "Check the feasibility of create a new share network subnet for share network.",
        &[op("POST", "/share-networks/{share_network_id}/action")],
    ),
    rule(
        "share_network:show_network_details",
        "rule:context_is_admin",
        "Allow viewing network_type and segmentation_id of share networks and share network subnets. Also allows filtering share networks by these fields.",
        &[
            op("GET", "/share-networks/{share_network_id}"),
            op("GET", "/share-networks/detail"),
            op(
                "GET",
                "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}",
            ),
            op("GET", "/share-networks/{share_network_id}/subnets"),
        ],
    ),
];

/// Share network subnets (`manila/policies/share_network_subnet.py`).
pub const SHARE_NETWORK_SUBNET: &[DefaultRule] = &[
    rule(
        "share_network_subnet:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create a new share network subnet.",
        &[op("POST", "/share-networks/{share_network_id}/subnets")],
    ),
    rule(
        "share_network_subnet:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete a share network subnet.",
        &[op(
            "DELETE",
            "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}",
        )],
    ),
    rule(
        "share_network_subnet:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Shows a share network subnet.",
        &[op(
            "GET",
            "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}",
        )],
    ),
    rule(
        "share_network_subnet:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share network subnets.",
        &[op("GET", "/share-networks/{share_network_id}/subnets")],
    ),
    rule(
        "share_network_subnet:update_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update share network subnet metadata.",
        &[
            op(
                "PUT",
                "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}/metadata",
            ),
            op(
                "POST",
                "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}/metadata/{key}",
            ),
            op(
                "POST",
                "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}/metadata",
            ),
        ],
    ),
    rule(
        "share_network_subnet:delete_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share network subnet metadata.",
        &[op(
            "DELETE",
            "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}/metadata/{key}",
        )],
    ),
    rule(
        "share_network_subnet:get_metadata",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share network subnet metadata.",
        &[
            op(
                "GET",
                "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}/metadata",
            ),
            op(
                "GET",
                "/share-networks/{share_network_id}/subnets/{share_network_subnet_id}/metadata/{key}",
            ),
        ],
    ),
];

/// Security services (`manila/policies/security_service.py`).
pub const SECURITY_SERVICE: &[DefaultRule] = &[
    rule(
        "security_service:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create security service.",
        &[op("POST", "/security-services")],
    ),
    rule(
        "security_service:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a security service.",
        &[op("GET", "/security-services/{security_service_id}")],
    ),
    rule(
        "security_service:detail",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of all security services.",
        &[op("GET", "/security-services/detail?{query}")],
    ),
    rule(
        "security_service:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all security services under a project.",
        &[op("GET", "/security-services?{query}")],
    ),
    rule(
        "security_service:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update a security service.",
        &[op("PUT", "/security-services/{security_service_id}")],
    ),
    rule(
        "security_service:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete a security service.",
        &[op("DELETE", "/security-services/{security_service_id}")],
    ),
    rule(
        "security_service:get_all_security_services",
        "rule:context_is_admin",
        "Get security services of all projects.",
        &[
            op("GET", "/security-services?all_tenants=1"),
            op("GET", "/security-services/detail?all_tenants=1"),
        ],
    ),
];

/// Export locations of shares and their metadata (`manila/policies/share_export_location.py`).
pub const SHARE_EXPORT_LOCATION: &[DefaultRule] = &[
    rule(
        "share_export_location:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all export locations of a given share.",
        &[op("GET", "/shares/{share_id}/export_locations")],
    ),
    rule(
        "share_export_location:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details about the requested export location.",
        &[op(
            "GET",
            "/shares/{share_id}/export_locations/{export_location_id}",
        )],
    ),
    rule(
        "share_export_location:update_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update share export location metadata.",
        &[
            op(
                "PUT",
                "/shares/{share_id}/export_locations/{export_location_id}/metadata",
            ),
            op(
                "POST",
                "/shares/{share_id}/export_locations/{export_location_id}/metadata/{key}",
            ),
            op(
                "POST",
                "/shares/{share_id}/export_locations/{export_location_id}/metadata",
            ),
        ],
    ),
    rule(
        "share_export_location:delete_metadata",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share export location metadata",
        &[op(
            "DELETE",
            "/shares/{share_id}/export_locations/{export_location_id}/metadata/{key}",
        )],
    ),
    rule(
        "share_export_location:get_metadata",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share export location metadata",
        &[
            op(
                "GET",
                "/shares/{share_id}/export_locations/{export_location_id}/metadata",
            ),
            op(
                "GET",
                "/shares/{share_id}/export_locations/{export_location_id}/metadata/{key}",
            ),
        ],
    ),
    rule(
        "share_export_location:update_admin_only_metadata",
        "rule:context_is_admin",
        "Update metadata items that are considered \"admin only\" by the service.",
        &[op(
            "PUT",
            "/shares/{share_id}/export_locations/{export_location_id}/metadata",
        )],
    ),
];

/// Share instances (`manila/policies/share_instance.py`); admin only.
pub const SHARE_INSTANCE: &[DefaultRule] = &[
    rule(
        "share_instance:index",
        "rule:context_is_admin",
        "Get all share instances.",
        &[
            op("GET", "/share_instances"),
            op("GET", "/share_instances?{query}"),
        ],
    ),
    rule(
        "share_instance:show",
        "rule:context_is_admin",
        "Get details of a share instance.",
        &[op("GET", "/share_instances/{share_instance_id}")],
    ),
    rule(
        "share_instance:force_delete",
        "rule:context_is_admin",
        "Force delete a share instance.",
        &[op("POST", "/share_instances/{share_instance_id}/action")],
    ),
    rule(
        "share_instance:reset_status",
        "rule:context_is_admin",
        "Reset share instance's status.",
        &[op("POST", "/share_instances/{share_instance_id}/action")],
    ),
];

/// User messages (`message:*`, `manila/policies/message.py`).
pub const MESSAGE: &[DefaultRule] = &[
    rule(
        "message:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a given message.",
        &[op("GET", "/messages/{message_id}")],
    ),
    rule(
        "message:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all messages.",
        &[op("GET", "/messages"), op("GET", "/messages?{query}")],
    ),
    rule(
        "message:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete a message.",
        &[op("DELETE", "/messages/{message_id}")],
    ),
];

/// Access rules (`share_access_rule:*`, `manila/policies/share_access.py`).
pub const SHARE_ACCESS_RULE: &[DefaultRule] = &[
    rule(
        "share_access_rule:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get details of a share access rule.",
        &[op("GET", "/share-access-rules/{share_access_id}")],
    ),
    rule(
        "share_access_rule:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List access rules of a given share.",
        &[op(
            "GET",
            "/share-access-rules?share_id={share_id}&key1=value1&key2=value2",
        )],
    ),
    rule(
        "share_access_rule:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update access rules of a given share.",
        &[op("PUT", "/share-access-rules/{share_access_id}")],
    ),
];

/// Access rule metadata (`manila/policies/share_access_metadata.py`).
pub const SHARE_ACCESS_METADATA: &[DefaultRule] = &[
    rule(
        "share_access_metadata:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Set metadata for a share access rule.",
        &[op("PUT", "/share-access-rules/{share_access_id}/metadata")],
    ),
    rule(
        "share_access_metadata:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete metadata for a share access rule.",
        &[op(
            "DELETE",
            "/share-access-rules/{share_access_id}/metadata/{key}",
        )],
    ),
];

/// Share transfers between projects (`manila/policies/share_transfer.py`).
pub const SHARE_TRANSFER: &[DefaultRule] = &[
    rule(
        "share_transfer:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List share transfers.",
        &[
            op("GET", "/share-transfers"),
            op("GET", "/share-transfers/detail"),
        ],
    ),
    rule(
        "share_transfer:get_all_tenant",
        "rule:context_is_admin",
        "List share transfers with all tenants.",
        &[
            op("GET", "/share-transfers"),
            op("GET", "/share-transfers/detail"),
        ],
    ),
    rule(
        "share_transfer:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create a share transfer.",
        &[op("POST", "/share-transfers")],
    ),
    rule(
        "share_transfer:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Show one specified share transfer.",
        &[op("GET", "/share-transfers/{transfer_id}")],
    ),
    rule(
        "share_transfer:accept",
        "(rule:context_is_admin) or (rule:project-member)",
        "Accept a share transfer.",
        &[op("POST", "/share-transfers/{transfer_id}/accept")],
    ),
    rule(
        "share_transfer:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Delete share transfer.",
        &[op("DELETE", "/share-transfers/{transfer_id}")],
    ),
];

/// Share backups (`manila/policies/share_backup.py`).
pub const SHARE_BACKUP: &[DefaultRule] = &[
    rule(
        "share_backup:create",
        "(rule:context_is_admin) or (rule:project-member)",
        "Create share backup.",
        &[op("POST", "/share-backups")],
    ),
    rule(
        "share_backup:get",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get share backup.",
        &[op("GET", "/share-backups/{backup_id}")],
    ),
    rule(
        "share_backup:get_all",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get all share backups.",
        &[
            op("GET", "/share-backups"),
            op("GET", "/share-backups/detail"),
            op("GET", "/share-backups/detail?share_id=(share_id}"),
        ],
    ),
    rule(
        "share_backup:get_all_project",
        "rule:context_is_admin",
        "Get share backups of all projects.",
        &[
            op("GET", "/share-backups?all_tenants=1"),
            op("GET", "/share-backups/detail?all_tenants=1"),
        ],
    ),
    rule(
        "share_backup:restore",
        "(rule:context_is_admin) or (rule:project-member)",
        "Restore a share backup.",
        &[op("POST", "/share-backups/{backup_id}/action")],
    ),
    rule(
        "share_backup:reset_status",
        "rule:context_is_admin",
        "Reset status.",
        &[op("POST", "/share-backups/{backup_id}/action")],
    ),
    rule(
        "share_backup:update",
        "(rule:context_is_admin) or (rule:project-member)",
        "Update a share backup.",
        &[op("PUT", "/share-backups/{backup_id}")],
    ),
    rule(
        "share_backup:delete",
        "(rule:context_is_admin) or (rule:project-member)",
        "Force Delete a share backup.",
        &[op("DELETE", "/share-backups/{backup_id}")],
    ),
];

/// QoS types (`manila/policies/qos_type.py`).
pub const QOS_TYPE: &[DefaultRule] = &[
    rule(
        "qos_type:create",
        "rule:context_is_admin",
        "Create qos type.",
        &[op("POST", "/qos-types")],
    ),
    rule(
        "qos_type:update",
        "rule:context_is_admin",
        "Update qos type.",
        &[op("PUT", "/qos-types/{qos_type_id}")],
    ),
    rule(
        "qos_type:show",
        "(rule:context_is_admin) or (rule:project-reader)",
        "Get qos type.",
        &[op("GET", "/qos-types/{qos_type_id}")],
    ),
    rule(
        "qos_type:index",
        "(rule:context_is_admin) or (rule:project-reader)",
        "List qos types.",
        &[op("GET", "/qos-types"), op("GET", "/qos-types?{query}")],
    ),
    rule(
        "qos_type:delete",
        "rule:context_is_admin",
        "Delete qos type.",
        &[op("DELETE", "/qos-types/{qos_type_id}")],
    ),
];

/// QoS type specs (`manila/policies/qos_type_specs.py`); admin only.
pub const QOS_TYPE_SPECS: &[DefaultRule] = &[
    rule(
        "qos_type_specs:create",
        "rule:context_is_admin",
        "Create qos type spec.",
        &[op("POST", "/qos-types/{qos_type_id}/specs")],
    ),
    rule(
        "qos_type_specs:index",
        "rule:context_is_admin",
        "Get qos type specs of a given qos type.",
        &[op("GET", "/qos-types/{qos_type_id}/specs")],
    ),
    rule(
        "qos_type_specs:show",
        "rule:context_is_admin",
        "Get details of a qos type spec.",
        &[op("GET", "/qos-types/{qos_type_id}/specs/{key}")],
    ),
    rule(
        "qos_type_specs:update",
        "rule:context_is_admin",
        "Update qos type spec.",
        &[op("PUT", "/qos-types/{qos_type_id}/specs/{key}")],
    ),
    rule(
        "qos_type_specs:delete",
        "rule:context_is_admin",
        "Delete qos type spec.",
        &[op("DELETE", "/qos-types/{qos_type_id}/specs/{key}")],
    ),
];

/// Rules of shoal's own API extensions (no Manila counterpart), registered after
/// Manila's so they can be overridden in the same policy file.
pub const SHOAL_EXTENSIONS: &[DefaultRule] = &[rule(
    "share_replica:replication_history",
    "rule:context_is_admin",
    "Get the synchronisation history of a share replica (shoal extension).",
    &[op(
        "GET",
        "/share-replicas/{share_replica_id}/replication-history",
    )],
)];

/// Every shipped default, grouped by the Manila module it comes from, in the
/// order Manila registers them (`manila/policies/__init__.py`), followed by
/// [`SHOAL_EXTENSIONS`].
pub const MANILA_DEFAULTS: &[DefaultGroup] = &[
    DefaultGroup {
        module: "base",
        rules: BASE,
    },
    DefaultGroup {
        module: "availability_zone",
        rules: AVAILABILITY_ZONE,
    },
    DefaultGroup {
        module: "scheduler_stats",
        rules: SCHEDULER_STATS,
    },
    DefaultGroup {
        module: "shares",
        rules: SHARE,
    },
    DefaultGroup {
        module: "share_instance_export_location",
        rules: SHARE_INSTANCE_EXPORT_LOCATION,
    },
    DefaultGroup {
        module: "share_type",
        rules: SHARE_TYPE,
    },
    DefaultGroup {
        module: "share_types_extra_spec",
        rules: SHARE_TYPES_EXTRA_SPEC,
    },
    DefaultGroup {
        module: "share_snapshot",
        rules: SHARE_SNAPSHOT,
    },
    DefaultGroup {
        module: "share_snapshot_export_location",
        rules: SHARE_SNAPSHOT_EXPORT_LOCATION,
    },
    DefaultGroup {
        module: "share_snapshot_instance",
        rules: SHARE_SNAPSHOT_INSTANCE,
    },
    DefaultGroup {
        module: "share_snapshot_instance_export_location",
        rules: SHARE_SNAPSHOT_INSTANCE_EXPORT_LOCATION,
    },
    DefaultGroup {
        module: "share_server",
        rules: SHARE_SERVER,
    },
    DefaultGroup {
        module: "service",
        rules: SERVICE,
    },
    DefaultGroup {
        module: "quota_set",
        rules: QUOTA_SET,
    },
    DefaultGroup {
        module: "quota_class_set",
        rules: QUOTA_CLASS_SET,
    },
    DefaultGroup {
        module: "resource_lock",
        rules: RESOURCE_LOCK,
    },
    DefaultGroup {
        module: "share_group_types_spec",
        rules: SHARE_GROUP_TYPES_SPEC,
    },
    DefaultGroup {
        module: "share_group_type",
        rules: SHARE_GROUP_TYPE,
    },
    DefaultGroup {
        module: "share_group_snapshot",
        rules: SHARE_GROUP_SNAPSHOT,
    },
    DefaultGroup {
        module: "share_group",
        rules: SHARE_GROUP,
    },
    DefaultGroup {
        module: "share_replica",
        rules: SHARE_REPLICA,
    },
    DefaultGroup {
        module: "share_replica_export_location",
        rules: SHARE_REPLICA_EXPORT_LOCATION,
    },
    DefaultGroup {
        module: "share_network",
        rules: SHARE_NETWORK,
    },
    DefaultGroup {
        module: "share_network_subnet",
        rules: SHARE_NETWORK_SUBNET,
    },
    DefaultGroup {
        module: "security_service",
        rules: SECURITY_SERVICE,
    },
    DefaultGroup {
        module: "share_export_location",
        rules: SHARE_EXPORT_LOCATION,
    },
    DefaultGroup {
        module: "share_instance",
        rules: SHARE_INSTANCE,
    },
    DefaultGroup {
        module: "message",
        rules: MESSAGE,
    },
    DefaultGroup {
        module: "share_access",
        rules: SHARE_ACCESS_RULE,
    },
    DefaultGroup {
        module: "share_access_metadata",
        rules: SHARE_ACCESS_METADATA,
    },
    DefaultGroup {
        module: "share_transfer",
        rules: SHARE_TRANSFER,
    },
    DefaultGroup {
        module: "share_backup",
        rules: SHARE_BACKUP,
    },
    DefaultGroup {
        module: "qos_type",
        rules: QOS_TYPE,
    },
    DefaultGroup {
        module: "qos_type_specs",
        rules: QOS_TYPE_SPECS,
    },
    DefaultGroup {
        module: "shoal",
        rules: SHOAL_EXTENSIONS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credentials, Enforcer, Rule, Target, parse};
    use std::collections::HashSet;

    #[test]
    fn every_default_parses_and_round_trips() {
        let mut count = 0;
        for default in all() {
            let rule = parse(default.check_str).unwrap_or_else(|e| panic!("{}: {e}", default.name));
            let reparsed = parse(&rule.to_string())
                .unwrap_or_else(|e| panic!("{} printed: {e}", default.name));
            assert_eq!(rule, reparsed, "{}", default.name);
            count += 1;
        }
        assert_eq!(
            count,
            230 + SHOAL_EXTENSIONS.len(),
            "Manila registers 230 rules at the pinned commit, plus shoal's extensions"
        );
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for default in all() {
            assert!(seen.insert(default.name), "duplicate {}", default.name);
            assert!(!default.name.is_empty());
            assert!(
                !default.name.chars().any(char::is_whitespace),
                "{}",
                default.name
            );
            assert!(!default.description.is_empty(), "{}", default.name);
            for operation in default.operations {
                assert!(
                    matches!(operation.method, "GET" | "POST" | "PUT" | "DELETE" | "HEAD"),
                    "{}: {}",
                    default.name,
                    operation.method
                );
                assert!(operation.path.starts_with('/'), "{}", default.name);
            }
        }
        assert_eq!(
            MANILA_DEFAULTS.len(),
            34 + 1,
            "one group per manila/policies module, plus shoal's extensions"
        );
        for group in MANILA_DEFAULTS {
            assert!(!group.rules.is_empty(), "{}", group.module);
        }
    }

    #[test]
    fn every_reference_resolves_and_nothing_loops() {
        let enforcer = Enforcer::with_manila_defaults();
        assert_eq!(enforcer.validate(), vec![]);
        for default in all() {
            for name in parse(default.check_str)
                .map(|r| {
                    r.references()
                        .into_iter()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
            {
                assert!(find(&name).is_some(), "{} refers to {name}", default.name);
            }
        }
    }

    #[test]
    fn api_rules_use_only_manila_personas() {
        let personas = [
            ADMIN,
            ADMIN_OR_SERVICE,
            ADMIN_OR_PROJECT_MEMBER,
            ADMIN_OR_PROJECT_READER,
            ADMIN_OR_SERVICE_OR_PROJECT_READER,
            ADMIN_OR_SERVICE_OR_PROJECT_MEMBER,
            ADMIN_OR_SERVICE_OR_OWNER_USER,
        ];
        for group in MANILA_DEFAULTS.iter().filter(|g| g.module != "base") {
            for default in group.rules {
                assert!(
                    personas.contains(&default.check_str),
                    "{} uses an unexpected check string {:?}",
                    default.name,
                    default.check_str
                );
                let prefix = default.name.split(':').next().unwrap_or_default();
                assert!(!prefix.is_empty(), "{}", default.name);
            }
        }
        for persona in personas
            .iter()
            .chain([&PROJECT_MEMBER, &PROJECT_READER, &OWNER_USER])
        {
            assert!(parse(persona).is_ok(), "{persona}");
        }
    }

    #[test]
    fn base_rules_match_manila() {
        let expect = [
            ("project-admin", "role:admin and project_id:%(project_id)s"),
            (
                "project-member",
                "role:member and project_id:%(project_id)s",
            ),
            (
                "project-reader",
                "role:reader and project_id:%(project_id)s",
            ),
            (
                "owner-user",
                "user_id:%(user_id)s and project_id:%(project_id)s",
            ),
            ("admin_or_service_api", "role:admin or role:service"),
            ("context_is_admin", "role:admin"),
            (
                "context_is_host_admin",
                "role:admin and project_id:%(project_id)s",
            ),
            (
                "admin_or_owner",
                "is_admin:True or project_id:%(project_id)s",
            ),
            (
                "admin_or_owner_user",
                "is_admin:True or project_id:%(project_id)s and user_id:%(user_id)s",
            ),
            ("default", "rule:admin_or_owner"),
            ("admin_api", "is_admin:True"),
        ];
        let got: Vec<(&str, &str)> = BASE.iter().map(|r| (r.name, r.check_str)).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn required_rule_families_are_present() {
        let required = [
            "share_type:create",
            "share_type:index",
            "share_type:show",
            "share_type:default",
            "share_type:update",
            "share_type:delete",
            "share_type:list_project_access",
            "share_type:add_project_access",
            "share_type:remove_project_access",
            "share_types_extra_spec:create",
            "share_types_extra_spec:show",
            "share_types_extra_spec:index",
            "share_types_extra_spec:update",
            "share_types_extra_spec:delete",
            "availability_zone:index",
            "service:index",
            "service:update",
            "scheduler_stats:pools:index",
            "scheduler_stats:pools:detail",
            "quota_set:update",
            "quota_set:show",
            "quota_set:delete",
            "quota_class_set:update",
            "quota_class_set:show",
            "share:create",
            "share:get",
            "share:get_all",
            "share:update",
            "share:delete",
            "share:force_delete",
            "share:reset_status",
            "share:extend",
            "share:shrink",
            "share:allow_access",
            "share:deny_access",
            "share:access_get",
            "share:access_get_all",
            "share:update_share_metadata",
            "share:delete_share_metadata",
            "share:get_share_metadata",
            "share:create_public_share",
            "share:set_public_share",
            "share_instance:index",
            "share_instance:show",
            "share_instance:force_delete",
            "share_instance:reset_status",
            "share_export_location:index",
            "share_export_location:show",
            "share_access_rule:get",
            "share_access_rule:index",
            "share_access_metadata:update",
            "share_access_metadata:delete",
            "share_instance_export_location:index",
            "share_instance_export_location:show",
            "message:get",
            "message:get_all",
            "message:delete",
            "share_network:create",
            "share_network:show",
            "share_network:index",
            "share_network:detail",
            "share_network:update",
            "share_network:delete",
            "share_snapshot:get_snapshot",
            "share_snapshot:get_all_snapshots",
            "share_snapshot:force_delete",
            "share_snapshot:reset_status",
            "share:create_snapshot",
            "share:delete_snapshot",
            "share:snapshot_update",
        ];
        for name in required {
            assert!(find(name).is_some(), "missing {name}");
        }
    }

    /// The replica table of the shoal spec, which must agree with Manila's source.
    #[test]
    fn replica_rules_match_the_spec() {
        let member = ADMIN_OR_PROJECT_MEMBER;
        let reader = ADMIN_OR_PROJECT_READER;
        let table = [
            ("share_replica:create", member),
            ("share_replica:get_all", reader),
            ("share_replica:show", reader),
            ("share_replica:delete", member),
            ("share_replica:promote", member),
            ("share_replica:resync", ADMIN),
            ("share_replica:reset_status", ADMIN),
            ("share_replica:reset_replica_state", ADMIN),
            ("share_replica:force_delete", ADMIN),
            ("share_replica:get_metadata", member),
            ("share_replica:update_metadata", member),
            ("share_replica:delete_metadata", member),
            ("share_replica_export_location:index", reader),
            ("share_replica_export_location:show", reader),
        ];
        for (name, check_str) in table {
            let got = find(name).map(|r| r.check_str);
            assert_eq!(got, Some(check_str), "{name}");
        }
        let registered = SHARE_REPLICA.len() + SHARE_REPLICA_EXPORT_LOCATION.len();
        assert_eq!(registered, table.len(), "no replica rules beyond the spec");
    }

    fn creds(project: &str, roles: &[&str]) -> Credentials {
        Credentials {
            user_id: format!("user-{project}"),
            project_id: project.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            is_admin: roles.contains(&"admin"),
        }
    }

    /// Every API default, enforced for each persona on its own and a foreign project,
    /// must grant exactly what its persona promises. Keystone's implied roles give a
    /// member the reader role too, so the member persona carries both.
    #[test]
    fn persona_matrix_over_every_api_default() {
        let enforcer = Enforcer::with_manila_defaults();
        let own = Target::from([
            ("project_id".to_owned(), "p1".to_owned()),
            ("user_id".to_owned(), "user-p1".to_owned()),
        ]);
        let foreign = Target::from([
            ("project_id".to_owned(), "p2".to_owned()),
            ("user_id".to_owned(), "user-p2".to_owned()),
        ]);
        let admin = creds("admin-project", &["admin", "member", "reader"]);
        let service = creds("service-project", &["service"]);
        let member = creds("p1", &["member", "reader"]);
        let reader = creds("p1", &["reader"]);
        let no_roles = creds("p1", &[]);

        let mut checked = 0;
        for group in MANILA_DEFAULTS.iter().filter(|g| g.module != "base") {
            for default in group.rules {
                let name = default.name;
                let allowed =
                    |target: &Target, who: &Credentials| enforcer.enforce(name, target, who);
                // Expected for: a service user, a member and a reader of the target's
                // project, and the user owning the target. Admins always pass; nobody
                // passes on another project's resource.
                let (svc, mem, rdr, owner) = match default.check_str {
                    ADMIN => (false, false, false, false),
                    ADMIN_OR_SERVICE => (true, false, false, false),
                    ADMIN_OR_PROJECT_MEMBER => (false, true, false, false),
                    ADMIN_OR_PROJECT_READER => (false, true, true, false),
                    ADMIN_OR_SERVICE_OR_PROJECT_MEMBER => (true, true, false, false),
                    ADMIN_OR_SERVICE_OR_PROJECT_READER => (true, true, true, false),
                    ADMIN_OR_SERVICE_OR_OWNER_USER => (true, false, false, true),
                    other => panic!("{name}: unclassified {other:?}"),
                };
                for target in [&own, &foreign] {
                    assert!(allowed(target, &admin), "{name}: admin");
                    assert_eq!(allowed(target, &service), svc, "{name}: service");
                }
                // The owner-user persona is about the user, not the role.
                assert_eq!(allowed(&own, &no_roles), owner, "{name}: no roles");
                assert!(
                    !allowed(&foreign, &no_roles),
                    "{name}: no roles, other project"
                );
                assert_eq!(allowed(&own, &member), mem || owner, "{name}: member");
                assert_eq!(allowed(&own, &reader), rdr || owner, "{name}: reader");
                assert!(!allowed(&foreign, &member), "{name}: member, other project");
                assert!(!allowed(&foreign, &reader), "{name}: reader, other project");
                checked += 1;
            }
        }
        assert_eq!(checked, 230 + SHOAL_EXTENSIONS.len() - BASE.len());
    }

    #[test]
    fn legacy_base_rules_use_is_admin() {
        let enforcer = Enforcer::with_manila_defaults();
        let own = Target::from([("project_id".to_owned(), "p1".to_owned())]);
        let foreign = Target::from([("project_id".to_owned(), "p2".to_owned())]);
        let flagged = Credentials {
            is_admin: true,
            ..creds("p9", &[])
        };
        let owner = creds("p1", &[]);
        for name in ["default", "admin_or_owner", "admin_api"] {
            assert!(enforcer.enforce(name, &foreign, &flagged), "{name}");
        }
        assert!(enforcer.enforce("default", &own, &owner));
        assert!(!enforcer.enforce("default", &foreign, &owner));
        assert!(!enforcer.enforce("admin_api", &own, &owner));
        // context_is_admin is about the role, not the flag.
        assert!(!enforcer.enforce("context_is_admin", &own, &flagged));
        assert!(matches!(enforcer.rule("default"), Some(Rule::Rule(n)) if n == "admin_or_owner"));
    }
}
