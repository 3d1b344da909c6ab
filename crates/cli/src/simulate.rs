//! `--simulate`: the built-in emulated host in `./.pvefleet-sim`, created on
//! first use with the file's nodes, storages, bridges and images.

use pve_sim::init::{init, InitSpec};
use pve_sim::state::Root;
use pvefleet_config::{Desired, DiskSource, ImageRef};
use std::path::{Path, PathBuf};

/// The state directory of the simulated host.
pub fn root() -> PathBuf {
    PathBuf::from(".pvefleet-sim")
}

/// Creates the simulated host unless it exists; returns its folder and the
/// folder of its `qm`/`pvesh` links.
pub fn ensure(desired: &Desired) -> Result<(PathBuf, PathBuf), String> {
    let dir = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join(root());
    let bin = dir.join("bin");
    if !dir.join("state.json").exists() {
        let nodes = if desired.cluster {
            desired.node_names()
        } else {
            vec![desired
                .nodes
                .first()
                .and_then(|n| n.name.clone())
                .unwrap_or_else(|| "pve".into())]
        };
        let mut spec = InitSpec {
            nodes,
            ..InitSpec::default()
        };
        for vm in &desired.vms {
            if !spec.bridges.contains(&vm.bridge) {
                spec.bridges.push(vm.bridge.clone());
            }
            let kind = if vm.storage.starts_with("local-")
                || vm.storage.contains("lvm")
                || vm.storage.contains("zfs")
            {
                "lvmthin"
            } else {
                "dir"
            };
            if !spec.storages.iter().any(|(s, _, _)| *s == vm.storage) && vm.storage != "local" {
                spec.storages.push((vm.storage.clone(), kind.into(), false));
            }
            if let DiskSource::Image(img) = &vm.source {
                let volid = match img {
                    ImageRef::Volume { .. } => Some(img.display()),
                    ImageRef::Path(p) => pve_sim::init::parse_image(p).ok().map(|(v, _)| v),
                };
                if let Some(v) = volid {
                    if let Some((s, _)) = v.split_once(':') {
                        if !spec.storages.iter().any(|(x, _, _)| x == s)
                            && s != "local"
                            && s != "local-lvm"
                        {
                            spec.storages.push((s.to_string(), "dir".into(), false));
                        }
                    }
                    if !spec.images.iter().any(|(x, _)| *x == v) {
                        spec.images.push((v, 2 << 30));
                    }
                }
            }
        }
        init(&Root(dir.clone()), &spec)?;
        // Template VMs that `clone:` names by id, so the examples run.
        for vm in &desired.vms {
            if let DiskSource::Clone(pvefleet_config::CloneRef::Id(id)) = &vm.source {
                let node = spec.nodes[0].clone();
                let root = Root(dir.clone());
                let id = id.to_string();
                let name = ["template-", &id].concat();
                let disk = [vm.storage.as_str(), ":2"].concat();
                let create: Vec<String> = [
                    "create",
                    &id,
                    "--name",
                    &name,
                    "--scsihw",
                    "virtio-scsi-pci",
                    "--scsi0",
                    &disk,
                    "--boot",
                    "order=scsi0",
                    "--ostype",
                    "l26",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let _ = pve_sim::run(root.clone(), Some(node.clone()), "qm", &create);
                let _ = pve_sim::run(root, Some(node), "qm", &["template".to_string(), id]);
            }
        }
    }
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for p in pve_sim::PROGRAMS {
        let link = bin.join(p);
        let _ = std::fs::remove_file(&link);
        symlink(&exe, &link).map_err(|e| {
            [
                "cannot link ",
                &link.display().to_string(),
                ": ",
                &e.to_string(),
            ]
            .concat()
        })?;
    }
    Ok((dir, bin))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
