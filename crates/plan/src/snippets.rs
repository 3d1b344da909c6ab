//! Custom cloud-init data (`user_data:`) as a snippet file on a storage,
//! referenced by `--cicustom vendor=STORAGE:snippets/NAME` (or `user=`).
//!
//! Host facts relied on (CONTRACT §3.3, §13; qemu-server
//! `PVE/QemuServer/Cloudinit.pm`):
//! - `cicustom` names snippet volumes (`STORAGE:snippets/FILE`) of a storage
//!   with the `snippets` content type; a dir storage keeps them in
//!   `<path>/snippets/` (`local`: `/var/lib/vz/snippets/`). A default
//!   installation's `local` has `iso,vztmpl,backup` and no `snippets`.
//! - `pvesm path STORAGE:snippets/FILE` gives the file's host path without
//!   the file having to exist: the snippet is written there.
//! - The cloud-init drive is generated when the VM starts, so a changed
//!   snippet reaches the guest at its next start. The instance-id is the
//!   SHA-1 of the user and network data only (`nocloud_gen_metadata`): a
//!   new user-data snippet is a new instance, new vendor data is not.
//!
//! The snippet is named by its content (`pvefleet-<16 hex of sha256>.yaml`):
//! VMs with the same data share it, and a change gives a new name, so a
//! file in use is never rewritten.

use crate::destroy::{DestroyInput, DestroyPlan};
use crate::diff::Planner;
use crate::observed::{ClusterVm, NodeState, PveVersion, StorageOnNode, VmConfig};
use crate::problem::{PlanNote, PlanProblem};
use crate::types::{Action, Change, Step, Upload, VmPlan};
use pvefleet_model::cloudinit::{UserData, UserDataMode, SNIPPET_PREFIX};
use pvefleet_model::spec::{Desired, VmSpec};
use pvefleet_model::{Command, Qm, VmId, VmStatus};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// The snippet file's name for `text`: `pvefleet-<16 hex>.yaml`.
pub fn snippet_name(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{SNIPPET_PREFIX}{hex}.yaml")
}

/// The snippet's volume id, `STORAGE:snippets/NAME`.
pub fn snippet_volid(u: &UserData) -> String {
    format!("{}:snippets/{}", u.storage, snippet_name(&u.text))
}

/// The `cicustom` value the spec asks for: `vendor=VOLID` or `user=VOLID`.
pub fn cicustom(spec: &VmSpec) -> Option<String> {
    spec.user_data
        .as_ref()
        .map(|u| format!("{}={}", u.mode.item(), snippet_volid(u)))
}

/// `cicustom` with its items in key order, as compared.
pub fn sorted_cicustom(value: &str) -> String {
    let mut items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect();
    items.sort_unstable();
    items.join(",")
}

/// The `cicustom` to set: pvefleet's item `want` (`vendor=…` or `user=…`)
/// beside the items of `have` that are not pvefleet's (a `network=` or
/// `meta=` an admin set, which Proxmox counts into the instance-id), in
/// key order.
pub fn merged_cicustom(have: Option<&str>, want: &str) -> String {
    let owned = want.split_once('=').map_or(want, |(k, _)| k);
    let mut items: Vec<&str> = have
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|i| {
            i.split_once('=')
                .is_some_and(|(k, v)| k != owned && !is_fleet_snippet(v))
        })
        .collect();
    items.push(want);
    items.sort_unstable();
    items.join(",")
}

/// The volume ids a `cicustom` value names (`user=a:snippets/x,vendor=...`).
pub fn cicustom_volids(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|item| item.split_once('=').map(|(_, v)| v.trim().to_string()))
        .filter(|v| !v.is_empty())
        .collect()
}

/// True for a snippet volume pvefleet wrote (`STORAGE:snippets/pvefleet-…`).
pub fn is_fleet_snippet(volid: &str) -> bool {
    volid
        .split_once(':')
        .and_then(|(_, name)| name.strip_prefix("snippets/"))
        .is_some_and(|f| f.starts_with(SNIPPET_PREFIX) && !f.contains('/'))
}

