//! `pve-sim init ROOT ...` (create a host or cluster) and `pve-sim state ROOT`.

use crate::qm::parse_size;
use crate::schema::Failure;
use crate::state::{now_ms, NodeDef, Root, Settings, State, StorageDef, Volume};
use serde_json::json;
use std::collections::BTreeMap;

/// What `init` builds.
#[derive(Clone, Debug)]
pub struct InitSpec {
    /// Node names.
    pub nodes: Vec<String>,
    /// `(id, type, shared)`.
    pub storages: Vec<(String, String, bool)>,
    /// Content types per storage id, when not the type's default.
    pub content: Vec<(String, Vec<String>)>,
    /// `(volid, size)`.
    pub images: Vec<(String, u64)>,
    /// Bridges on every node.
    pub bridges: Vec<String>,
    /// Custom CPU models (`custom-NAME` for `--cpu`), without the prefix.
    pub cpu_models: Vec<String>,
    /// Settings.
    pub settings: Settings,
}

impl Default for InitSpec {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            storages: Vec::new(),
            content: Vec::new(),
            images: Vec::new(),
            bridges: Vec::new(),
            cpu_models: Vec::new(),
            settings: Settings {
                version: "8.4.1".into(),
                latency_ms: 0,
                slots: 8,
                import_mbps: 0,
                agent_after_ms: 0,
                agent_ping_ms: 3000,
                rrd_lag_ms: 0,
                alloc_ms: 0,
                thin_overprovisioned: None,
                cfs_lock_expiry_ms: 120_000,
            },
        }
    }
}

/// The content types of a storage created without an explicit list. The
/// installer's `local` (dir) holds `iso,vztmpl,backup`, plus `import` from
/// the PVE 9.0 installer on, and never `images` or `snippets` (CONTRACT
/// §13, §18); `local-lvm` and other block storages hold `images,rootdir`.
/// Other dir-like storages defined without a list hold every type, so a
/// test host can keep images and ISOs on one storage.
fn content_for(id: &str, kind: &str, version: &str) -> Vec<String> {
    let list: &[&str] = match kind {
        "dir" if id == "local" && crate::state::version_at_least(version, 9, 0) => {
            &["iso", "vztmpl", "backup", "import"]
        }
        "dir" if id == "local" => &["iso", "vztmpl", "backup"],
        "dir" | "nfs" | "cifs" | "btrfs" => {
            &["iso", "import", "images", "snippets", "vztmpl", "backup"]
        }
        _ => &["images", "rootdir"],
    };
    list.iter().map(|s| s.to_string()).collect()
}

/// The pve-manager version a host of release `X.Y` reports (a full
/// version such as `8.2.4` or `7.1-10` is kept). pve-sim models PVE 7.0
/// to 9.x; the patch levels are plausible releases, not significant.
pub fn pve_version(v: &str) -> Result<String, String> {
    let mut it = v.split(['.', '-']);
    let major: Option<u32> = it.next().and_then(|x| x.parse().ok());
    let minor: Option<u32> = it.next().and_then(|x| x.parse().ok());
    let patch = it.next();
    let (Some(major), Some(minor)) = (major, minor) else {
        return Err(["version '", v, "' is not X.Y or X.Y.Z"].concat());
    };
    if !(7..=9).contains(&major) || it.next().is_some() {
        return Err(["version '", v, "': pve-sim models PVE 7.0 to 9.x"].concat());
    }
    if let Some(p) = patch {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(["version '", v, "' is not X.Y or X.Y.Z"].concat());
        }
        return Ok(v.to_string());
    }
    // PVE 7 wrote pve-manager versions as X.Y-N.
    let full = match (major, minor) {
        (7, 0) => "7.0-11".to_string(),
        (7, 1) => "7.1-10".to_string(),
        (7, 2) => "7.2-7".to_string(),
        (7, 3) => "7.3-6".to_string(),
        (7, _) => [v, "-17"].concat(),
        (8, 4) => "8.4.1".to_string(),
        _ => [v, ".2"].concat(),
    };
    Ok(full)
}

impl InitSpec {
    /// A host of PVE release `version` (`7.1`, `8.2`, `9.0`, or a full
    /// pve-manager version): what `pveversion` reports and what the
    /// version-dependent behaviours follow.
    pub fn with_version(mut self, version: &str) -> Result<Self, String> {
        self.settings.version = pve_version(version)?;
        Ok(self)
    }
}

