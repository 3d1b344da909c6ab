//! `destroy` as a plan: the managed VMs of the file (and, when asked,
//! pvefleet's image-cache templates) each get a shutdown and a destroy; a VM
//! pvefleet does not manage is a problem, never touched.

use crate::lookup::{find_existing, is_managed, selected, ManagedByName};
use crate::observed::Observed;
use crate::problem::{PlanNote, PlanProblem};
use crate::types::{Action, Step, VmPlan, CACHE_TAG};
use pvefleet_model::spec::Desired;
use pvefleet_model::{Command, GuestKind, Qm, VmId};

/// What `destroy` works from.
#[derive(Clone, Copy, Debug)]
pub struct DestroyInput<'a> {
    /// The file.
    pub desired: &'a Desired,
    /// The nodes.
    pub observed: &'a Observed,
    /// Limit to these VM names or ids (empty: all).
    pub only: &'a [String],
    /// Also destroy pvefleet's image-cache templates.
    pub include_cache: bool,
}

/// The destroy plan: the VMs first, then the cache templates, whose linked
/// clones must be gone before them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestroyPlan {
    /// The file's VMs, in file order.
    pub vms: Vec<VmPlan>,
    /// Image-cache templates (with `include_cache`).
    pub caches: Vec<VmPlan>,
}

impl DestroyPlan {
    /// True when nothing would be destroyed.
    pub fn is_empty(&self) -> bool {
        self.vms
            .iter()
            .chain(&self.caches)
            .all(|v| v.action != Action::Destroy)
    }

    /// True when a VM stands in the way (not managed, node unreachable).
    pub fn has_problems(&self) -> bool {
        self.vms.iter().any(VmPlan::is_blocked)
    }
}

/// Shut down (60 s), then destroy with the VM's disks.
fn destroy_steps(vmid: VmId) -> Vec<Step> {
    vec![
        Step::exit(Command::Qm(Qm::Shutdown { vmid, timeout: 60 })),
        Step::exit(Command::Qm(Qm::Destroy {
            vmid,
            skiplock: false,
        })),
    ]
}

fn destroying(name: &str, vmid: VmId, node: &str) -> VmPlan {
    let mut vp = VmPlan::new(name, node);
    vp.vmid = Some(vmid);
    vp.action = Action::Destroy;
    vp.steps = destroy_steps(vmid);
    vp
}

/// A protected VM is a problem (Proxmox refuses to destroy it, so the
/// run would fail midway); an HA resource is removed first (CONTRACT §7:
/// `qm destroy` refuses a VM in HA resources without `--purge`).
fn lifecycle_before_destroy(observed: &Observed, vmid: VmId, node: &str, vp: &mut VmPlan) {
    let protected = observed
        .node(node)
        .and_then(|n| n.configs.get(&vmid))
        .and_then(|c| c.current.get("protection"))
        .is_some_and(|p| crate::options::normalise("protection", p) == "1");
    if protected {
        vp.block(PlanProblem::Protected { vmid });
        return;
    }
    if observed.lifecycle.ha.contains_key(&vmid) {
        vp.steps.insert(
            0,
            Step::exit(Command::HaManager(pvefleet_model::ha::HaManager::Remove {
                vmid,
            })),
        );
    }
}

/// Plans `destroy`.
pub fn destroy_plan(input: DestroyInput<'_>) -> DestroyPlan {
    let observed = input.observed;
    let mut plan = DestroyPlan::default();
    let managed = ManagedByName::new(observed);
    for spec in input.desired.vms.iter().filter(|s| selected(s, input.only)) {
        // Every managed VM with the name goes, duplicates included.
        let named = managed.get(&spec.name);
        if spec.vmid.is_none() && named.len() > 1 {
            for vm in named {
                let mut vp = destroying(&spec.name, vm.vmid, &vm.node);
                if let Some(reason) = observed.unreachable.get(&vm.node) {
                    vp.block(PlanProblem::NodeUnreachable {
                        node: vm.node.clone(),
                        reason: reason.clone(),
                    });
                }
                plan.vms.push(vp);
            }
            continue;
        }
        let Some(vm) = find_existing(spec, observed) else {
            let mut vp = VmPlan::new(&spec.name, spec.placement.node().unwrap_or_default());
            vp.vmid = spec.vmid;
            vp.notes.push(PlanNote::Absent);
            plan.vms.push(vp);
            continue;
        };
        let mut vp = destroying(&spec.name, vm.vmid, &vm.node);
        if let Some(reason) = observed.unreachable.get(&vm.node) {
            vp.block(PlanProblem::NodeUnreachable {
                node: vm.node.clone(),
                reason: reason.clone(),
            });
        } else if !is_managed(vm) || vm.kind != GuestKind::Qemu {
            vp.block(PlanProblem::ForeignVm {
                kind: if vm.kind == GuestKind::Qemu {
                    "VM"
                } else {
                    "container"
                },
                vmid: vm.vmid,
                node: vm.node.clone(),
            });
        } else {
            lifecycle_before_destroy(observed, vm.vmid, &vm.node, &mut vp);
        }
        plan.vms.push(vp);
    }
    if input.include_cache {
        plan.caches = observed
            .nodes
            .iter()
            .flat_map(|n| n.vms.iter())
            .filter(|v| v.template && v.tags.iter().any(|t| t == CACHE_TAG) && is_managed(v))
            .map(|v| destroying(v.name.as_deref().unwrap_or_default(), v.vmid, &v.node))
            .collect();
    }
    crate::snippets::remove_unused(&mut plan, input);
    plan
}