/// The storages `/cluster/resources` lists with a `status` other than
/// `available` (not active on that node), by node; nothing for an answer
/// that is not a list.
pub fn parse_inactive_storages(bytes: &[u8]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    for i in v.as_array().into_iter().flatten() {
        let field = |k: &str| i.get(k).and_then(serde_json::Value::as_str);
        if field("type") != Some("storage") {
            continue;
        }
        if let (Some(node), Some(storage), Some(status)) =
            (field("node"), field("storage"), field("status"))
        {
            if status != "available" {
                out.entry(node.to_string())
                    .or_default()
                    .insert(storage.to_string());
            }
        }
    }
    out
}

/// The snippet volumes VMs may need on a node
/// ([`crate::reads::vms_for_node`]), whose host paths are read with `pvesm
/// path`.
pub fn snippet_volids(desired: &Desired, node: Option<&str>) -> BTreeSet<String> {
    crate::reads::vms_for_node(desired, node)
        .filter_map(|s| s.user_data.as_ref().map(snippet_volid))
        .collect()
}

impl Planner<'_> {
    /// Checks the snippet's storage on `node` and adds the snippet's upload
    /// (written to its host path) to `vp`; nothing without `user_data`.
    pub(crate) fn snippet_upload(
        &mut self,
        spec: &VmSpec,
        node: &str,
        vp: &mut VmPlan,
    ) -> Result<(), PlanProblem> {
        let Some(u) = &spec.user_data else {
            return Ok(());
        };
        match self.input.observed.storage_on(node, &u.storage) {
            StorageOnNode::Missing => {
                return Err(PlanProblem::SnippetsStorageMissing {
                    storage: u.storage.clone(),
                    node: node.to_string(),
                })
            }
            StorageOnNode::Present(f) if !f.holds("snippets") => {
                return Err(PlanProblem::SnippetsNotEnabled {
                    storage: u.storage.clone(),
                    node: node.to_string(),
                    content: f.content.clone().unwrap_or_default(),
                })
            }
            _ => {}
        }
        let inactive = self.input.observed.inactive_storages.get(node);
        if inactive.is_some_and(|s| s.contains(&u.storage)) {
            return Err(PlanProblem::SnippetsStorageInactive {
                storage: u.storage.clone(),
                node: node.to_string(),
            });
        }
        let volid = snippet_volid(u);
        let dest = self
            .node_state(node)
            .and_then(|n| n.image_paths.get(&volid))
            .filter(|p| p.starts_with('/'))
            .cloned()
            .ok_or_else(|| PlanProblem::SnippetPathUnknown {
                volid: volid.clone(),
                node: node.to_string(),
            })?;
        let found = self
            .plan
            .uploads
            .iter()
            .position(|x| x.node == node && x.install_to.as_deref() == Some(dest.as_str()));
        let i = match found {
            Some(i) => i,
            None => {
                // The same data for two storages: two files in the run's
                // folder.
                let name = snippet_name(&u.text);
                let taken = self
                    .plan
                    .uploads
                    .iter()
                    .any(|x| x.node == node && x.file_name == name);
                self.plan.uploads.push(Upload {
                    node: node.to_string(),
                    file_name: if taken {
                        format!("{}-{name}", u.storage)
                    } else {
                        name
                    },
                    content: u.text.clone(),
                    install_to: Some(dest),
                });
                self.plan.uploads.len() - 1
            }
        };
        if !vp.uploads.contains(&i) {
            vp.uploads.push(i);
        }
        Ok(())
    }

    /// True when the snippet's storage was listed on `node` with the
    /// `snippets` content type and without the snippet.
    fn snippet_missing(&self, u: &UserData, node: &str) -> bool {
        let observed = self.input.observed;
        let enabled = match observed.storage_on(node, &u.storage) {
            StorageOnNode::Present(f) => f.holds("snippets"),
            _ => false,
        };
        let volid = snippet_volid(u);
        enabled
            && self
                .node_state(node)
                .and_then(|n| n.storages.get(&u.storage))
                .is_some_and(|list| !list.iter().any(|v| v.volid == volid))
    }

    /// The `cicustom` part of an update: the new snippet when the value
    /// changed (the `qm set` already carries it), or `--delete cicustom`
    /// when the file no longer has `user_data` and the VM still points at
    /// one of pvefleet's snippets (a `cicustom` set by hand is left alone).
    pub(crate) fn cicustom_change(
        &mut self,
        spec: &VmSpec,
        cfg: &VmConfig,
        node: &str,
        vp: &mut VmPlan,
        set: &mut Step,
    ) -> Result<(), PlanProblem> {
        if let Some(u) = &spec.user_data {
            if vp.changes.iter().any(|c| c.key == "cicustom") {
                self.snippet_upload(spec, node, vp)?;
                vp.notes.push(PlanNote::UserDataNextBoot {
                    vendor: u.mode == UserDataMode::Vendor,
                });
            } else if self.snippet_missing(u, node) {
                // The VM points at it, but the storage no longer lists it:
                // the next start would fail (`can't find file`).
                self.snippet_upload(spec, node, vp)?;
                vp.changes.push(Change {
                    key: "snippet".into(),
                    from: Some("(missing)".into()),
                    to: Some(snippet_volid(u)),
                });
            }
            return Ok(());
        }
        let Some(have) = cfg.effective("cicustom") else {
            return Ok(());
        };
        if !cicustom_volids(have).iter().any(|v| is_fleet_snippet(v)) {
            return Ok(());
        }
        // The items that are not pvefleet's stay (an admin's `network=`).
        let kept: Vec<&str> = have
            .split(',')
            .map(str::trim)
            .filter(|i| i.split_once('=').is_some_and(|(_, v)| !is_fleet_snippet(v)))
            .collect();
        let to = (!kept.is_empty()).then(|| kept.join(","));
        if let Command::Qm(Qm::Set {
            options, delete, ..
        }) = &mut set.command
        {
            match &to {
                Some(v) => options.push("cicustom", v.clone()),
                None => delete.push("cicustom".into()),
            }
        }
        vp.changes.push(Change {
            key: "cicustom".into(),
            from: Some(have.to_string()),
            to,
        });
        Ok(())
    }
}

