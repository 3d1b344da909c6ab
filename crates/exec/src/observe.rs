//! Reading the nodes: a fixed number of round trips per node, whatever the
//! number of VMs (CONTRACT §12: one `/cluster/resources` for all guests).

use crate::script::StepOutput;
use crate::transport::{Transport, TransportError};
use pvefleet_config::{Desired, DiskFrom, ImageRef};
use pvefleet_model::{Command, Pvesh};
use pvefleet_plan::diff::{configs_needed, images_for_node};
use pvefleet_plan::observed::{self as obs, NodeState, Observed};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A node and how to reach it.
#[derive(Clone)]
pub struct NodeHandle {
    /// The Proxmox node name (resolved by [`observe`] when not configured).
    pub name: String,
    /// The transport.
    pub transport: Arc<Transport>,
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

fn argv(c: Command) -> Vec<String> {
    c.argv()
}

fn need(node: &str, what: &str, out: &StepOutput) -> Result<(), ObserveError> {
    if out.success() {
        Ok(())
    } else {
        Err(ObserveError::Command {
            node: node.into(),
            what: what.into(),
            detail: out.stderr.trim().to_string(),
        })
    }
}

fn bad(node: &str, what: &str, e: impl std::fmt::Display) -> ObserveError {
    ObserveError::Command {
        node: node.into(),
        what: what.into(),
        detail: e.to_string(),
    }
}

/// Reads every node in two stages: first everything about the node and
/// cluster, a fixed set of commands run at once in one round trip per node;
/// then one config read per managed VM, in `parallel` round trips per node
/// that each read their share in turn (so the node runs at most `parallel`
/// of them at once). `handles` get their node names filled in.
pub async fn observe(
    desired: &Desired,
    handles: &mut [NodeHandle],
    parallel: usize,
) -> Result<Observed, ObserveError> {
    let mut observed = Observed::default();
    // Stage 1, everything at once: version, the node's name (unless
    // configured), its VMs, bridges, image storages and image paths, and
    // once the cluster-wide views. Until the name is known, node paths use
    // `localhost`, pvesh's name for the node it runs on (CONTRACT §1.2).
    // Free memory only serves `node: auto`, the next free id only VMs
    // without `vmid` (and the image cache's templates).
    let want_memory = desired
        .vms
        .iter()
        .any(|v| v.node.as_deref() == Some("auto"));
    let want_next_id = desired
        .vms
        .iter()
        .any(|v| v.vmid.is_none() || v.disk_from != DiskFrom::Import);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, h) in handles.iter().enumerate() {
        let t = h.transport.clone();
        let known = (!h.name.is_empty()).then(|| h.name.clone());
        let path_node = known.clone().unwrap_or_else(|| "localhost".into());
        let imgs = images_for_node(desired, known.as_deref());
        let storages: Vec<String> = imgs
            .iter()
            .filter_map(|i| match i {
                ImageRef::Volume { storage, .. } => Some(storage.clone()),
                ImageRef::Path(_) => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // `import-from` takes a host path for iso volumes, and for import
        // volumes before PVE 8.3; resolve both, the planner picks.
        let paths: Vec<String> = imgs
            .iter()
            .filter(|i| matches!(i.content_type(), Some("iso" | "import")))
            .map(ImageRef::display)
            .collect();
        tasks.spawn(async move {
            let mut cmds = vec![
                argv(Command::Pvesh(Pvesh::version())),
                argv(Command::Pvesh(Pvesh::get_nodes())),
                argv(Command::Pvesh(Pvesh::node_vms(&path_node))),
                argv(Command::Pvesh(Pvesh::node_network(&path_node))),
            ];
            cmds.extend(
                storages
                    .iter()
                    .map(|s| argv(Command::Pvesh(Pvesh::storage_content(&path_node, s)))),
            );
            cmds.extend(
                paths
                    .iter()
                    .map(|p| argv(Command::PvesmPath { volid: p.clone() })),
            );
            if i == 0 {
                cmds.push(argv(Command::Pvesh(Pvesh::cluster_resources())));
                if want_next_id {
                    cmds.push(argv(Command::Pvesh(Pvesh::next_id())));
                }
            }
            (i, storages, paths, t.run_concurrent(&cmds).await)
        });
    }
    let mut answers = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (i, storages, paths, outs) = r.map_err(|e| TransportError::Io(e.to_string()))?;
        match outs {
            Ok(outs) => {
                answers.insert(i, (storages, paths, outs));
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
    for (i, (storages, paths, outs)) in answers {
        let host = handles[i].transport.describe();
        let mut state = match read_node(&mut handles[i], &storages, &paths, &outs) {
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
        let name = state.name.clone();
        if i == 0 {
            let base = 4 + storages.len() + paths.len();
            need(&host, "pvesh get /cluster/resources", &outs[base])?;
            let resources = outs[base].stdout.as_bytes();
            observed.cluster_vms = obs::parse_cluster_vms(resources)
                .map_err(|e| bad(&host, "/cluster/resources", e))?;
            observed.shared_storages = obs::parse_shared_storages(resources)
                .map_err(|e| bad(&host, "/cluster/resources", e))?;
            if want_memory {
                free = obs::parse_node_memory(resources).unwrap_or_default();
            }
            let next = base + 1;
            if want_next_id && outs[next].success() {
                observed.next_id = obs::parse_next_id(outs[next].stdout.as_bytes()).ok();
            }
        }
        state.free_memory = free.get(&name).copied();
        observed.nodes.push(state);
    }
    // Configurations of managed VMs and cloned templates.
    let wanted = configs_needed(desired, &observed);
    let mut tasks = tokio::task::JoinSet::new();
    for h in handles.iter() {
        if observed.unreachable.contains_key(&h.name) {
            continue;
        }
        let ids: Vec<_> = wanted
            .iter()
            .filter(|(n, _)| *n == h.name)
            .map(|(_, id)| *id)
            .collect();
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
                    .map(|id| argv(Command::Pvesh(Pvesh::vm_pending(&name, *id))))
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
                    let c = obs::parse_pending(o.stdout.as_bytes())
                        .map_err(|e| bad(&name, "pending", e))?;
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
            Err(e) if desired.cluster => {
                observed.unreachable.insert(name.clone(), e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    let unreachable = &observed.unreachable;
    observed
        .nodes
        .retain(|n| !unreachable.contains_key(&n.name));
    Ok(observed)
}

/// One node's own answers of the first stage: version, name (unless
/// configured), VMs, bridges, image storages and image paths.
fn read_node(
    h: &mut NodeHandle,
    storages: &[String],
    paths: &[String],
    outs: &[StepOutput],
) -> Result<NodeState, ObserveError> {
    let host = h.transport.describe();
    need(&host, "pvesh get /version", &outs[0])?;
    let version =
        obs::parse_version(outs[0].stdout.as_bytes()).map_err(|e| bad(&host, "/version", e))?;
    if h.name.is_empty() {
        need(&host, "pvesh get /nodes", &outs[1])?;
        let v: serde_json::Value =
            serde_json::from_str(&outs[1].stdout).map_err(|e| bad(&host, "/nodes", e))?;
        let names: Vec<String> = v
            .as_array()
            .map(|a| a.iter().filter_map(|n| obs::text(n.get("node"))).collect())
            .unwrap_or_default();
        match names.as_slice() {
            [one] => h.name = one.clone(),
            _ => return Err(bad(&host, "/nodes", "the host is part of a cluster; set 'node:' under 'proxmox:' to the node name of this host")),
        }
    }
    let name = h.name.clone();
    let mut state = NodeState {
        name: name.clone(),
        version: Some(version),
        ..NodeState::default()
    };
    need(&name, "pvesh get /nodes/{node}/qemu", &outs[2])?;
    state.vms = obs::parse_node_vms(&name, outs[2].stdout.as_bytes())
        .map_err(|e| bad(&name, "/qemu", e))?;
    need(&name, "pvesh get /nodes/{node}/network", &outs[3])?;
    state.bridges =
        obs::parse_bridges(outs[3].stdout.as_bytes()).map_err(|e| bad(&name, "/network", e))?;
    for (k, s) in storages.iter().enumerate() {
        let o = &outs[4 + k];
        // A missing storage is reported per VM by the planner.
        if o.success() {
            state.storages.insert(
                s.clone(),
                obs::parse_content(o.stdout.as_bytes())
                    .map_err(|e| bad(&name, "storage content", e))?,
            );
        }
    }
    for (k, p) in paths.iter().enumerate() {
        let o = &outs[4 + storages.len() + k];
        if o.success() {
            state
                .image_paths
                .insert(p.clone(), o.stdout.trim().to_string());
        }
    }
    Ok(state)
}
