//! Reading the nodes: runs the reads the planner asks for ([`ReadPlan`]), a
//! fixed number of round trips per node whatever the number of VMs
//! (CONTRACT §12: one `/cluster/resources` for all guests), and turns the
//! named answers into [`Observed`].

use crate::script::StepOutput;
use crate::transport::{Transport, TransportError};
use pvefleet_model::{Command, Pvesh, VmId};
use pvefleet_plan::observed::{self as obs, NodeState, Observed};
use pvefleet_plan::{Read, ReadPlan};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A node and how to reach it.
#[derive(Clone)]
pub struct NodeHandle {
    /// The Proxmox node name (resolved by [`observe`] when not configured).
    pub name: String,
    /// The transport.
    pub transport: Arc<dyn Transport>,
}

/// Why the nodes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// A transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A command failed or answered nonsense.
    #[error("{node}: {what}: {detail}")]
    Command {
        /// The node.
        node: String,
        /// The command.
        what: String,
        /// stderr or parse error.
        detail: String,
    },
}

/// The answers of one node's first stage, by read.
struct Answers {
    host: String,
    by_read: BTreeMap<Read, StepOutput>,
}

impl Answers {
    /// The successful output of `read`, or why there is none.
    fn get(&self, read: &Read) -> Result<&StepOutput, ObserveError> {
        let out = self
            .by_read
            .get(read)
            .ok_or_else(|| ObserveError::Command {
                node: self.host.clone(),
                what: format!("{read:?}"),
                detail: "not read".into(),
            })?;
        if out.success() {
            Ok(out)
        } else {
            Err(ObserveError::Command {
                node: self.host.clone(),
                what: read.command("{node}").to_string(),
                detail: out.stderr.trim().to_string(),
            })
        }
    }

    /// The output of `read` when it succeeded (reads that may fail).
    fn ok(&self, read: &Read) -> Option<&StepOutput> {
        self.by_read.get(read).filter(|o| o.success())
    }

    fn bad(&self, what: &str, e: impl std::fmt::Display) -> ObserveError {
        ObserveError::Command {
            node: self.host.clone(),
            what: what.into(),
            detail: e.to_string(),
        }
    }
}

/// Runs the first stage of `reads` on one node at once, in one round trip.
async fn read_node_answers(
    t: Arc<dyn Transport>,
    path_node: String,
    reads: Vec<Read>,
) -> Result<Answers, TransportError> {
    let argvs: Vec<Vec<String>> = reads.iter().map(|r| r.command(&path_node).argv()).collect();
    let outs = t.run_concurrent(&argvs).await?;
    Ok(Answers {
        host: t.describe(),
        by_read: reads.into_iter().zip(outs).collect(),
    })
}

