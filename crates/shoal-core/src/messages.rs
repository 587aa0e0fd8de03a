//! User messages (Manila's `manila/message/`): short records that explain to a project why
//! asynchronous work on one of its resources failed (`GET /v2/messages`, ≥2.37).
//!
//! What is persisted: one [`MessageRow`] per event, with Manila's action and detail *ids*
//! only. Derived, never stored: the human text `user_message` (`"<action>: <detail>"`),
//! rebuilt from [`ACTIONS`] and [`DETAILS`] when a message is shown, so a wording fix
//! applies to old messages too. A message lives [`MESSAGE_TTL_DEFAULT`] (Manila's
//! `message_ttl`, 30 days); expired messages are hidden from every read and removed when
//! listed, so no separate reaper is needed for correctness.
//!
//! Visibility: a non-admin sees only its own project's messages (Manila's
//! `project_only="yes"` queries); an admin sees every project's. A message of another
//! project is "not found", never "forbidden".

use std::time::Duration;

use chrono::{DateTime, Utc};
use shoal_store::{MessageRow, StoreError};
use uuid::Uuid;

use crate::{Core, CoreError, CoreResult};

/// How long a message lives (Manila's `message_ttl` default, 2592000 s = 30 days).
pub const MESSAGE_TTL_DEFAULT: Duration = Duration::from_secs(2_592_000);

/// Resource type of a share.
pub const RESOURCE_SHARE: &str = "SHARE";
/// Resource type of a share replica (a secondary instance).
pub const RESOURCE_SHARE_REPLICA: &str = "SHARE_REPLICA";
/// Resource type of a share group.
pub const RESOURCE_SHARE_GROUP: &str = "SHARE_GROUP";
/// Resource type of a share snapshot.
pub const RESOURCE_SHARE_SNAPSHOT: &str = "SHARE_SNAPSHOT";
/// Resource type of a security service.
pub const RESOURCE_SECURITY_SERVICE: &str = "SECURITY_SERVICE";
/// Resource type of a share network subnet.
pub const RESOURCE_SHARE_NETWORK_SUBNET: &str = "SHARE_NETWORK_SUBNET";

/// Level of every message shoal records (Manila only ever uses `ERROR`).
pub const LEVEL_ERROR: &str = "ERROR";

/// Action `001`: the scheduler could not place the resource.
pub const ACTION_ALLOCATE_HOST: &str = "001";
/// Action `002`: creating on the back end.
pub const ACTION_CREATE: &str = "002";
/// Action `003`: removing access rules (e.g. before deleting a replica).
pub const ACTION_DELETE_ACCESS_RULES: &str = "003";
/// Action `004`: promoting a replica.
pub const ACTION_PROMOTE: &str = "004";
/// Action `005`: updating (e.g. the periodic replica refresh).
pub const ACTION_UPDATE: &str = "005";
/// Action `006`: reverting to a snapshot.
pub const ACTION_REVERT_TO_SNAPSHOT: &str = "006";
/// Action `007`: deleting on the back end.
pub const ACTION_DELETE: &str = "007";
/// Action `008`: extending.
pub const ACTION_EXTEND: &str = "008";
/// Action `009`: shrinking.
pub const ACTION_SHRINK: &str = "009";
/// Action `010`: applying access rule changes.
pub const ACTION_UPDATE_ACCESS_RULES: &str = "010";
/// Action `011`: adding or updating a security service.
pub const ACTION_ADD_UPDATE_SECURITY_SERVICE: &str = "011";
/// Action `026`: accepting a transfer.
pub const ACTION_TRANSFER_ACCEPT: &str = "026";
/// Action `027`: updating metadata.
pub const ACTION_UPDATE_METADATA: &str = "027";
/// Action `028`: restoring a backup.
pub const ACTION_RESTORE_BACKUP: &str = "028";

