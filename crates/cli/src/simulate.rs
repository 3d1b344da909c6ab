//! `--simulate`: the built-in emulated host in `./.pvefleet-sim`. It is
//! made from the file on first use and follows the file afterwards: nodes,
//! bridges, storages, images and `clone:` templates (by id) the file names
//! but the host lacks are added on each run, and said on stderr. What the
//! host has is never changed (an existing storage keeps its content types),
//! except its release with `--simulate-version`.

use crate::ui::Failure;
use crate::ExitStatus;
use pve_sim::init::{init, InitSpec};
use pve_sim::state::Root;
use pvefleet_config::{CloneRef, Desired, DiskSource, ImageRef};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The state directory of the simulated host.
pub fn root() -> PathBuf {
    PathBuf::from(".pvefleet-sim")
}

/// The emulated host's folder, absolute.
pub fn dir() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map(|d| d.join(root()))
        .map_err(|e| sim_failure(format!("cannot find the current folder: {e}")))
}

fn sim_failure(message: String) -> Failure {
    Failure::new(ExitStatus::Failed, "simulate", message).at(json!({"file": root()}))
}

/// What the file needs of a host: its nodes, bridges, storages and images.
fn spec_for(desired: &Desired) -> InitSpec {
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
        for bridge in pvefleet_plan::hardware::nics::bridges(vm) {
            if !spec.bridges.iter().any(|b| b == bridge) {
                spec.bridges.push(bridge.to_string());
            }
        }
        let storages = std::iter::once(&vm.storage).chain(vm.disks.iter().map(|d| &d.storage));
        for storage in storages {
            let kind = if storage.starts_with("local-")
                || storage.contains("lvm")
                || storage.contains("zfs")
            {
                "lvmthin"
            } else {
                "dir"
            };
            if !spec.storages.iter().any(|(s, _, _)| s == storage) && storage != "local" {
                spec.storages.push((storage.clone(), kind.into(), false));
            }
        }
        // A snippets storage the file names is a directory storage (with
        // every content type); `local` keeps a default install's types.
        if let Some(u) = &vm.user_data {
            if u.storage != "local" && !spec.storages.iter().any(|(s, _, _)| *s == u.storage) {
                spec.storages.push((u.storage.clone(), "dir".into(), false));
            }
        }
        // An image by URL is not on the host: it is downloaded (see `urls`).
        let by_url = vm.image_url.is_some();
        if let (DiskSource::Image(img), false) = (&vm.source, by_url) {
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
    spec
}

/// The release `X.Y` asks for, checked.
pub fn check_version(version: &str) -> Result<String, Failure> {
    pve_sim::init::pve_version(version).map_err(|e| {
        Failure::new(
            ExitStatus::Invalid,
            "simulate_version",
            format!("--simulate-version {e}"),
        )
        .hint("give a release from 7.0 to 9.x, e.g. 8.2")
    })
}

/// Makes the host from `desired` unless it exists, else adds what it lacks;
/// returns its folder and the folder of its `qm`/`pvesh` links.
pub fn ensure(desired: &Desired, version: Option<&str>) -> Result<(PathBuf, PathBuf), Failure> {
    if let Some(v) = version {
        check_version(v)?;
    }
    let dir = dir()?;
    let bin = dir.join("bin");
    let spec = spec_for(desired);
    let host = Root(dir.clone());
    if !dir.join("state.json").exists() {
        create(&host, desired, spec, version)?;
    } else {
        let spec = without_foreign_content(&host, spec);
        for added in pve_sim::init::extend(&host, &spec).map_err(sim_failure)? {
            tracing::info!("emulated host: added {added} (the file names it)");
        }
        if let Some(v) = version {
            if let Some(before) = pve_sim::init::set_version(&host, v).map_err(sim_failure)? {
                tracing::info!("emulated host: now runs PVE {v} (was {before})");
            }
        }
        templates(&host, desired, &spec.nodes[0]);
        pools_and_groups(&host, desired, &spec.nodes[0]);
    }
    urls(&host, desired);
    links(&bin)?;
    Ok((dir, bin))
}

/// The emulated host has no network: each image the file gives by URL is
/// served (`ROOT/urls.json`) with the checksum the file expects and a
/// cloud image's size, so that `apply --simulate` downloads it.
fn urls(host: &Root, desired: &Desired) {
    let path = host.0.join("urls.json");
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let before = all.len();
    for u in desired.vms.iter().filter_map(|v| v.image_url.as_ref()) {
        all.entry(u.url.clone())
            .or_insert_with(|| serde_json::json!({"sha256": u.sha256, "size": 629_145_600u64}));
    }
    if all.len() != before {
        let _ = std::fs::write(&path, serde_json::Value::Object(all).to_string());
    }
}

/// `spec` without the images an existing storage cannot hold: its content
/// types are never changed, so an `import` image on a storage without
/// `import` stays absent (and the plan says why), as on a real host.
fn without_foreign_content(host: &Root, mut spec: InitSpec) -> InitSpec {
    let Ok(st) = host.read() else { return spec };
    spec.images.retain(|(volid, _)| {
        let Some((storage, volname)) = volid.split_once(':') else {
            return true;
        };
        let content = volname.split('/').next().unwrap_or("iso");
        match st.storage(storage) {
            Some(s) if !s.content.iter().any(|c| c == content) => {
                tracing::info!(
                    "emulated host: storage {storage} does not hold {content} content, so {volid} is not added (its content types stay {})",
                    s.content.join(",")
                );
                false
            }
            _ => true,
        }
    });
    spec
}

/// Creates the host at `host` from the file.
fn create(
    host: &Root,
    desired: &Desired,
    spec: InitSpec,
    version: Option<&str>,
) -> Result<(), Failure> {
    let spec = match version {
        Some(v) => spec.with_version(v).map_err(sim_failure)?,
        None => spec,
    };
    init(host, &spec).map_err(sim_failure)?;
    tracing::info!(
        "emulated host: created in {} from the file (node(s) {}, PVE {})",
        root().display(),
        spec.nodes.join(", "),
        spec.settings.version
    );
    templates(host, desired, &spec.nodes[0]);
    pools_and_groups(host, desired, &spec.nodes[0]);
    Ok(())
}

/// The pools and HA groups the file names and the host lacks, made as an
/// admin would (`pvesh create /pools`, `ha-manager groupadd`), so the
/// examples run.
fn pools_and_groups(host: &Root, desired: &Desired, node: &str) {
    let Ok(st) = host.read() else { return };
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
    for vm in &desired.vms {
        let lc = &vm.lifecycle;
        if let Some(p) = lc.pool.as_deref().filter(|p| !st.pools.contains_key(*p)) {
            runs.push(("pvesh", words(&["create", "/pools", "--poolid", p])));
        }
        let group = lc.ha.as_ref().and_then(|h| h.group.as_deref());
        if let Some(g) = group.filter(|g| !st.ha_groups.contains(*g)) {
            runs.push(("ha-manager", words(&["groupadd", g, "--nodes", node])));
        }
    }
    runs.dedup();
    for (program, args) in runs {
        let (exit, _, _) = pve_sim::run(host.clone(), Some(node.to_string()), program, &args);
        if exit == 0 {
            tracing::info!(
                "emulated host: ran {program} {} (the file names it)",
                args.join(" ")
            );
        }
    }
}

/// Template VMs that `clone:` names by id and the host lacks, so the
/// examples run.
fn templates(host: &Root, desired: &Desired, node: &str) {
    let existing: Vec<u32> = host
        .read()
        .map(|st| st.vms.keys().copied().collect())
        .unwrap_or_default();
    let mut made: Vec<u32> = Vec::new();
    for vm in &desired.vms {
        let DiskSource::Clone(CloneRef::Id(id)) = &vm.source else {
            continue;
        };
        if existing.contains(&id.get()) || made.contains(&id.get()) {
            continue;
        }
        made.push(id.get());
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
        let node = Some(node.to_string());
        let _ = pve_sim::run(host.clone(), node.clone(), "qm", &create);
        let _ = pve_sim::run(
            host.clone(),
            node,
            "qm",
            &["template".to_string(), id.clone()],
        );
        tracing::info!("emulated host: added template VM {id} (the file clones it)");
    }
}

/// The `qm`/`pvesh`/`pvesm`/`pveversion` links to this binary.
fn links(bin: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(bin)
        .map_err(|e| sim_failure(format!("cannot create {}: {e}", bin.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| sim_failure(format!("cannot find this program's path: {e}")))?;
    for p in pve_sim::PROGRAMS {
        let link = bin.join(p);
        if std::fs::read_link(&link).is_ok_and(|t| t == exe) {
            continue;
        }
        let _ = std::fs::remove_file(&link);
        match symlink(&exe, &link) {
            // Another run made it meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            r => r.map_err(|e| sim_failure(format!("cannot link {}: {e}", link.display())))?,
        }
    }
    Ok(())
}

/// Makes a fresh host from `desired` (after `sim reset FILE`).
pub fn rebuild(desired: &Desired, version: Option<&str>) -> Result<PathBuf, Failure> {
    if let Some(v) = version {
        check_version(v)?;
    }
    let dir = dir()?;
    create(&Root(dir.clone()), desired, spec_for(desired), version)?;
    links(&dir.join("bin"))?;
    Ok(dir)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