/// Splits `local:iso/x.img:2G` or `/var/lib/vz/template/iso/x.img:2G` into volid and size.
pub fn parse_image(arg: &str) -> Result<(String, u64), String> {
    let (spec, size) = match arg.rsplit_once(':') {
        Some((a, s)) if parse_size(s).is_some() && a.contains(['/', ':']) => {
            (a, parse_size(s).unwrap_or(2 << 30))
        }
        _ => (arg, 2u64 << 30),
    };
    if let Some(rest) = spec.strip_prefix("/var/lib/vz/template/iso/") {
        return Ok((["local:iso/", rest].concat(), size));
    }
    if let Some(rest) = spec.strip_prefix("/var/lib/vz/import/") {
        return Ok((["local:import/", rest].concat(), size));
    }
    if spec.starts_with('/') {
        return Err([
            "image path '",
            spec,
            "' must lie under /var/lib/vz/template/iso/ or /var/lib/vz/import/",
        ]
        .concat());
    }
    if !spec.contains(':') {
        return Err(["'", spec, "' is not a volume id"].concat());
    }
    Ok((spec.to_string(), size))
}

/// Creates ROOT with the given spec (replacing any previous state).
pub fn init(root: &Root, spec: &InitSpec) -> Result<(), String> {
    let mut spec = spec.clone();
    if spec.nodes.is_empty() {
        spec.nodes.push("pve".into());
    }
    if spec.bridges.is_empty() {
        spec.bridges.push("vmbr0".into());
    }
    for (id, kind) in [("local", "dir"), ("local-lvm", "lvmthin")] {
        if !spec.storages.iter().any(|(s, _, _)| s == id) {
            spec.storages.insert(0, (id.into(), kind.into(), false));
        }
    }
    std::fs::create_dir_all(&root.0).map_err(|e| e.to_string())?;
    let storages: Vec<StorageDef> = spec
        .storages
        .iter()
        .map(|(id, kind, shared)| StorageDef {
            id: id.clone(),
            kind: kind.clone(),
            content: spec
                .content
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| content_for(id, kind, &spec.settings.version)),
            shared: *shared,
        })
        .collect();
    let mut st = State {
        settings: spec.settings.clone(),
        nodes: spec
            .nodes
            .iter()
            .map(|n| NodeDef {
                name: n.clone(),
                bridges: spec.bridges.clone(),
                memory: 64u64 << 30,
            })
            .collect(),
        storages,
        volumes: Vec::new(),
        vms: BTreeMap::new(),
        cpu_models: spec.cpu_models.clone(),
        fault_counts: BTreeMap::new(),
        cfs_locks: BTreeMap::new(),
        pools: BTreeMap::new(),
        ha_resources: BTreeMap::new(),
        ha_groups: Default::default(),
    };
    for (volid, size) in &spec.images {
        let (storage, volname) = volid.split_once(':').ok_or("bad volid")?;
        let sdef = st.storage(storage).cloned().ok_or_else(|| {
            [
                "storage '",
                storage,
                "' is not defined (add --storage ",
                storage,
                ":dir)",
            ]
            .concat()
        })?;
        let content = volname.split('/').next().unwrap_or("iso").to_string();
        let format = if content == "iso" {
            "iso".to_string()
        } else {
            volname.rsplit('.').next().unwrap_or("raw").to_string()
        };
        let holders: Vec<String> = if sdef.shared {
            vec![spec.nodes[0].clone()]
        } else {
            spec.nodes.clone()
        };
        for node in holders {
            let vol = Volume {
                storage: storage.into(),
                node,
                volname: volname.into(),
                size: *size,
                content: content.clone(),
                format: format.clone(),
                vmid: None,
                ctime: now_ms() / 1000,
            };
            let path = root.volume_path(&st, &vol);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
            }
            std::fs::File::create(&path)
                .and_then(|f| f.set_len(*size))
                .map_err(|e| e.to_string())?;
            st.volumes.push(vol);
        }
    }
    let _ = std::fs::remove_file(root.join("journal.jsonl"));
    root.save_unlocked(&st).map_err(|f| f.stderr)
}