/// Manila's action ids and texts (`message_field.Action`).
pub const ACTIONS: &[(&str, &str)] = &[
    (ACTION_ALLOCATE_HOST, "allocate host"),
    (ACTION_CREATE, "create"),
    (ACTION_DELETE_ACCESS_RULES, "delete access rules"),
    (ACTION_PROMOTE, "promote"),
    (ACTION_UPDATE, "update"),
    (ACTION_REVERT_TO_SNAPSHOT, "revert to snapshot"),
    (ACTION_DELETE, "delete"),
    (ACTION_EXTEND, "extend"),
    (ACTION_SHRINK, "shrink"),
    (ACTION_UPDATE_ACCESS_RULES, "update access rules"),
    (
        ACTION_ADD_UPDATE_SECURITY_SERVICE,
        "add or update security service",
    ),
    (ACTION_TRANSFER_ACCEPT, "transfer accept"),
    (ACTION_UPDATE_METADATA, "update_metadata"),
    (ACTION_RESTORE_BACKUP, "restore share backup"),
];

/// Detail `001`: an error nobody classified.
pub const DETAIL_UNKNOWN_ERROR: &str = "001";
/// An unexpected back-end failure; Manila has no finer detail for it, so it is `001`.
pub const DETAIL_UNEXPECTED: &str = DETAIL_UNKNOWN_ERROR;
/// Detail `002`: no pool could take the request.
pub const DETAIL_NO_VALID_HOST: &str = "002";
/// Detail `003`: a share network was given to a driver that does not use one.
pub const DETAIL_UNEXPECTED_NETWORK: &str = "003";
/// Detail `004`: no share server could be found or made.
pub const DETAIL_NO_SHARE_SERVER: &str = "004";
/// Detail `005`: a new replica needs an available active replica.
pub const DETAIL_NO_ACTIVE_AVAILABLE_REPLICA: &str = "005";
/// Detail `006`: the share has no active replica.
pub const DETAIL_NO_ACTIVE_REPLICA: &str = "006";
/// Detail `007`: the AvailabilityZone filter eliminated the last pool.
pub const DETAIL_FILTER_AVAILABILITY: &str = "007";
/// Detail `008`: the Capabilities filter eliminated the last pool.
pub const DETAIL_FILTER_CAPABILITIES: &str = "008";
/// Detail `009`: the Capacity filter eliminated the last pool.
pub const DETAIL_FILTER_CAPACITY: &str = "009";
/// Detail `010`: the Driver filter eliminated the last pool.
pub const DETAIL_FILTER_DRIVER: &str = "010";
/// Detail `011`: the IgnoreAttemptedHosts filter eliminated the last pool.
pub const DETAIL_FILTER_IGNORE: &str = "011";
/// Detail `012`: the Json filter eliminated the last pool.
pub const DETAIL_FILTER_JSON: &str = "012";
/// Detail `013`: the Retry filter eliminated the last pool.
pub const DETAIL_FILTER_RETRY: &str = "013";
/// Detail `014`: the ShareReplication filter eliminated the last pool.
pub const DETAIL_FILTER_REPLICATION: &str = "014";
/// Detail `015`: the driver failed to extend.
pub const DETAIL_DRIVER_FAILED_EXTEND: &str = "015";
/// Detail `016`: the CreateFromSnapshot filter eliminated the last pool.
pub const DETAIL_FILTER_CREATE_FROM_SNAPSHOT: &str = "016";
/// Detail `017`: the driver failed to create from a snapshot.
pub const DETAIL_DRIVER_FAILED_CREATING_FROM_SNAP: &str = "017";
/// Detail `018`: the driver refused to shrink below the used space.
pub const DETAIL_DRIVER_REFUSED_SHRINK: &str = "018";
/// Detail `019`: the driver cannot shrink.
pub const DETAIL_DRIVER_FAILED_SHRINK: &str = "019";
/// Detail `020`: the client id of an access rule is forbidden.
pub const DETAIL_FORBIDDEN_CLIENT_ACCESS: &str = "020";
/// Detail `021`: the access level or type of a rule is unsupported.
pub const DETAIL_UNSUPPORTED_CLIENT_ACCESS: &str = "021";

