//! The planner: desired × observed → [`Plan`].
//!
//! Per VM it decides one [`Action`] and the ordered [`Step`]s that reach the
//! desired state with the fewest `qm` invocations the node's version allows
//! (CONTRACT §16). The rules live beside their topic: [`crate::placement`]
//! (which node), [`crate::ids`] (which VM id), [`crate::create`] (import,
//! clone, uploads), [`crate::cache`] (the image cache), [`crate::update`]
//! (drift, cold keys, disk growth). A VM that exists without pvefleet's tag
//! is a conflict and gets no steps.
//!
//! [`Step`]: crate::types::Step

use crate::ids::IdAllocator;
use crate::lookup::{is_managed, selected, storage_lock, ManagedByName};
use crate::observed::{ClusterVm, NodeState, Observed};
use crate::options;
use crate::placement::free_memory;
use crate::problem::{PlanNote, PlanProblem};
use crate::types::{Action, Plan, Upload, VmPlan};
use pvefleet_model::spec::{Desired, ImageRef, IpConfig, VmSpec};
use pvefleet_model::{GuestKind, VmId};
use std::collections::BTreeMap;

/// What the planner needs.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The file.
    pub desired: &'a Desired,
    /// The nodes.
    pub observed: &'a Observed,
    /// Add `qm reboot` for running VMs whose changes wait for a reboot.
    pub reboot: bool,
    /// Limit to these VM names or ids (empty: all).
    pub only: &'a [String],
    /// Take over VMs the file names that exist without pvefleet's tag
    /// (`apply --adopt`, see [`crate::adopt`]) instead of reporting them as
    /// conflicts.
    pub adopt: bool,
    /// Allow changes that destroy data (`--allow-data-loss`): a data disk
    /// removed from the file is destroyed, a VM's EFI vars or TPM state
    /// removed or remade, instead of each being a problem.
    pub allow_data_loss: bool,
}

/// One image-cache template per (node, storage, image, disk size).
pub(crate) type CacheKey = (String, String, ImageRef, Option<u64>);

/// The planner's working state while it walks the file.
pub(crate) struct Planner<'a> {
    pub(crate) input: PlanInput<'a>,
    pub(crate) ids: IdAllocator,
    pub(crate) free_memory: BTreeMap<String, i64>,
    pub(crate) plan: Plan,
    pub(crate) cache: BTreeMap<CacheKey, (usize, VmId)>,
    /// Managed VMs by name, for duplicate names.
    pub(crate) managed: ManagedByName<'a>,
    /// Downloads planned so far, by node (none when shared), storage, file.
    pub(crate) downloads: BTreeMap<crate::download::DownloadKey, usize>,
}