/// After a `cicustom` change on a running VM of PVE 7.3 or later, `qm
/// cloudinit update`: Proxmox regenerates the cloud-init drive at once
/// (API `cloudinit_update`, "Regenerate and change cloudinit config
/// drive"), so the guest reads the new data at its next boot, a reboot
/// from inside included. Otherwise the drive is made at the next `qm
/// start` (CONTRACT §6: `generating cloud-init ISO` on every start).
pub(crate) fn refresh_step(existing: &ClusterVm, version: PveVersion, vp: &mut VmPlan) {
    let changed = vp
        .changes
        .iter()
        .any(|c| c.key == "cicustom" && c.to.is_some());
    let running = existing.status.as_ref().is_some_and(VmStatus::is_up);
    if changed && running && version.at_least(7, 3) {
        vp.steps.push(Step::exit(Command::Qm(Qm::CloudinitUpdate {
            vmid: existing.vmid,
        })));
    }
}

/// The host path of snippet `volid` on `node`: as `pvesm path` gave it, or
/// in the folder where it gave another snippet of the same storage.
fn known_path(node: &NodeState, volid: &str) -> Option<String> {
    if let Some(p) = node.image_paths.get(volid).filter(|p| p.starts_with('/')) {
        return Some(p.clone());
    }
    let (storage, name) = volid.split_once(":snippets/")?;
    node.image_paths.iter().find_map(|(v, p)| {
        let (s, other) = v.split_once(":snippets/")?;
        let dir = p.strip_suffix(other)?;
        (s == storage && p.starts_with('/') && dir.ends_with('/')).then(|| [dir, name].concat())
    })
}