/// Detail `901` (shoal's own): the ReplicationPeer filter eliminated the last pool.
pub const DETAIL_FILTER_REPLICATION_PEER: &str = "901";
/// Detail `902` (shoal's own): the new replica's node could not read the active's data.
pub const DETAIL_REPLICA_SOURCE_UNAVAILABLE: &str = "902";

/// Text of [`DETAIL_UNKNOWN_ERROR`], also used for unknown detail ids.
const UNKNOWN_ERROR_TEXT: &str = "An unknown error occurred.";

/// Manila's detail ids and texts (`message_field.Detail`).
pub const DETAILS: &[(&str, &str)] = &[
    (DETAIL_UNKNOWN_ERROR, UNKNOWN_ERROR_TEXT),
    (
        DETAIL_NO_VALID_HOST,
        "No storage could be allocated for this share request. Trying again with a different size or share type may succeed.",
    ),
    (
        DETAIL_UNEXPECTED_NETWORK,
        "Driver does not expect share-network to be provided with current configuration.",
    ),
    (
        DETAIL_NO_SHARE_SERVER,
        "Could not find an existing share server or allocate one on the share network provided. You may use a different share network, or verify the network details in the share network and retry your request. If this doesn't work, contact your administrator to troubleshoot issues with your network.",
    ),
    (
        DETAIL_NO_ACTIVE_AVAILABLE_REPLICA,
        "An 'active' replica must exist in 'available' state to create a new replica for share.",
    ),
    (
        DETAIL_NO_ACTIVE_REPLICA,
        "Share has no replica with 'replica_state' set to 'active'.",
    ),
    (
        DETAIL_FILTER_AVAILABILITY,
        "No storage could be allocated for this share request, AvailabilityZone filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_CAPABILITIES,
        "No storage could be allocated for this share request, Capabilities filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_CAPACITY,
        "No storage could be allocated for this share request, Capacity filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_DRIVER,
        "No storage could be allocated for this share request, Driver filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_IGNORE,
        "No storage could be allocated for this share request, IgnoreAttemptedHosts filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_JSON,
        "No storage could be allocated for this share request, Json filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_RETRY,
        "No storage could be allocated for this share request, Retry filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_REPLICATION,
        "No storage could be allocated for this share request, ShareReplication filter didn't succeed.",
    ),
    (
        DETAIL_FILTER_REPLICATION_PEER,
        "No storage could be allocated for this share replica: the node of the active replica serves no replication endpoint, so only its own pools could copy it, and none of them passed the filters.",
    ),
    (
        DETAIL_REPLICA_SOURCE_UNAVAILABLE,
        "The replica could not copy the active replica's data: the node of the active replica is unreachable or refused the replication request.",
    ),
    (
        DETAIL_DRIVER_FAILED_EXTEND,
        "Share Driver failed to extend share, The share status has been set to extending_error. This action cannot be re-attempted until the status has been rectified. Contact your administrator to determine the cause of this failure.",
    ),
    (
        DETAIL_FILTER_CREATE_FROM_SNAPSHOT,
        "No storage could be allocated for this share request, CreateFromSnapshot filter didn't succeed.",
    ),
    (
        DETAIL_DRIVER_FAILED_CREATING_FROM_SNAP,
        "Share Driver has failed to create the share from snapshot. This operation can be re-attempted by creating a new share. Contact your administrator to determine the cause of this failure.",
    ),
    (
        DETAIL_DRIVER_REFUSED_SHRINK,
        "Share Driver refused to shrink the share. The size to be shrunk is smaller than the current used space. The share status has been set to available. Please select a size greater than the current used space.",
    ),
    (
        DETAIL_DRIVER_FAILED_SHRINK,
        "Share Driver does not support shrinking shares. Shrinking share operation failed.",
    ),
    (
        DETAIL_FORBIDDEN_CLIENT_ACCESS,
        "Failed to grant access to client. The client ID used may be forbidden. You may try again with a different client identifier.",
    ),
    (
        DETAIL_UNSUPPORTED_CLIENT_ACCESS,
        "Failed to grant access to client. The access level or type may be unsupported. You may try again with a different access level or access type.",
    ),
    (
        "022",
        "Share driver has failed to setup one or more security services that are associated with the used share network. The security service may be unsupported or the provided parameters are invalid. You may try again with a different set of configurations.",
    ),
    (
        "023",
        "Share Driver failed to create share due to a security service authentication issue. The security service user has either insufficient privileges or wrong credentials. Please check your user, password, ou and domain.",
    ),
    (
        "024",
        "No default share type has been made available. You must specify a share type for creating shares.",
    ),
    (
        "025",
        "Share Driver failed to create share because a security service has not been added to the share network used. Please add a security service to the share network.",
    ),
    (
        "026",
        "Share transfer cannot be accepted without clearing access rules.",
    ),
    (
        "027",
        "Failed to create a new network port on the share network subnet. The limit of the number of ports has been exceeded. You may increase the network port quotas or free up some ports and retry. If this doesn't work, contact your administrator to troubleshoot issues with your network.",
    ),
    (
        "028",
        "No storage could be allocated for this share request. Share back end services are not ready yet. Contact your administrator in case retrying does not help.",
    ),
    (
        "029",
        "Metadata passed to share driver successfully performed required operation.",
    ),
    (
        "030",
        "Metadata passed to share driver failed to perform required operation.",
    ),
    (
        "031",
        "Metadata delete operation includes driver updatable metadata, and it is not passed to share driver to perform required operation.",
    ),
    (
        "032",
        "Cannot restore a given backup to a target share, not supported by share driver.",
    ),
    (
        "033",
        "Share Driver failed to create share server on share network due no more free IP addresses in the neutron subnet.You may free some IP addresses in the subnet or create a new subnet/share network. If this doesn't work, contact your administrator to troubleshoot issues with your network.",
    ),
    (
        "034",
        "Share driver has failed to create share replica because of unsupported configuration options. Please try again with a different configuration.",
    ),
];