/// Reads every node in two stages: first what `plan` lists for each node,
/// run at once in one round trip per node (the first node that answers also
/// reads the cluster-wide views); then one config read per managed VM, in
/// `parallel` round trips per node that each read their share in turn.
/// `handles` get their node names filled in.
pub async fn observe(
    plan: &ReadPlan,
    handles: &mut [NodeHandle],
    parallel: usize,
) -> Result<Observed, ObserveError> {
    let mut observed = Observed {
        observed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs()),
        ..Observed::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, h) in handles.iter().enumerate() {
        let mut reads = plan
            .nodes
            .iter()
            .find(|n| n.node.as_deref().unwrap_or("") == h.name)
            .map(|n| n.reads.clone())
            .unwrap_or_else(|| vec![Read::Version, Read::Nodes, Read::Vms, Read::Network]);
        if i == 0 {
            reads.extend(plan.cluster_reads.iter().cloned());
        }
        // Until the name is known, node paths use `localhost`, pvesh's name
        // for the node it runs on (CONTRACT §1.2).
        let path_node = if h.name.is_empty() {
            "localhost".to_string()
        } else {
            h.name.clone()
        };
        let t = h.transport.clone();
        tasks.spawn(async move { (i, read_node_answers(t, path_node, reads).await) });
    }
    let mut answers = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (i, outs) = r.map_err(|e| TransportError::Io(e.to_string()))?;
        match outs {
            Ok(a) => {
                answers.insert(i, a);
            }
            // A node lost on the way is left out; the first node reads the
            // cluster for all, so without it nothing can be planned.
            Err(e) if i > 0 => {
                observed
                    .unreachable
                    .insert(handles[i].name.clone(), e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut free: BTreeMap<String, i64> = BTreeMap::new();
    // In handle order: the first node's cluster-wide answers come first.
    for (i, a) in answers {
        let mut state = match read_node(&mut handles[i], &a) {
            Ok(state) => state,
            // A node that answers nonsense or fails a read is left out like
            // one that cannot be reached; the first node reads the cluster
            // for all, so its failure stops the run.
            Err(e) if i > 0 => {
                observed
                    .unreachable
                    .insert(handles[i].name.clone(), e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        if i == 0 {
            free = read_cluster(plan, &a, &mut observed)?;
        }
        state.free_memory = free.get(&state.name).copied();
        observed.nodes.push(state);
    }
    read_configs(plan, handles, parallel, &mut observed).await?;
    probe_leftovers(plan, handles, &mut observed).await;
    let unreachable = &observed.unreachable;
    observed
        .nodes
        .retain(|n| !unreachable.contains_key(&n.name));
    Ok(observed)
}

/// The cluster-wide answers: every guest, shared storages, the next free id
/// and (when asked) each node's free memory.
fn read_cluster(
    plan: &ReadPlan,
    a: &Answers,
    observed: &mut Observed,
) -> Result<BTreeMap<String, i64>, ObserveError> {
    let resources = a.get(&Read::ClusterResources)?.stdout.as_bytes();
    observed.cluster_vms =
        obs::parse_cluster_vms(resources).map_err(|e| a.bad("/cluster/resources", e))?;
    observed.shared_storages =
        obs::parse_shared_storages(resources).map_err(|e| a.bad("/cluster/resources", e))?;
    observed.storage_facts =
        obs::parse_storages(resources).map_err(|e| a.bad("/cluster/resources", e))?;
    observed.inactive_storages = pvefleet_plan::snippets::parse_inactive_storages(resources);
    observed.lifecycle = pvefleet_plan::lifecycle_observed::parse_resources(resources)
        .map_err(|e| a.bad("/cluster/resources", e))?;
    if let Some(out) = a.ok(&Read::HaResources) {
        pvefleet_plan::lifecycle_observed::parse_ha_resources(
            out.stdout.as_bytes(),
            &mut observed.lifecycle,
        )
        .map_err(|e| a.bad("/cluster/ha/resources", e))?;
    }
    if let Some(out) = a.ok(&Read::NextId) {
        observed.next_id = obs::parse_next_id(out.stdout.as_bytes()).ok();
    }
    Ok(if plan.memory {
        obs::parse_node_memory(resources).unwrap_or_default()
    } else {
        BTreeMap::new()
    })
}

/// One node's own answers of the first stage: version, name (unless
/// configured), VMs, bridges, image storages and image paths.
fn read_node(h: &mut NodeHandle, a: &Answers) -> Result<NodeState, ObserveError> {
    let version = obs::parse_version(a.get(&Read::Version)?.stdout.as_bytes())
        .map_err(|e| a.bad("/version", e))?;
    if h.name.is_empty() {
        let nodes = a.get(&Read::Nodes)?;
        let v: serde_json::Value =
            serde_json::from_str(&nodes.stdout).map_err(|e| a.bad("/nodes", e))?;
        let names: Vec<String> = v
            .as_array()
            .map(|a| a.iter().filter_map(|n| obs::text(n.get("node"))).collect())
            .unwrap_or_default();
        match names.as_slice() {
            [one] => h.name = one.clone(),
            _ => return Err(a.bad("/nodes", "the host is part of a cluster; set 'node:' under 'proxmox:' to the node name of this host")),
        }
    }
    let name = h.name.clone();
    let mut state = NodeState {
        name: name.clone(),
        version: Some(version),
        ..NodeState::default()
    };
    state.vms = obs::parse_node_vms(&name, a.get(&Read::Vms)?.stdout.as_bytes())
        .map_err(|e| a.bad("/qemu", e))?;
    state.bridges = obs::parse_bridges(a.get(&Read::Network)?.stdout.as_bytes())
        .map_err(|e| a.bad("/network", e))?;
    for read in a.by_read.keys() {
        match read {
            // A missing storage is reported per VM by the planner.
            Read::StorageContent(s) => {
                if let Some(out) = a.ok(read) {
                    let vols = obs::parse_content(out.stdout.as_bytes())
                        .map_err(|e| a.bad("storage content", e))?;
                    state.storages.insert(s.clone(), vols);
                }
            }
            Read::ImagePath(volid) => {
                if let Some(out) = a.ok(read) {
                    state
                        .image_paths
                        .insert(volid.clone(), out.stdout.trim().to_string());
                }
            }
            _ => {}
        }
    }
    Ok(state)
}

/// The second stage: configurations of managed VMs and cloned templates,
/// in `parallel` round trips per node.
async fn read_configs(
    plan: &ReadPlan,
    handles: &[NodeHandle],
    parallel: usize,
    observed: &mut Observed,
) -> Result<(), ObserveError> {
    let wanted = plan.configs_of(observed);
    let mut tasks = tokio::task::JoinSet::new();
    for h in handles {
        if observed.unreachable.contains_key(&h.name) {
            continue;
        }
        let ids = on_node(&wanted, &h.name);
        if ids.is_empty() {
            continue;
        }
        for share in ids.chunks(ids.len().div_ceil(parallel.max(1))) {
            let ids = share.to_vec();
            let t = h.transport.clone();
            let name = h.name.clone();
            tasks.spawn(async move {
                let cmds: Vec<Vec<String>> = ids
                    .iter()
                    .map(|id| Command::Pvesh(Pvesh::vm_pending(&name, *id)).argv())
                    .collect();
                (name, ids, t.run_batch(&cmds, false).await)
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        let (name, ids, outs) = r.map_err(|e| TransportError::Io(e.to_string()))?;
        let read = outs.map_err(ObserveError::from).and_then(|outs| {
            let mut configs = Vec::new();
            for (id, o) in ids.iter().zip(outs) {
                if o.success() {
                    let c = obs::parse_pending(o.stdout.as_bytes()).map_err(|e| {
                        ObserveError::Command {
                            node: name.clone(),
                            what: "pending".into(),
                            detail: e.to_string(),
                        }
                    })?;
                    configs.push((*id, c));
                }
            }
            Ok(configs)
        });
        match read {
            Ok(configs) => {
                if let Some(state) = observed.node_mut(&name) {
                    state.configs.extend(configs);
                }
            }
            // As in the first stage, a cluster node is left out of this
            // run; a single host has nothing else to go on.
            Err(e) if plan.cluster => {
                observed.unreachable.insert(name.clone(), e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Asks each node whether anyone holds the config flock of the file's VMs
/// that look like an unfinished create (CONTRACT §19). Those nobody holds
/// are leftovers; a VM whose probe fails or is not answered stays as it is
/// (the planner then leaves it alone).
async fn probe_leftovers(plan: &ReadPlan, handles: &[NodeHandle], observed: &mut Observed) {
    let probes = plan.probes_of(observed);
    for h in handles {
        let ids = on_node(&probes, &h.name);
        if ids.is_empty() {
            continue;
        }
        let argvs: Vec<Vec<String>> = ids
            .iter()
            .map(|id| Command::LockProbe { vmid: *id }.argv())
            .collect();
        if let Ok(outs) = h.transport.run_concurrent(&argvs).await {
            for (id, out) in ids.iter().zip(outs) {
                if out.success() {
                    observed.leftovers.insert(*id);
                } else if out.exit == Some(1) {
                    // flock -n: another process holds the lock.
                    observed.busy.insert(*id);
                }
            }
        }
    }
}

/// The ids of the (node, vmid) pairs on `node`.
fn on_node(pairs: &[(String, VmId)], node: &str) -> Vec<VmId> {
    pairs
        .iter()
        .filter(|(n, _)| n == node)
        .map(|(_, id)| *id)
        .collect()
}