/// Adds to `destroy` the removal of the snippets of the file's destroyed
/// VMs that no remaining VM of the read nodes references, managed or not
/// (`destroy` reads every VM's configuration when the file has
/// `user_data`, [`crate::reads::ReadPlan::every_vm`]), and, on a shared
/// storage, only when every node with VMs was read: one
/// `rm -f` per node after the last destroy there. Only `pvefleet-*`
/// snippets whose host path was read are removed.
pub fn remove_unused(plan: &mut DestroyPlan, input: DestroyInput<'_>) {
    let observed = input.observed;
    let going: BTreeSet<VmId> = plan
        .vms
        .iter()
        .chain(&plan.caches)
        .filter(|v| v.action == Action::Destroy)
        .filter_map(|v| v.vmid)
        .collect();
    let in_use: BTreeSet<String> = observed
        .nodes
        .iter()
        .flat_map(|n| n.configs.iter())
        .filter(|(id, _)| !going.contains(id))
        .filter_map(|(_, c)| c.effective("cicustom"))
        .flat_map(cicustom_volids)
        .collect();
    let unread_nodes = observed
        .cluster_vms
        .iter()
        .any(|v| observed.node(&v.node).is_none());
    // (node, path) of each snippet to remove, and the last VM there.
    let mut remove: Vec<(String, String)> = Vec::new();
    let mut last: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, vp) in plan.vms.iter().enumerate() {
        if vp.action != Action::Destroy {
            continue;
        }
        last.insert(vp.node.clone(), i);
        let Some(node) = observed.node(&vp.node) else {
            continue;
        };
        // The file's snippet, and the ones the VM points at (older data).
        let mut volids: Vec<String> = input
            .desired
            .vms
            .iter()
            .filter(|s| s.name == vp.name)
            .filter_map(|s| s.user_data.as_ref().map(snippet_volid))
            .collect();
        if let Some(c) = vp.vmid.and_then(|id| node.configs.get(&id)) {
            volids.extend(
                c.effective("cicustom")
                    .map(cicustom_volids)
                    .unwrap_or_default(),
            );
        }
        for volid in volids {
            if in_use.contains(&volid) || !is_fleet_snippet(&volid) {
                continue;
            }
            // A shared storage's snippet may serve VMs of nodes this run
            // did not read: it stays unless every node was read.
            let storage = volid.split(':').next().unwrap_or_default();
            if observed.shared_storages.contains(storage) && unread_nodes {
                continue;
            }
            if let Some(path) = known_path(node, &volid) {
                let item = (vp.node.clone(), path);
                if !remove.contains(&item) {
                    remove.push(item);
                }
            }
        }
    }
    for (node, i) in last {
        let paths: Vec<String> = remove
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, p)| p.clone())
            .collect();
        if let (false, Some(vp)) = (paths.is_empty(), plan.vms.get_mut(i)) {
            vp.steps.push(Step::exit(Command::RemoveFiles { paths }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_content() {
        let a = snippet_name("#cloud-config\na: 1\n");
        assert!(a.starts_with("pvefleet-") && a.ends_with(".yaml"), "{a}");
        assert_eq!(a.len(), "pvefleet-".len() + 16 + ".yaml".len());
        assert_eq!(a, snippet_name("#cloud-config\na: 1\n"));
        assert_ne!(a, snippet_name("#cloud-config\na: 2\n"));
    }

    #[test]
    fn fleet_snippets() {
        assert!(is_fleet_snippet("local:snippets/pvefleet-0123.yaml"));
        assert!(!is_fleet_snippet("local:snippets/mine.yaml"));
        assert!(!is_fleet_snippet("local:iso/pvefleet-x.img"));
        assert_eq!(
            cicustom_volids("user=local:snippets/u.yaml,vendor=nas:snippets/v.yaml"),
            vec!["local:snippets/u.yaml", "nas:snippets/v.yaml"]
        );
    }
}