impl<'a> Planner<'a> {
    pub(crate) fn node_state(&self, node: &str) -> Option<&'a NodeState> {
        self.input.observed.node(node)
    }

    /// The index of an upload of `content` to `node`, added once.
    pub(crate) fn upload(&mut self, node: &str, content: String) -> usize {
        if let Some(i) = self
            .plan
            .uploads
            .iter()
            .position(|u| u.node == node && u.content == content)
        {
            return i;
        }
        let n = self.plan.uploads.iter().filter(|u| u.node == node).count();
        self.plan.uploads.push(Upload {
            node: node.to_string(),
            file_name: format!("sshkeys-{n}.pub"),
            content,
            install_to: None,
        });
        self.plan.uploads.len() - 1
    }

    fn vm(&mut self, spec: &VmSpec) -> VmPlan {
        let mut vp = VmPlan::new(&spec.name, spec.placement.node().unwrap_or_default());
        vp.vmid = spec.vmid;
        vp.expect_ip = match spec.ip {
            Some(IpConfig::Static { address, .. }) => Some(address.into()),
            _ => None,
        };
        vp.running = options::wants_running(spec);
        vp.wait = spec.wait;
        vp.no_agent = spec.lifecycle.agent.as_ref().is_some_and(|a| !a.enabled);
        let observed = self.input.observed;
        // Two managed VMs with the file's name: which one is meant is not
        // known, so neither is touched (made by an older version, by hand,
        // or by a lost race).
        let named = self.managed.get(&spec.name);
        let clash = match spec.vmid {
            None => named.len() > 1,
            Some(id) => named.iter().any(|v| v.vmid != id),
        };
        if clash {
            let mut vmids: Vec<VmId> = named.iter().map(|v| v.vmid).collect();
            vmids.extend(spec.vmid.filter(|id| !vmids.contains(id)));
            vmids.sort();
            vp.vmid = spec.vmid.or(vmids.first().copied());
            vp.block(PlanProblem::DuplicateName {
                name: spec.name.clone(),
                vmids,
            });
            return vp;
        }
        // By id, or (without one) the one managed VM of its name.
        let existing = match spec.vmid {
            Some(id) => observed.vm(id),
            None => named.first().copied(),
        };
        if let Some(existing) = existing {
            vp.vmid = Some(existing.vmid);
            vp.node = existing.node.clone();
            if spec.vmid.is_some() && Observed::looks_unfinished(existing) {
                self.leftover(spec, existing, &mut vp);
                return vp;
            }
            if let Some(problem) = self.existing_problem(spec, existing) {
                vp.block(problem);
            } else if self.adopting(existing) {
                self.adopt(spec, existing, &mut vp);
            } else {
                self.update(spec, existing, &mut vp);
            }
            return vp;
        }
        // A name used by a VM pvefleet does not manage is a clash too,
        // unless this run adopts that VM.
        if spec.vmid.is_none() {
            if let Some(other) =
                crate::adopt::adoptable(None, &spec.name, observed).filter(|_| self.input.adopt)
            {
                vp.vmid = Some(other.vmid);
                vp.node = other.node.clone();
                match self.existing_problem(spec, other) {
                    Some(problem) => vp.block(problem),
                    None => self.adopt(spec, other, &mut vp),
                }
                return vp;
            }
            if let Some(other) = observed
                .all_vms()
                .into_iter()
                .find(|v| v.name.as_deref() == Some(spec.name.as_str()))
            {
                vp.vmid = Some(other.vmid);
                vp.node = other.node.clone();
                vp.block(PlanProblem::ForeignName {
                    name: spec.name.clone(),
                    vmid: other.vmid,
                });
                return vp;
            }
        }
        match self.place(spec) {
            Ok(node) => vp.node = node,
            Err(problem) => {
                vp.block(problem);
                return vp;
            }
        }
        if let Some(problem) = self.unreachable(&vp.node) {
            vp.block(problem);
            return vp;
        }
        if let Err(problem) = self.create(spec, &mut vp) {
            vp.block(problem);
        }
        vp
    }

    /// A VM of the file's id that an interrupted create left (nobody holds
    /// its lock) is destroyed and made again; one whose create may still
    /// run elsewhere is a problem, never touched.
    fn leftover(&mut self, spec: &VmSpec, existing: &ClusterVm, vp: &mut VmPlan) {
        let lock = existing.lock.clone().unwrap_or_default();
        if let Some(problem) = self.unreachable(&existing.node) {
            return vp.block(problem);
        }
        if !self.input.observed.leftovers.contains(&existing.vmid) {
            return vp.block(PlanProblem::CreateInProgress {
                vmid: existing.vmid,
                node: existing.node.clone(),
                lock,
            });
        }
        if let Err(problem) = self.create(spec, vp) {
            return vp.block(problem);
        }
        vp.steps.insert(0, destroy_leftover(existing.vmid));
        vp.notes.push(PlanNote::Leftover {
            vmid: existing.vmid,
            lock,
        });
    }

    /// Why an existing VM cannot be updated, if it cannot.
    fn existing_problem(&self, spec: &VmSpec, existing: &ClusterVm) -> Option<PlanProblem> {
        if let Some(problem) = self.unreachable(&existing.node) {
            return Some(problem);
        }
        if (!is_managed(existing) && !self.adopting(existing)) || existing.kind != GuestKind::Qemu {
            return Some(PlanProblem::ForeignVm {
                kind: if existing.kind != GuestKind::Qemu {
                    "container"
                } else if existing.template {
                    "template"
                } else {
                    "VM"
                },
                vmid: existing.vmid,
                node: existing.node.clone(),
            });
        }
        if existing.template {
            return Some(PlanProblem::TemplateId {
                vmid: existing.vmid,
            });
        }
        let want = spec.placement.node()?;
        (self.input.desired.cluster && want != existing.node).then(|| PlanProblem::WrongNode {
            vmid: existing.vmid,
            node: existing.node.clone(),
            want: want.to_string(),
        })
    }

    /// The problem of a VM whose node could not be read: nothing is known of
    /// its VMs there, so nothing is planned for it.
    fn unreachable(&self, node: &str) -> Option<PlanProblem> {
        self.input
            .observed
            .unreachable
            .get(node)
            .map(|why| PlanProblem::NodeUnreachable {
                node: node.to_string(),
                reason: why.clone(),
            })
    }
}

/// Removes what an interrupted create left: the config (whatever lock it
/// holds) and every volume carrying the id (CONTRACT §19).
pub(crate) fn destroy_leftover(vmid: VmId) -> crate::types::Step {
    crate::types::Step::exit(pvefleet_model::Command::Qm(pvefleet_model::Qm::Destroy {
        vmid,
        skiplock: true,
    }))
}

/// Computes the plan.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let observed = input.observed;
    let mut p = Planner {
        input,
        ids: IdAllocator::new(input.desired, observed),
        free_memory: free_memory(input.desired, observed),
        plan: Plan::default(),
        cache: BTreeMap::new(),
        managed: ManagedByName::new(observed),
        downloads: BTreeMap::new(),
    };
    for spec in &input.desired.vms {
        if !selected(spec, input.only) {
            continue;
        }
        let mut vp = p.vm(spec);
        if vp.steps.iter().any(|s| s.command.allocates()) {
            vp.storage_lock = Some(storage_lock(&vp.node, &spec.storage, observed));
        }
        if vp.action == Action::None && !vp.steps.is_empty() {
            vp.action = Action::Update;
        }
        p.plan.vms.push(vp);
    }
    p.plan.leftovers = unnamed_leftovers(input.desired, observed);
    p.plan
}

/// Unfinished creates and clones that no VM of the file names by id.
fn unnamed_leftovers(desired: &Desired, observed: &Observed) -> Vec<crate::types::Leftover> {
    let named: std::collections::BTreeSet<VmId> =
        desired.vms.iter().filter_map(|v| v.vmid).collect();
    observed
        .all_vms()
        .into_iter()
        .filter(|v| Observed::looks_unfinished(v) && !named.contains(&v.vmid))
        .map(|v| crate::types::Leftover {
            vmid: v.vmid,
            node: v.node.clone(),
            lock: v.lock.clone().unwrap_or_default(),
        })
        .collect()
}
