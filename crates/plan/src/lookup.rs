//! Finding what the file refers to among what was observed.

use crate::observed::{ClusterVm, Observed};
use crate::types::StorageLock;
use pvefleet_model::spec::{CloneRef, DiskSource, ImageRef, VmSpec};
use pvefleet_model::{VmId, OWNER_TAG};
use std::collections::BTreeMap;

/// True when `spec` is selected by `--only`.
pub fn selected(spec: &VmSpec, only: &[String]) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|o| *o == spec.name || spec.vmid.is_some_and(|id| id.to_string() == *o))
}

/// True when the guest carries pvefleet's tag.
pub fn is_managed(vm: &ClusterVm) -> bool {
    vm.tags.iter().any(|t| t == OWNER_TAG)
}

/// Finds the existing VM a spec refers to: by id, or (without id) by name
/// among managed VMs.
pub fn find_existing<'a>(spec: &VmSpec, observed: &'a Observed) -> Option<&'a ClusterVm> {
    find_vm(spec.vmid, &spec.name, observed)
}

/// [`find_existing`] by id, or (without id) by name among managed VMs.
pub fn find_vm<'a>(
    vmid: Option<VmId>,
    name: &str,
    observed: &'a Observed,
) -> Option<&'a ClusterVm> {
    match vmid {
        Some(id) => observed.vm(id),
        None => observed
            .all_vms()
            .into_iter()
            .find(|v| v.name.as_deref() == Some(name) && is_managed(v)),
    }
}

/// The template VM a `clone:` refers to.
pub fn find_template<'a>(r: &CloneRef, observed: &'a Observed) -> Option<&'a ClusterVm> {
    observed.all_vms().into_iter().find(|v| match r {
        CloneRef::Id(id) => v.vmid == *id,
        CloneRef::Name(n) => v.template && v.name.as_deref() == Some(n.as_str()),
    })
}

/// The lock Proxmox takes to allocate on `storage` from `node` (CONTRACT
/// §11.3): one pmxcfs lock for a storage the cluster shares, a flock on
/// the node for a local one.
pub fn storage_lock(node: &str, storage: &str, observed: &Observed) -> StorageLock {
    if observed.shared_storages.contains(storage) {
        StorageLock::Shared {
            storage: storage.to_string(),
        }
    } else {
        StorageLock::Local {
            node: node.to_string(),
            storage: storage.to_string(),
        }
    }
}

/// The volume id of the spec's image, when it is a volume.
pub fn image_volid(spec: &VmSpec) -> Option<String> {
    match &spec.source {
        DiskSource::Image(img @ ImageRef::Volume { .. }) => Some(img.display()),
        _ => None,
    }
}

/// The text a `clone:` reference was written as.
pub fn clone_ref_text(r: &CloneRef) -> String {
    match r {
        CloneRef::Id(id) => id.to_string(),
        CloneRef::Name(n) => n.clone(),
    }
}

/// The managed VMs (not templates) by name, each name's sorted by id:
/// built once per plan, so that looking a name up is not a scan of every
/// guest per VM of the file.
pub struct ManagedByName<'a>(BTreeMap<&'a str, Vec<&'a ClusterVm>>);

impl<'a> ManagedByName<'a> {
    /// The index of `observed`'s managed VMs.
    pub fn new(observed: &'a Observed) -> Self {
        let mut by_name: BTreeMap<&'a str, Vec<&'a ClusterVm>> = BTreeMap::new();
        for v in observed.all_vms() {
            if let (Some(name), true, false) = (v.name.as_deref(), is_managed(v), v.template) {
                by_name.entry(name).or_default().push(v);
            }
        }
        for vms in by_name.values_mut() {
            vms.sort_by_key(|v| v.vmid);
        }
        Self(by_name)
    }

    /// The managed VMs named `name`.
    pub fn get(&self, name: &str) -> &[&'a ClusterVm] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}
