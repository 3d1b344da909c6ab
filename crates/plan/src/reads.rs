//! What to read from the nodes, decided from the file alone ([`ReadPlan`]):
//! the first stage's reads per node, and which configurations the second
//! stage reads once the guests are known ([`ReadPlan::configs_of`]).
//!
//! The executor runs these reads and hands back named answers; it does not
//! decide what to read.

use crate::lookup::{find_template, find_vm, is_managed};
use crate::observed::Observed;
use pvefleet_model::spec::{CloneRef, Desired, DiskFrom, DiskSource, ImageRef, Placement, VmSpec};
use pvefleet_model::{Command, Pvesh, VmId};
use std::collections::BTreeSet;

/// One read of the first stage, by what it answers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Read {
    /// `/version`.
    Version,
    /// `/nodes` (to learn a single host's node name).
    Nodes,
    /// The node's VMs with fresh status.
    Vms,
    /// The node's network (bridges).
    Network,
    /// The content of a storage that holds images of the file.
    StorageContent(String),
    /// The host path of an image volume or of a cloud-init snippet
    /// (`pvesm path`).
    ImagePath(String),
    /// `/cluster/resources`: every guest, node memory, storage flags.
    ClusterResources,
    /// `/cluster/nextid`.
    NextId,
    /// `/cluster/ha/resources`: the HA resources, with their state and group.
    HaResources,
}

impl Read {
    /// The command that answers this read; `node` is the node name in API
    /// paths (`localhost` until a single host's name is known).
    pub fn command(&self, node: &str) -> Command {
        match self {
            Read::Version => Command::Pvesh(Pvesh::version()),
            Read::Nodes => Command::Pvesh(Pvesh::get_nodes()),
            Read::Vms => Command::Pvesh(Pvesh::node_vms(node)),
            Read::Network => Command::Pvesh(Pvesh::node_network(node)),
            Read::StorageContent(s) => Command::Pvesh(Pvesh::storage_content(node, s)),
            Read::ImagePath(volid) => Command::PvesmPath {
                volid: volid.clone(),
            },
            Read::ClusterResources => Command::Pvesh(Pvesh::cluster_resources()),
            Read::NextId => Command::Pvesh(Pvesh::next_id()),
            Read::HaResources => Command::Pvesh(Pvesh::ha_resources()),
        }
    }
}

/// The reads of one node in the first stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReads {
    /// The node name from the file; `None` for a single host that names
    /// none (its name is read from `/nodes`).
    pub node: Option<String>,
    /// What to read, all at once, in this order.
    pub reads: Vec<Read>,
}

/// What to read from every node, decided from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPlan {
    /// True for a cluster file (`nodes:`): a node whose reads fail is left
    /// out instead of stopping the run.
    pub cluster: bool,
    /// Per node of the file, in file order.
    pub nodes: Vec<NodeReads>,
    /// Cluster-wide reads, sent along with the first node that answers.
    pub cluster_reads: Vec<Read>,
    /// Read free memory from `/cluster/resources` (for `node: auto`).
    pub memory: bool,
    /// The VMs whose configuration the second stage reads, once found.
    configs: Vec<ConfigWant>,
    /// Also read the configurations of the unmanaged VMs the file names
    /// that `apply --adopt` would take over ([`crate::adopt::adoptable`]).
    pub adopt: bool,
    /// Read the configuration of every VM of the reachable nodes, managed
    /// or not: `destroy` of a file with `user_data` removes a snippet only
    /// when no VM there names it ([`read_plan_for_destroy`]).
    pub every_vm: bool,
}

/// A configuration the second stage may need.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ConfigWant {
    /// A VM of the file: by id, or by name among managed VMs.
    Vm { vmid: Option<VmId>, name: String },
    /// A template the file clones.
    Template(CloneRef),
}

impl ReadPlan {
    /// VMs the file names by id that look like an unfinished create or
    /// clone, and managed VMs without a system disk: whether anyone still
    /// holds their config flock is asked on their node
    /// ([`Command::LockProbe`]). Returns (node, vmid).
    ///
    /// [`Command::LockProbe`]: pvefleet_model::Command::LockProbe
    pub fn probes_of(&self, observed: &Observed) -> Vec<(String, VmId)> {
        let mut out = BTreeSet::new();
        // Managed VMs without a system disk: claimed, and being made by a
        // run (which holds the flock while it imports) or left by one.
        for n in &observed.nodes {
            for vm in n.vms.iter().filter(|v| is_managed(v) && v.lock.is_none()) {
                let bare = n
                    .configs
                    .get(&vm.vmid)
                    .is_some_and(|c| !crate::update::has_system_disk(c));
                if bare {
                    out.insert((n.name.clone(), vm.vmid));
                }
            }
        }
        for want in &self.configs {
            if let ConfigWant::Vm { vmid: Some(id), .. } = want {
                if let Some(vm) = observed.vm(*id).filter(|v| Observed::looks_unfinished(v)) {
                    out.insert((vm.node.clone(), vm.vmid));
                }
            }
        }
        out.into_iter().collect()
    }