/// Text of an action id, `unknown action` when unknown (`translate_action`).
pub fn translate_action(action_id: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|(id, _)| *id == action_id)
        .map_or("unknown action", |(_, text)| text)
}

/// Text of a detail id, the unknown-error text when unknown (`translate_detail`).
pub fn translate_detail(detail_id: &str) -> &'static str {
    DETAILS
        .iter()
        .find(|(id, _)| *id == detail_id)
        .map_or(UNKNOWN_ERROR_TEXT, |(_, text)| text)
}

/// The `user_message` of a view: `"<action text>: <detail text>"`.
pub fn user_message(action_id: &str, detail_id: &str) -> String {
    format!(
        "{}: {}",
        translate_action(action_id),
        translate_detail(detail_id)
    )
}

/// A detail id as stored: known ids are kept, anything else becomes `001`
/// (`translate_detail_id`).
fn known_detail_id(detail_id: &str) -> &str {
    if DETAILS.iter().any(|(id, _)| *id == detail_id) {
        detail_id
    } else {
        DETAIL_UNKNOWN_ERROR
    }
}

/// Records a user message for `project_id` about `resource_type`/`resource_id`, expiring
/// after [`MESSAGE_TTL_DEFAULT`] (Manila's `message_api.create`, called by the workers).
///
/// As in Manila, failing to store a message never fails the work that reported it: the
/// error is logged and `Ok(())` returned, so an operation is not retried (and its message
/// duplicated) because of the message alone.
pub async fn record(
    core: &Core,
    project_id: &str,
    resource_type: &str,
    resource_id: &str,
    action_id: &str,
    detail_id: &str,
    level: &str,
) -> CoreResult<()> {
    let now = core.now();
    let ttl = chrono::Duration::from_std(MESSAGE_TTL_DEFAULT).unwrap_or(chrono::Duration::MAX);
    let message = MessageRow {
        id: Uuid::new_v4(),
        project_id: project_id.to_owned(),
        request_id: None,
        resource_type: resource_type.to_owned(),
        resource_id: Some(resource_id.to_owned()),
        action_id: action_id.to_owned(),
        detail_id: known_detail_id(detail_id).to_owned(),
        message_level: level.to_owned(),
        created_at: now,
        expires_at: now.checked_add_signed(ttl).unwrap_or(now),
    };
    if let Err(err) = core.store.insert_message(message).await {
        tracing::error!(
            project.id = project_id,
            resource.id = resource_id,
            error = %err,
            "failed to record a user message about {resource_type} {resource_id}: {err}"
        );
    }
    Ok(())
}