/// Adds to the existing host at ROOT what `spec` names and the host lacks:
/// nodes, bridges, storages (with their type's default content) and image
/// volumes. Nothing that exists is changed: an existing storage keeps its
/// type and content types, an existing volume its size. Returns one line
/// per addition, e.g. `storage nfs1 (dir)` or `image local:iso/x.img on pve`.
pub fn extend(root: &Root, spec: &InitSpec) -> Result<Vec<String>, String> {
    root.update(|st| {
        let mut added = Vec::new();
        for name in &spec.nodes {
            if st.node(name).is_none() {
                let mut bridges = st
                    .nodes
                    .first()
                    .map(|n| n.bridges.clone())
                    .unwrap_or_default();
                for b in &spec.bridges {
                    if !bridges.contains(b) {
                        bridges.push(b.clone());
                    }
                }
                if bridges.is_empty() {
                    bridges.push("vmbr0".into());
                }
                st.nodes.push(NodeDef {
                    name: name.clone(),
                    bridges,
                    memory: 64u64 << 30,
                });
                added.push(["node ", name].concat());
            }
        }
        for node in &mut st.nodes {
            for b in &spec.bridges {
                if !node.bridges.contains(b) {
                    node.bridges.push(b.clone());
                    added.push(["bridge ", b, " on ", &node.name].concat());
                }
            }
        }
        for (id, kind, shared) in &spec.storages {
            if st.storage(id).is_none() {
                let content = spec
                    .content
                    .iter()
                    .find(|(s, _)| s == id)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_else(|| content_for(id, kind, &st.settings.version));
                st.storages.push(StorageDef {
                    id: id.clone(),
                    kind: kind.clone(),
                    content,
                    shared: *shared,
                });
                added.push(["storage ", id, " (", kind, ")"].concat());
            }
        }
        for (volid, size) in &spec.images {
            let (storage, volname) = volid
                .split_once(':')
                .ok_or_else(|| Failure::die(["'", volid, "' is not a volume id"].concat()))?;
            let Some(sdef) = st.storage(storage).cloned() else {
                return Err(Failure::die(
                    ["storage '", storage, "' is not defined"].concat(),
                ));
            };
            let content = volname.split('/').next().unwrap_or("iso").to_string();
            let format = if content == "iso" {
                "iso".to_string()
            } else {
                volname.rsplit('.').next().unwrap_or("raw").to_string()
            };
            let holders: Vec<String> = if sdef.shared {
                st.nodes.iter().take(1).map(|n| n.name.clone()).collect()
            } else {
                st.nodes.iter().map(|n| n.name.clone()).collect()
            };
            for node in holders {
                if st.find_volume(&node, volid).is_some() {
                    continue;
                }
                let vol = Volume {
                    storage: storage.into(),
                    node: node.clone(),
                    volname: volname.into(),
                    size: *size,
                    content: content.clone(),
                    format: format.clone(),
                    vmid: None,
                    ctime: now_ms() / 1000,
                };
                let path = root.volume_path(st, &vol);
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p).map_err(|e| Failure::die(e.to_string()))?;
                }
                std::fs::File::create(&path)
                    .and_then(|f| f.set_len(*size))
                    .map_err(|e| Failure::die(e.to_string()))?;
                st.volumes.push(vol);
                added.push(["image ", volid, " on ", &node].concat());
            }
        }
        Ok(added)
    })
    .map_err(|f| f.stderr.trim_end().to_string())
}

/// Makes the host at ROOT run PVE release `version` (as [`pve_version`]
/// spells it). Returns the version it ran before when that differs.
pub fn set_version(root: &Root, version: &str) -> Result<Option<String>, String> {
    let full = pve_version(version)?;
    root.update(|st| {
        if st.settings.version == full {
            return Ok(None);
        }
        Ok(Some(std::mem::replace(&mut st.settings.version, full)))
    })
    .map_err(|f| f.stderr.trim_end().to_string())
}