    /// The second stage, once the guests are known: (node, vmid) of every
    /// managed VM of the file and of the templates they clone.
    pub fn configs_of(&self, observed: &Observed) -> Vec<(String, VmId)> {
        let mut out = BTreeSet::new();
        if self.every_vm {
            for vm in observed.nodes.iter().flat_map(|n| n.vms.iter()) {
                if !vm.template && vm.kind == pvefleet_model::GuestKind::Qemu {
                    out.insert((vm.node.clone(), vm.vmid));
                }
            }
        }
        for want in &self.configs {
            match want {
                ConfigWant::Vm { vmid, name } => {
                    if let Some(vm) = find_vm(*vmid, name, observed) {
                        if is_managed(vm) && !vm.template {
                            out.insert((vm.node.clone(), vm.vmid));
                        }
                    }
                    if self.adopt {
                        if let Some(vm) = crate::adopt::adoptable(*vmid, name, observed) {
                            out.insert((vm.node.clone(), vm.vmid));
                        }
                    }
                }
                ConfigWant::Template(r) => {
                    if let Some(t) = find_template(r, observed) {
                        out.insert((t.node.clone(), t.vmid));
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The first-stage reads of every node of `desired`.
///
/// Free memory only serves `node: auto`, the next free id only VMs without
/// `vmid` and image-cache templates.
pub fn read_plan(desired: &Desired) -> ReadPlan {
    let memory = desired.vms.iter().any(|v| v.placement == Placement::Auto);
    let next_id = desired
        .vms
        .iter()
        .any(|v| v.vmid.is_none() || v.disk_from != DiskFrom::Import);
    let nodes = desired
        .nodes
        .iter()
        .map(|conn| {
            let images = images_for_node(desired, conn.name.as_deref());
            let mut reads = vec![Read::Version];
            if conn.name.is_none() {
                reads.push(Read::Nodes);
            }
            reads.extend([Read::Vms, Read::Network]);
            let storages: BTreeSet<&str> = images
                .iter()
                .filter_map(|i| match i {
                    ImageRef::Volume { storage, .. } => Some(storage.as_str()),
                    ImageRef::Path(_) => None,
                })
                .collect();
            // Snippet storages are listed too: a snippet removed by hand
            // is written again.
            let snippets = crate::snippets::snippet_volids(desired, conn.name.as_deref());
            let more: BTreeSet<String> = snippets
                .iter()
                .filter_map(|v| v.split_once(':').map(|(s, _)| s.to_string()))
                .filter(|s| !storages.contains(s.as_str()))
                .collect();
            reads.extend(storages.into_iter().map(|s| Read::StorageContent(s.into())));
            reads.extend(more.into_iter().map(Read::StorageContent));
            // `import-from` takes a host path for iso volumes, and for import
            // volumes before PVE 8.3; `qm importdisk` (before PVE 7.2) takes
            // one for every volume. The version is not known yet: resolve
            // every image volume, the planner picks.
            reads.extend(
                images
                    .iter()
                    .filter(|i| matches!(i, ImageRef::Volume { .. }))
                    .map(|i| Read::ImagePath(i.display())),
            );
            // Where each cloud-init snippet is written.
            reads.extend(snippets.into_iter().map(Read::ImagePath));
            NodeReads {
                node: conn.name.clone(),
                reads,
            }
        })
        .collect();
    let mut cluster_reads = vec![Read::ClusterResources];
    if next_id {
        cluster_reads.push(Read::NextId);
    }
    // Always: a VM whose `ha` was removed from the file loses its resource.
    cluster_reads.push(Read::HaResources);
    let mut configs = Vec::new();
    for spec in &desired.vms {
        configs.push(ConfigWant::Vm {
            vmid: spec.vmid,
            name: spec.name.clone(),
        });
        if let DiskSource::Clone(r) = &spec.source {
            configs.push(ConfigWant::Template(r.clone()));
        }
    }
    ReadPlan {
        cluster: desired.cluster,
        nodes,
        cluster_reads,
        memory,
        configs,
        adopt: false,
        every_vm: false,
    }
}

/// What `destroy` reads: [`read_plan`], and with `user_data` in the file
/// the configuration of every VM of the nodes, so that no snippet a VM
/// still uses is removed ([`crate::snippets::remove_unused`]).
pub fn read_plan_for_destroy(desired: &Desired) -> ReadPlan {
    let mut reads = read_plan(desired);
    reads.every_vm = desired.vms.iter().any(|v| v.user_data.is_some());
    reads
}

/// The VMs of the file that may land on a node (`None`: the single host of
/// a `proxmox:` file, whose name is not known yet): all of them on a single
/// host; in a cluster those the file puts there, and those with `node:
/// auto`, which may land anywhere.
pub fn vms_for_node<'a>(
    desired: &'a Desired,
    node: Option<&'a str>,
) -> impl Iterator<Item = &'a VmSpec> + 'a {
    desired.vms.iter().filter(move |s| {
        !desired.cluster
            || match s.placement.node() {
                None => true,
                Some(n) => Some(n) == node,
            }
    })
}

/// The cloud images VMs may need on a node ([`vms_for_node`]).
pub fn images_for_node(desired: &Desired, node: Option<&str>) -> BTreeSet<ImageRef> {
    vms_for_node(desired, node)
        .filter_map(|s| match &s.source {
            DiskSource::Image(i) => Some(i.clone()),
            DiskSource::Clone(_) => None,
        })
        .collect()
}
