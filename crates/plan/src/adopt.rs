//! Adoption (`apply --adopt`): a VM the file names (by `vmid`, or by name
//! for a VM without one) that exists without pvefleet's tag is taken over
//! instead of being a conflict. Its one `qm set` puts the marker on it (the
//! `pvefleet` tag and the `managed-by: pvefleet` description line) together
//! with every setting the file changes; from then on it is managed like any
//! VM pvefleet made. Containers, templates and leftovers of interrupted
//! creates are never adopted, and a name that several guests carry is not
//! taken as meaning one of them.

use crate::diff::Planner;
use crate::lookup::is_managed;
use crate::observed::{ClusterVm, Observed};
use crate::types::{Action, VmPlan};
use pvefleet_model::spec::VmSpec;
use pvefleet_model::{GuestKind, VmId};

/// True when `vm` may be adopted: a plain VM (not a container, not a
/// template, not an unfinished create) without pvefleet's tag.
pub fn can_adopt(vm: &ClusterVm) -> bool {
    !is_managed(vm) && vm.kind == GuestKind::Qemu && !vm.template && !Observed::looks_unfinished(vm)
}

/// The guest `apply --adopt` would take over for a VM of the file: the one
/// with its id, or (without id) the only guest with its name, when that
/// guest [`can_adopt`].
pub fn adoptable<'a>(
    vmid: Option<VmId>,
    name: &str,
    observed: &'a Observed,
) -> Option<&'a ClusterVm> {
    let found = match vmid {
        Some(id) => observed.vm(id),
        None => {
            let named: Vec<&ClusterVm> = observed
                .all_vms()
                .into_iter()
                .filter(|v| v.name.as_deref() == Some(name))
                .collect();
            match named.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        }
    };
    found.filter(|v| can_adopt(v))
}

impl Planner<'_> {
    /// True when this run takes `existing` over.
    pub(crate) fn adopting(&self, existing: &ClusterVm) -> bool {
        self.input.adopt && can_adopt(existing)
    }

    /// Plans the adoption of `existing`: the update steps of a managed VM,
    /// whose `qm set` always carries the tag and the description (neither
    /// has pvefleet's marker yet), so the action is [`Action::Adopt`].
    pub(crate) fn adopt(&mut self, spec: &VmSpec, existing: &ClusterVm, vp: &mut VmPlan) {
        if let Err(problem) = self.update_steps(spec, existing, vp) {
            return vp.block(problem);
        }
        vp.action = Action::Adopt;
    }
}
