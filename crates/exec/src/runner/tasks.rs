//! VM tasks of one node, each with the result to report should it panic:
//! a panicking task is a failed VM in the summary, never a lost one.

use crate::event::VmResult;
use pvefleet_plan::VmPlan;
use std::collections::BTreeMap;

/// Tasks of VMs, each with the result to report should it panic.
pub(super) struct Tasks<T> {
    set: tokio::task::JoinSet<T>,
    meta: BTreeMap<tokio::task::Id, (usize, VmResult)>,
}

impl<T> Default for Tasks<T> {
    fn default() -> Self {
        Self {
            set: tokio::task::JoinSet::new(),
            meta: BTreeMap::new(),
        }
    }
}

/// A task's value, or the VM's result marked failed when it panicked.
pub(super) trait OrFailed: Sized {
    fn or_failed(r: VmResult) -> Self;
}

impl OrFailed for VmResult {
    fn or_failed(r: VmResult) -> Self {
        r
    }
}

impl OrFailed for (VmResult, Option<VmPlan>) {
    fn or_failed(r: VmResult) -> Self {
        (r, None)
    }
}

impl<T: OrFailed + Send + 'static> Tasks<T> {
    pub(super) fn spawn(
        &mut self,
        index: usize,
        before: VmResult,
        task: impl std::future::Future<Output = T> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.meta.insert(handle.id(), (index, before));
    }

    /// The next finished task's VM index and value.
    pub(super) async fn next(&mut self) -> Option<(usize, T)> {
        loop {
            match self.set.join_next_with_id().await? {
                Ok((id, value)) => {
                    if let Some((index, _)) = self.meta.remove(&id) {
                        return Some((index, value));
                    }
                }
                Err(e) => {
                    if let Some((index, r)) = self.meta.remove(&e.id()) {
                        let r = r.failed(format!("internal error: {e}"));
                        return Some((index, T::or_failed(r)));
                    }
                }
            }
        }
    }
}