/// Who reads messages.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The caller's project.
    pub project_id: &'a str,
    /// Admins see every project's messages.
    pub is_admin: bool,
}

/// Sort order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDir {
    /// Oldest first.
    Asc,
    /// Newest first (Manila's default).
    #[default]
    Desc,
}

/// Filters, order and page of `GET /v2/messages` (Manila's `message_get_all`).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Exact `request_id`.
    pub request_id: Option<String>,
    /// Any of these resource types (the parameter may repeat).
    pub resource_types: Vec<String>,
    /// Exact `resource_id`.
    pub resource_id: Option<String>,
    /// Exact `action_id`.
    pub action_id: Option<String>,
    /// Exact `detail_id`.
    pub detail_id: Option<String>,
    /// Exact `message_level`.
    pub message_level: Option<String>,
    /// Created at or after (≥2.52).
    pub created_since: Option<DateTime<Utc>>,
    /// Created at or before (≥2.52).
    pub created_before: Option<DateTime<Utc>>,
    /// Sort attribute; `created_at` when `None`.
    pub sort_key: Option<String>,
    /// Sort direction.
    pub sort_dir: SortDir,
    /// Items skipped.
    pub offset: usize,
    /// At most this many items.
    pub limit: Option<usize>,
}

/// Attributes a list may be sorted by (the columns of Manila's `messages` table).
const SORT_KEYS: &[&str] = &[
    "id",
    "project_id",
    "request_id",
    "resource_type",
    "resource_id",
    "action_id",
    "detail_id",
    "message_level",
    "created_at",
    "expires_at",
    "updated_at",
    "deleted_at",
    "deleted",
];

/// The value a message is sorted by; `None` sorts first, as NULL does in ascending SQL.
fn sort_value(message: &MessageRow, key: &str) -> Option<String> {
    match key {
        "id" => Some(message.id.to_string()),
        "project_id" => Some(message.project_id.clone()),
        "request_id" => message.request_id.clone(),
        "resource_type" => Some(message.resource_type.clone()),
        "resource_id" => message.resource_id.clone(),
        "action_id" => Some(message.action_id.clone()),
        "detail_id" => Some(message.detail_id.clone()),
        "message_level" => Some(message.message_level.clone()),
        // RFC 3339 with fixed precision sorts like the instant.
        "created_at" => Some(message.created_at.format("%Y%m%d%H%M%S%.6f").to_string()),
        "expires_at" => Some(message.expires_at.format("%Y%m%d%H%M%S%.6f").to_string()),
        // Columns shoal does not keep (never set on a live row in Manila either).
        _ => None,
    }
}

fn visible(message: &MessageRow, caller: Caller<'_>, now: DateTime<Utc>) -> bool {
    message.expires_at > now && (caller.is_admin || message.project_id == caller.project_id)
}

