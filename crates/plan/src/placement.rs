//! Which node a new VM goes to: the single host's node, the node the file
//! names, or for `node: auto` the node with the most free memory that has
//! what the VM needs — its bridge, its storage enabled for VM disks, its
//! image or template — counting VMs placed earlier in the same plan.

use crate::diff::Planner;
use crate::lookup::{clone_ref_text, find_template, image_volid};
use crate::observed::{Observed, StorageOnNode};
use crate::problem::PlanProblem;
use pvefleet_model::spec::{Desired, DiskSource, ImageRef, Placement, VmSpec};
use std::collections::BTreeMap;

/// The node names each spec may resolve to, before placement: every node of
/// a cluster file, else the single host's.
fn node_names(desired: &Desired, observed: &Observed) -> Vec<String> {
    if desired.cluster {
        desired.node_names()
    } else {
        observed
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .take(1)
            .collect()
    }
}

/// Free memory in bytes of each node of the file that was observed.
pub(crate) fn free_memory(desired: &Desired, observed: &Observed) -> BTreeMap<String, i64> {
    let names = node_names(desired, observed);
    observed
        .nodes
        .iter()
        .filter(|n| names.contains(&n.name))
        .map(|n| (n.name.clone(), n.free_memory.unwrap_or(0)))
        .collect()
}

impl Planner<'_> {
    /// The node a new VM goes to.
    pub(crate) fn place(&mut self, spec: &VmSpec) -> Result<String, PlanProblem> {
        let desired = self.input.desired;
        let observed = self.input.observed;
        if !desired.cluster {
            let Some(node) = observed.nodes.first() else {
                return Err(PlanProblem::HostNotObserved);
            };
            return match spec.placement.node() {
                Some(n) if n != node.name => Err(PlanProblem::NotTheHostsNode {
                    want: n.to_string(),
                    node: node.name.clone(),
                }),
                _ => Ok(node.name.clone()),
            };
        }
        match &spec.placement {
            Placement::Auto => self.place_auto(spec),
            Placement::Node(n) => Ok(n.to_string()),
            Placement::Host => Err(PlanProblem::NoNode),
        }
    }

    /// `node: auto`: the eligible node with the most free memory (ties: the
    /// first name), whose free memory then shrinks by the VM's. With no
    /// eligible node, the problem says what each node lacks.
    fn place_auto(&mut self, spec: &VmSpec) -> Result<String, PlanProblem> {
        let need = i64::try_from(spec.memory).unwrap_or(i64::MAX / 2) << 20;
        let mut unmet = Vec::new();
        let mut eligible = Vec::new();
        for (name, free) in &self.free_memory {
            let lacks = self.lacks(spec, name);
            if lacks.is_empty() {
                eligible.push((name, *free));
            } else {
                unmet.push(format!("{name}: {}", lacks.join(", ")));
            }
        }
        let best = eligible
            .into_iter()
            .max_by_key(|(name, free)| (*free, std::cmp::Reverse((*name).clone())))
            .map(|(name, _)| name.clone())
            .ok_or(PlanProblem::NoEligibleNode { unmet })?;
        if let Some(free) = self.free_memory.get_mut(&best) {
            *free -= need;
        }
        Ok(best)
    }

    /// What `node` lacks of what the VM needs: its bridge, its storage
    /// enabled for VM disks, and its image or template. Empty when the node
    /// qualifies. Storages are checked where `/cluster/resources` described
    /// the node.
    fn lacks(&self, spec: &VmSpec, node: &str) -> Vec<String> {
        let Some(state) = self.node_state(node) else {
            return vec!["not observed".into()];
        };
        let mut lacks = Vec::new();
        for bridge in crate::hardware::nics::bridges(spec) {
            if !state.bridges.iter().any(|b| b == bridge) {
                lacks.push(format!("no bridge '{bridge}'"));
            }
        }
        let mut storages = vec![spec.storage.as_str()];
        for d in &spec.disks {
            if !storages.contains(&d.storage.as_str()) {
                storages.push(&d.storage);
            }
        }
        for storage in storages {
            match self.input.observed.storage_on(node, storage) {
                StorageOnNode::Missing => lacks.push(format!("no storage '{storage}'")),
                StorageOnNode::Present(f) if !f.holds("images") => lacks.push(format!(
                    "storage '{storage}' does not hold VM disks (no 'images' content)"
                )),
                _ => {}
            }
        }
        match &spec.source {
            // An image by URL is downloaded wherever the VM goes.
            DiskSource::Image(ImageRef::Volume { .. }) if spec.image_url.is_some() => {}
            DiskSource::Image(ImageRef::Volume { storage, .. }) => {
                let volid = image_volid(spec);
                let listed = state
                    .storages
                    .get(storage)
                    .is_some_and(|vols| vols.iter().any(|v| Some(&v.volid) == volid.as_ref()));
                if !listed {
                    lacks.push(format!(
                        "no image {}",
                        volid.unwrap_or_else(|| storage.clone())
                    ));
                }
            }
            DiskSource::Image(ImageRef::Path(_)) => {}
            DiskSource::Clone(r) => {
                if find_template(r, self.input.observed).is_none_or(|t| t.node != node) {
                    lacks.push(format!("no template '{}'", clone_ref_text(r)));
                }
            }
        }
        lacks
    }
}
