//! The change journals of this node's active NFS shares, fed by the NFS server, and the
//! list of shares changed since the replica updater last looked.
//!
//! Each exported active instance has a [`ChangeJournal`] at `<pool>/shares/<id>.journal`
//! (format and guarantees in `shoal_replication::journal`), opened once per process when
//! the instance is first exported read-write: opening records a restart, which sends every
//! secondary's next sync to a full walk (a change the previous process made but never
//! recorded cannot be missed). The NFS server calls [`Journals::changed`] after each change
//! and before answering the client, so a recorded path is always on disk when a sync later
//! reads it.
//!
//! Besides recording, a change marks its instance dirty and wakes whoever waits in
//! [`Journals::wait_for_changes`] (the share role's debounced replica update, see
//! `shoal_core::replica_updater`), so secondaries follow a steady write load continuously
//! rather than at the periodic update only.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use shoal_nfs::{Change, ChangeObserver};
use shoal_replication::journal::ChangeJournal;
use tokio::sync::Notify;

/// The journals of the exported active instances of this node.
#[derive(Debug, Default)]
pub struct Journals {
    open: Mutex<HashMap<String, Arc<ChangeJournal>>>,
    dirty: Mutex<BTreeSet<String>>,
    wake: Notify,
    /// A round of the follower is under way (between [`Self::begin_round`] and
    /// [`Self::end_round`]): its changes are neither dirty nor queued yet.
    busy: AtomicBool,
    /// Some change was ever observed.
    seen: AtomicBool,
}

impl Journals {
    /// No journal open yet.
    pub fn new() -> Arc<Journals> {
        Arc::new(Journals::default())
    }

    /// The journal of instance `id`, opened at `path` unless this process has it open.
    pub(super) fn ensure(&self, id: &str, path: &Path) -> std::io::Result<Arc<ChangeJournal>> {
        let mut open = self.open.lock().expect("journals lock");
        if let Some(journal) = open.get(id)
            && journal.path() == path
        {
            return Ok(journal.clone());
        }
        let journal = Arc::new(ChangeJournal::open(path)?);
        open.insert(id.to_owned(), journal.clone());
        Ok(journal)
    }

    /// Forgets the journal of instance `id` (no longer an exported active).
    pub(super) fn close(&self, id: &str) {
        self.open.lock().expect("journals lock").remove(id);
    }

    /// The open journal of instance `id`, if it is an exported active of this node.
    pub fn get(&self, id: &str) -> Option<Arc<ChangeJournal>> {
        self.open.lock().expect("journals lock").get(id).cloned()
    }

    /// Starts a round of the follower: takes the instances changed since the last round.
    pub fn begin_round(&self) -> BTreeSet<String> {
        let mut dirty = self.dirty.lock().expect("journals lock");
        self.busy.store(true, Ordering::SeqCst);
        std::mem::take(&mut *dirty)
    }

    /// Ends a round: `retry` (changes whose update could not be queued yet) are dirty again.
    pub fn end_round(&self, retry: impl IntoIterator<Item = String>) {
        self.mark_changed(retry);
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Whether any change went through the data plane since the start (tests settle the
    /// replica updates that followed).
    pub fn saw_changes(&self) -> bool {
        self.seen.load(Ordering::SeqCst)
    }

    /// Whether no change waits for the follower (tests settle on it).
    pub fn is_idle(&self) -> bool {
        let dirty = self.dirty.lock().expect("journals lock");
        dirty.is_empty() && !self.busy.load(Ordering::SeqCst)
    }

    /// Marks `ids` changed.
    pub fn mark_changed(&self, ids: impl IntoIterator<Item = String>) {
        let mut dirty = self.dirty.lock().expect("journals lock");
        let before = dirty.len();
        dirty.extend(ids);
        if dirty.len() > before {
            self.wake.notify_one();
        }
    }

    /// Resolves once something changed since the last [`Self::begin_round`].
    pub async fn wait_for_changes(&self) {
        loop {
            let notified = self.wake.notified();
            if !self.dirty.lock().expect("journals lock").is_empty() {
                return;
            }
            notified.await;
        }
    }
}

impl ChangeObserver for Journals {
    fn changed(&self, instance_id: &str, change: &Change) {
        let Some(journal) = self.get(instance_id) else {
            return;
        };
        for path in std::iter::once(&change.path).chain(change.to.as_ref()) {
            if let Err(err) = journal.record(path.as_os_str().as_bytes()) {
                // The journal now serves no cursor: the secondaries walk the tree until it
                // is reset (the next start, or a reset after a revert).
                tracing::error!(share_instance.id = %instance_id, error = %err, "recording a change of share instance {instance_id} failed: {err}; its secondaries will walk the tree");
            }
        }
        self.seen.store(true, Ordering::SeqCst);
        self.mark_changed([instance_id.to_owned()]);
    }
}
