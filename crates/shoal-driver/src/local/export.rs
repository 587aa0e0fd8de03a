//! The `local` back end's side of the NFS data plane: whether each instance is exported, how,
//! to whom, and which export locations it shows.
//!
//! The files decide, never the call at hand: an active NFS instance (`shares/<id>`) is
//! exported read-write with its recorded access rules and its size as quota (and refuses
//! writes while its `.quiesced` marker exists); a readable secondary exports its published
//! version read-only whatever its rules say (Manila's `cast_rules_to_readonly`); a `dr`
//! secondary, a CIFS share and a deleted instance are not exported. Every driver call that may
//! change one of those facts ends with [`LocalDriver::refresh_export`], which rereads them and
//! replaces the export, so the export follows the files, also after a restart (`do_setup`
//! refreshes every instance of every pool). Because the NFS server runs in this process, the
//! export has changed when the call returns: an access rule reported `active` is enforced.
//!
//! Export locations: with the data plane on, the client-facing `local://` location of an
//! instance becomes Manila's NFS form `<export address>:/shares/<instance-id>` (same
//! `preferred` flag and metadata); the admin-only `local://` location stays, because the
//! replication of a secondary finds its active's data root through it.

use std::path::Path;
use std::sync::Arc;

use shoal_nfs::{ClientRule, ExportRoot, ExportSpec, Exports};

use super::replica;
use super::{AccessFile, GIB_BYTES, Instance, LocalDriver, Role, read_json};
use crate::{DriverError, ExportLocation};

/// The NFS data plane a local back end publishes its instances on.
#[derive(Clone)]
pub struct DataPlane {
    /// What the node's NFS server serves.
    pub exports: Arc<Exports>,
    /// Host part of export locations (an IPv6 address in brackets).
    pub address: String,
    /// The change journals of the exported actives (the server's change observer).
    pub journals: Arc<super::journal::Journals>,
}

impl DataPlane {
    /// A data plane over `exports`, whose changes it journals.
    pub fn new(exports: Arc<Exports>, address: String) -> DataPlane {
        let journals = super::journal::Journals::new();
        exports.set_observer(journals.clone());
        DataPlane {
            exports,
            address,
            journals,
        }
    }
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// What an instance's export should be, read from its files.
pub(super) struct Wanted {
    spec: ExportSpec,
    quiesced: bool,
}

/// The export `instance` should have now, `None` for no export.
pub(super) fn wanted(instance: &Instance) -> Result<Option<Wanted>, DriverError> {
    let Some(role) = instance.layout()? else {
        return Ok(None);
    };
    let meta = instance.read_meta()?;
    if meta
        .as_ref()
        .and_then(|m| m.share_proto.as_deref())
        .is_some_and(|p| !p.eq_ignore_ascii_case("NFS"))
    {
        return Ok(None);
    }
    let rules = client_rules(&instance.shares.join(instance.access_name()))?;
    match role {
        Role::Active => Ok(Some(Wanted {
            spec: ExportSpec {
                root: ExportRoot::Directory(instance.dir.clone()),
                read_only: false,
                rules,
                quota_bytes: meta.map(|m| m.size_gb.saturating_mul(GIB_BYTES)),
            },
            quiesced: fs_exists(&instance.shares.join(instance.quiesced_name()))?,
        })),
        Role::Secondary => {
            if replica::replication_type(instance)?.as_deref() != Some("readable") {
                return Ok(None);
            }
            Ok(Some(Wanted {
                spec: ExportSpec {
                    root: ExportRoot::Published(instance.replica_root.clone()),
                    read_only: true,
                    rules,
                    quota_bytes: None,
                },
                quiesced: false,
            }))
        }
    }
}

/// The recorded `ip` rules as the server matches them. Only valid rules are recorded, so a
/// rule that does not parse here is skipped (and logged) rather than failing the export.
fn client_rules(access_file: &Path) -> Result<Vec<ClientRule>, DriverError> {
    let recorded = read_json::<AccessFile>(access_file)?.unwrap_or_default();
    Ok(recorded
        .rules
        .iter()
        .filter(|r| r.access_type == "ip")
        .filter_map(|r| match ClientRule::parse(&r.access_to, &r.access_level) {
            Ok(rule) => Some(rule),
            Err(err) => {
                tracing::warn!(rule = %r.id, error = %err, "access rule {} is not exported: {err}", r.id);
                None
            }
        })
        .collect())
}

fn fs_exists(path: &Path) -> Result<bool, DriverError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(super::io_error(
            err,
            format!("inspecting {}", path.display()),
        )),
    }
}

impl DataPlane {
    /// Applies `wanted` to the instance's export, except its quiesce state; returns that.
    /// Blocking: a new export measures the tree for its quota.
    pub(super) fn apply(
        &self,
        instance: &Instance,
        wanted: Option<Wanted>,
    ) -> Result<bool, DriverError> {
        let id = &instance.id;
        let Some(wanted) = wanted else {
            self.exports.unexport(id);
            self.journals.close(id);
            return Ok(false);
        };
        if wanted.spec.read_only {
            self.journals.close(id);
        } else {
            // Open before exporting: no write through the server goes unrecorded.
            let path = instance.shares.join(instance.journal_name());
            self.journals.ensure(id, &path).map_err(|e| {
                super::io_error(e, format!("opening the change journal {}", path.display()))
            })?;
        }
        self.exports.export(id, wanted.spec).map_err(|e| {
            DriverError::Other(anyhow::anyhow!("exporting share instance {id}: {e}"))
        })?;
        Ok(wanted.quiesced)
    }