/// `pve-sim init ROOT [OPTIONS]`.
pub fn init_cli(args: &[String]) -> i32 {
    let Some(root) = args.first() else {
        eprintln!("usage: pve-sim init ROOT [--node NAME]... [--storage ID:TYPE[:shared][:CONTENT+...]]... [--image VOLID[:SIZE]]... [--bridge NAME]... [--cpu-model NAME]... [--version X.Y[.Z]] [--latency-ms N] [--slots N] [--import-mbps N] [--agent-after-ms N] [--agent-ping-ms N] [--rrd-lag-ms N] [--alloc-ms N] [--thin-overprovisioned [GIB]] [--cfs-lock-expiry-ms N]");
        return 2;
    };
    let mut spec = InitSpec::default();
    let mut i = 1;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--thin-overprovisioned" {
            // Optionally followed by the GiB the pools already hold (180).
            let gib = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
            spec.settings.thin_overprovisioned = Some(gib.unwrap_or(180) << 30);
            i += if gib.is_some() { 2 } else { 1 };
            continue;
        }
        let Some(v) = args.get(i + 1).cloned() else {
            eprintln!("pve-sim init: {flag} needs a value");
            return 2;
        };
        let num = || v.parse::<u64>().map_err(|_| ());
        let r: Result<(), String> = match flag {
            "--node" => {
                spec.nodes.push(v.clone());
                Ok(())
            }
            "--bridge" => {
                spec.bridges.push(v.clone());
                Ok(())
            }
            "--storage" => {
                let mut p = v.split(':');
                match (p.next(), p.next()) {
                    (Some(id), Some(kind)) => {
                        let mut shared = false;
                        for extra in p {
                            if extra == "shared" {
                                shared = true;
                            } else {
                                let content = extra.split('+').map(str::to_string).collect();
                                spec.content.push((id.into(), content));
                            }
                        }
                        spec.storages.push((id.into(), kind.into(), shared));
                        Ok(())
                    }
                    _ => Err("--storage takes ID:TYPE[:shared][:CONTENT+CONTENT...]".into()),
                }
            }
            "--image" => parse_image(&v).map(|img| spec.images.push(img)),
            "--cpu-model" => {
                let name = v.strip_prefix("custom-").unwrap_or(&v).to_string();
                spec.cpu_models.push(name);
                Ok(())
            }
            "--version" => pve_version(&v).map(|full| spec.settings.version = full),
            "--latency-ms" => num()
                .map(|n| spec.settings.latency_ms = n)
                .map_err(|_| "not a number".into()),
            "--slots" => num()
                .map(|n| spec.settings.slots = n as u32)
                .map_err(|_| "not a number".into()),
            "--import-mbps" => num()
                .map(|n| spec.settings.import_mbps = n)
                .map_err(|_| "not a number".into()),
            "--agent-after-ms" => num()
                .map(|n| spec.settings.agent_after_ms = n)
                .map_err(|_| "not a number".into()),
            "--agent-ping-ms" => num()
                .map(|n| spec.settings.agent_ping_ms = n)
                .map_err(|_| "not a number".into()),
            "--rrd-lag-ms" => num()
                .map(|n| spec.settings.rrd_lag_ms = n)
                .map_err(|_| "not a number".into()),
            "--alloc-ms" => num()
                .map(|n| spec.settings.alloc_ms = n)
                .map_err(|_| "not a number".into()),
            "--cfs-lock-expiry-ms" => num()
                .map(|n| spec.settings.cfs_lock_expiry_ms = n)
                .map_err(|_| "not a number".into()),
            other => Err(["unknown option ", other].concat()),
        };
        if let Err(e) = r {
            eprintln!("pve-sim init: {flag} {v}: {e}");
            return 2;
        }
        i += 2;
    }
    match init(&Root(root.into()), &spec) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pve-sim init: {e}");
            1
        }
    }
}

/// The state as JSON (the `pve-sim state` format).
pub fn state_json(root: &Root) -> Result<serde_json::Value, String> {
    let st = root.read().map_err(|f| f.stderr)?;
    let mut storages = Vec::new();
    for s in &st.storages {
        let holders: Vec<&str> = if s.shared {
            vec![st.nodes[0].name.as_str()]
        } else {
            st.nodes.iter().map(|n| n.name.as_str()).collect()
        };
        for n in holders {
            let volumes: Vec<_> = st
                .volumes_on(n, &s.id)
                .map(|v| json!({"volid": v.volid(), "size": v.size}))
                .collect();
            storages.push(json!({"id": s.id, "node": n, "volumes": volumes}));
        }
    }
    let vms: Vec<_> = st
        .vms
        .iter()
        .map(|(id, vm)| {
            let config = crate::qm::config_view(vm, false);
            json!({"vmid": id, "node": vm.node, "status": if vm.running { "running" } else { "stopped" }, "lock": vm.config.get("lock"), "config": config})
        })
        .collect();
    Ok(
        json!({"nodes": st.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(), "storages": storages, "vms": vms, "pools": st.pools, "ha_resources": st.ha_resources}),
    )
}

/// `pve-sim state ROOT`.
pub fn state_cli(args: &[String]) -> i32 {
    let Some(root) = args.first() else {
        eprintln!("usage: pve-sim state ROOT");
        return 2;
    };
    match state_json(&Root(root.into())) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            0
        }
        Err(e) => {
            eprint!("{e}");
            1
        }
    }
}