/// Messages the caller may see, filtered, sorted and paged. An unknown sort key is 400
/// `Invalid input received: Invalid sort key <k>.` (`paginate_query`).
pub async fn list_messages(
    core: &Core,
    caller: Caller<'_>,
    query: &MessageQuery,
) -> CoreResult<Vec<MessageRow>> {
    let sort_key = query.sort_key.as_deref().unwrap_or("created_at");
    if !SORT_KEYS.contains(&sort_key) {
        return Err(CoreError::bad_request(format!(
            "Invalid input received: Invalid sort key {sort_key}."
        )));
    }
    let now = core.now();
    // Expired messages are reaped opportunistically; a failure here only delays it.
    if let Err(err) = core.store.delete_expired_messages(now).await {
        tracing::warn!(error = %err, "failed to delete expired messages: {err}");
    }
    let project = (!caller.is_admin).then_some(caller.project_id);
    let eq =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    let mut messages: Vec<MessageRow> = core
        .store
        .list_messages(project)
        .await?
        .into_iter()
        .filter(|m| visible(m, caller, now))
        .filter(|m| eq(&query.request_id, m.request_id.as_deref()))
        .filter(|m| {
            query.resource_types.is_empty() || query.resource_types.contains(&m.resource_type)
        })
        .filter(|m| eq(&query.resource_id, m.resource_id.as_deref()))
        .filter(|m| eq(&query.action_id, Some(&m.action_id)))
        .filter(|m| eq(&query.detail_id, Some(&m.detail_id)))
        .filter(|m| eq(&query.message_level, Some(&m.message_level)))
        .filter(|m| query.created_since.is_none_or(|t| m.created_at >= t))
        .filter(|m| query.created_before.is_none_or(|t| m.created_at <= t))
        .collect();
    // Stable sort: equal keys keep the store's creation order.
    messages.sort_by(|a, b| {
        let ordering = sort_value(a, sort_key).cmp(&sort_value(b, sort_key));
        match query.sort_dir {
            SortDir::Asc => ordering,
            SortDir::Desc => ordering.reverse(),
        }
    });
    let page = messages
        .into_iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX))
        .collect();
    Ok(page)
}

/// Manila's `MessageNotFound` text.
fn message_not_found(id: &str) -> CoreError {
    CoreError::not_found(format!("Message {id} could not be found."))
}

/// One message, if the caller may see it and it has not expired; else 404
/// `Message <id> could not be found.`.
pub async fn get_message(core: &Core, caller: Caller<'_>, id: &str) -> CoreResult<MessageRow> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(message_not_found(id));
    };
    let message = match core.store.get_message(uuid).await {
        Ok(message) => message,
        Err(StoreError::NotFound(_)) => return Err(message_not_found(id)),
        Err(err) => return Err(err.into()),
    };
    if !visible(&message, caller, core.now()) {
        return Err(message_not_found(id));
    }
    Ok(message)
}

/// Deletes a message the caller may see (404 otherwise, as [`get_message`]).
pub async fn delete_message(core: &Core, caller: Caller<'_>, id: &str) -> CoreResult<()> {
    let message = get_message(core, caller, id).await?;
    match core.store.delete_message(message.id).await {
        // Deleted concurrently: the caller's intent is fulfilled either way.
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_message_texts_follow_manila() {
        assert_eq!(
            user_message(ACTION_ALLOCATE_HOST, DETAIL_FILTER_REPLICATION),
            "allocate host: No storage could be allocated for this share request, ShareReplication filter didn't succeed."
        );
        assert_eq!(
            user_message("999", "999"),
            "unknown action: An unknown error occurred."
        );
        assert_eq!(
            user_message(ACTION_PROMOTE, DETAIL_NO_ACTIVE_REPLICA),
            "promote: Share has no replica with 'replica_state' set to 'active'."
        );
    }

    #[test]
    fn unknown_detail_ids_are_stored_as_unknown_error() {
        assert_eq!(known_detail_id("014"), "014");
        assert_eq!(known_detail_id("nope"), DETAIL_UNKNOWN_ERROR);
        assert_eq!(DETAIL_UNEXPECTED, "001");
    }

    #[test]
    fn ttl_is_thirty_days() {
        assert_eq!(MESSAGE_TTL_DEFAULT.as_secs(), 30 * 24 * 3600);
    }
}