    /// The NFS location of instance `id`.
    fn location_path(&self, id: &str) -> String {
        format!("{}:{}", self.address, Exports::export_path(id))
    }

    /// `locations` as clients see them: each client-facing `local://` location becomes the
    /// NFS one of instance `id`, keeping its flags and metadata.
    pub(super) fn present(&self, id: &str, locations: Vec<ExportLocation>) -> Vec<ExportLocation> {
        locations
            .into_iter()
            .map(|mut location| {
                if !location.is_admin_only && location.path.starts_with(super::LOCAL_SCHEME) {
                    location.path = self.location_path(id);
                }
                location
            })
            .collect()
    }
}

impl LocalDriver {
    /// Brings the instance's export in line with its files (see the module documentation).
    /// Nothing without a data plane.
    pub(super) async fn refresh_export(&self, instance: &Instance) -> Result<(), DriverError> {
        let Some(plane) = self.nfs.clone() else {
            return Ok(());
        };
        let (id, instance) = (instance.id.clone(), instance.clone());
        let blocking_plane = plane.clone();
        let exported = super::blocking(move || {
            let wanted = wanted(&instance)?;
            let exported = wanted.is_some();
            let quiesced = blocking_plane.apply(&instance, wanted)?;
            Ok(exported.then_some(quiesced))
        })
        .await?;
        if let Some(quiesced) = exported {
            plane
                .exports
                .set_quiesced(&id, quiesced)
                .await
                .map_err(|e| {
                    DriverError::Other(anyhow::anyhow!("exporting share instance {id}: {e}"))
                })?;
        }
        Ok(())
    }

    /// Removes the instance's export before its data goes away.
    pub(super) fn unexport(&self, id: &str) {
        if let Some(plane) = &self.nfs {
            plane.exports.unexport(id);
            plane.journals.close(id);
        }
    }

    /// The change journal of active instance `id` of this node, if it has one.
    pub(super) fn journal_of(
        &self,
        id: &str,
    ) -> Option<Arc<shoal_replication::journal::ChangeJournal>> {
        self.nfs.as_ref().and_then(|plane| plane.journals.get(id))
    }

    /// Export locations as clients see them (unchanged without a data plane).
    pub(super) fn present(&self, id: &str, locations: Vec<ExportLocation>) -> Vec<ExportLocation> {
        match &self.nfs {
            Some(plane) => plane.present(id, locations),
            None => locations,
        }
    }

    /// Refreshes a replica's export after a replica call and presents the locations the call
    /// returned. With `only_changes` (a periodic update), locations equal to the stored ones
    /// come back as `None`: nothing to change.
    pub(super) async fn replica_exported(
        &self,
        replica: &crate::ReplicaRef,
        mut result: crate::ReplicaResult,
        only_changes: bool,
    ) -> Result<crate::ReplicaResult, DriverError> {
        let instance = self.instance(&replica.instance)?;
        self.refresh_export(&instance).await?;
        if let Some(locations) = result.export_locations.take() {
            let presented = self.present(&instance.id, locations);
            let unchanged = only_changes && presented == replica.export_locations;
            result.export_locations = (!unchanged).then_some(presented);
        }
        Ok(result)
    }

    /// Measures the instance's usage again for its quota (after its tree was replaced).
    pub(super) async fn recount_usage(&self, instance: &Instance) -> Result<(), DriverError> {
        let Some(plane) = self.nfs.clone() else {
            return Ok(());
        };
        let id = instance.id.clone();
        super::blocking(move || {
            if plane.exports.usage_bytes(&id).is_none() {
                return Ok(());
            }
            plane.exports.recount_usage(&id).map_err(|e| {
                DriverError::Other(anyhow::anyhow!("measuring share instance {id}: {e}"))
            })
        })
        .await
    }

    /// Refreshes the export of every instance of every pool (start-up). An instance whose
    /// export fails is logged and left unexported; the others are still served.
    pub(super) async fn refresh_all_exports(&self) -> Result<(), DriverError> {
        if self.nfs.is_none() {
            return Ok(());
        }
        for pool in &self.pools {
            let mut ids = Vec::new();
            for dir in ["shares", "replicas"] {
                let Ok(entries) = std::fs::read_dir(pool.path.join(dir)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if crate::fsutil::is_canonical_uuid(name) && !ids.iter().any(|i| i == name) {
                        ids.push(name.to_owned());
                    }
                }
            }
            for id in ids {
                let share = crate::ShareInstanceRef {
                    id: id.clone(),
                    share_id: String::new(),
                    pool: pool.name.clone(),
                    size_gb: 0,
                    share_proto: "NFS".to_owned(),
                };
                let refreshed = match self.instance(&share) {
                    Ok(instance) => self.refresh_export(&instance).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = refreshed {
                    tracing::error!(share_instance.id = %id, error = %err, "share instance {id} is not exported: {err}");
                }
            }
        }
        Ok(())
    }
}
