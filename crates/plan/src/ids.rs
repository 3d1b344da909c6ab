//! VM ids for VMs the file gives none: the lowest free id from
//! `/cluster/nextid` on, skipping every id in use anywhere in the cluster or
//! named by the file.

use crate::observed::Observed;
use pvefleet_model::spec::Desired;
use pvefleet_model::VmId;
use std::collections::BTreeSet;

/// Hands out free VM ids for one plan.
#[derive(Clone, Debug)]
pub struct IdAllocator {
    used: BTreeSet<u32>,
    next: u32,
}

impl IdAllocator {
    /// Ids in use: every guest observed and every `vmid` of the file.
    pub fn new(desired: &Desired, observed: &Observed) -> Self {
        let mut used: BTreeSet<u32> = observed.all_vms().iter().map(|v| v.vmid.get()).collect();
        used.extend(desired.vms.iter().filter_map(|v| v.vmid.map(VmId::get)));
        Self {
            used,
            next: observed.next_id.unwrap_or(100),
        }
    }

    /// The next free id, now taken; `None` past the largest VM id.
    pub fn allocate(&mut self) -> Option<VmId> {
        let mut candidate = self.next.max(100);
        while self.used.contains(&candidate) {
            candidate = candidate.checked_add(1)?;
        }
        self.used.insert(candidate);
        self.next = candidate.saturating_add(1);
        VmId::new(i64::from(candidate)).ok()
    }
}
