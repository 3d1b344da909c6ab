//! `import`: a configuration file describing the VMs a node already has,
//! so that `apply --adopt` takes them over with (at most) the marker.
//!
//! Each VM's settings come from its `/pending` configuration (its values as
//! they will be after pending changes apply, as the planner compares them).
//! What the language cannot say is left out with a comment; the file passes
//! `check` ([`Doc::checked`]). The image a VM was made from is not recorded
//! by Proxmox: a placeholder marked TODO stands in for it.

use super::host::{self, flow_list, scalar, Doc, MODELINE};
use crate::args::{HostArgs, Target};
use crate::ui;
use crate::ExitStatus;
use pvefleet_model::size::format_size;
use pvefleet_model::{
    Boot, Command, Drive, IpConfig, Ipv4Config, Ipv6Config, Net, NicModel, Pvesh, VmStatus,
    OWNER_DESCRIPTION_LINE, OWNER_TAG,
};
use pvefleet_plan::observed::{parse_pending, ClusterVm, VmConfig};
use pvefleet_plan::options::PASSWORD_CHECK_PREFIX;
use pvefleet_plan::{Observed, CACHE_TAG};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The image written for a VM whose image is not known.
pub(super) const UNKNOWN_IMAGE: &str = "local:iso/unknown-image.img";

/// Reads the nodes and prints the file (or its JSON document).
pub async fn run(host: &HostArgs, target: &Target, tags: &[String], vmids: &[u32]) -> ExitStatus {
    let desired = match host::desired(host, target) {
        Ok(d) => d,
        Err(s) => return s,
    };
    let (handles, observed) = match host::read(&desired, target).await {
        Ok(x) => x,
        Err(s) => return s,
    };
    let (picked, mut skipped, missing) = pick(&observed, tags, vmids);
    let configs = match read_configs(&handles, &picked, &mut skipped).await {
        Ok(c) => c,
        Err(status) => {
            super::close(&handles).await;
            return status;
        }
    };
    super::close(&handles).await;
    let mut doc = Doc::default();
    doc.fixed(MODELINE);
    let nodes: BTreeSet<&str> = observed.nodes.iter().map(|n| n.name.as_str()).collect();
    doc.fixed(format!(
        "# VMs of node(s) {}, written by `pvefleet import`.\n#\n#   pvefleet plan FILE                  # they are in conflict: not managed yet\n#   pvefleet apply FILE --adopt         # takes them over: tag + description line\n#\n# Proxmox does not record the image a VM was made from: each VM has a\n# placeholder 'image:' marked TODO, used only if the VM must be made again.\n# Keys the file cannot express are left out with a comment; every key is\n# documented in docs/config.md.\n\n",
        nodes.into_iter().collect::<Vec<_>>().join(", ")
    ));
    doc.fixed(host::connection_yaml(&desired, &handles, target.simulate));
    let mut rows: Vec<Value> = Vec::new();
    if picked.iter().any(|v| configs.contains_key(&v.vmid.get())) {
        doc.fixed("vms:");
    } else {
        doc.fixed("vms:   # no VM was found");
    }
    let mut names: BTreeSet<String> = BTreeSet::new();
    for vm in &picked {
        let Some(cfg) = configs.get(&vm.vmid.get()) else {
            continue;
        };
        let name = vm_entry(&mut doc, vm, cfg, &observed, &mut names);
        rows.push(json!({"vmid": vm.vmid, "name": name, "node": vm.node}));
    }
    let (text, passes) = doc.checked();
    for row in &mut rows {
        let left: Vec<Value> = doc
            .omitted
            .iter()
            .filter(|(label, _, _)| row["name"] == label.as_str())
            .map(|(_, key, reason)| json!({"key": key, "reason": reason}))
            .collect();
        row["left_out"] = json!(left);
    }
    let ui = ui::ui();
    if ui.json {
        ui::print_json(&json!({"file": text, "check": passes, "vms": rows, "skipped": skipped}));
    } else {
        print!("{text}");
        for s in &skipped {
            tracing::warn!(
                "VM {} not imported: {}",
                s["vmid"],
                s["reason"].as_str().unwrap_or_default()
            );
        }
        for (label, key, reason) in &doc.omitted {
            tracing::info!("{label}: '{key}' left out: {reason}");
        }
        tracing::info!(
            "{} written; review the TODO lines, then: pvefleet apply FILE --adopt",
            ui::count(rows.len(), "VM", "VMs")
        );
    }
    if missing || !passes {
        ExitStatus::Failed
    } else {
        ExitStatus::Ok
    }
}

/// The VMs to import (templates and unfinished creates are skipped, with
/// why), and whether a `--vmid` named a VM no node has.
fn pick<'a>(
    observed: &'a Observed,
    tags: &[String],
    vmids: &[u32],
) -> (Vec<&'a ClusterVm>, Vec<Value>, bool) {
    let tags: Vec<String> = tags.iter().map(|t| t.to_ascii_lowercase()).collect();
    let mut skipped: Vec<Value> = Vec::new();
    let mut picked: Vec<&ClusterVm> = Vec::new();
    for n in &observed.nodes {
        for vm in &n.vms {
            if !vmids.is_empty() && !vmids.contains(&vm.vmid.get()) {
                continue;
            }
            if !tags.is_empty() && !tags.iter().any(|t| vm.tags.contains(t)) {
                continue;
            }
            let why = if vm.template {
                Some("a template (templates are never adopted)".to_string())
            } else if Observed::looks_unfinished(vm) {
                Some(format!(
                    "an interrupted create (lock: {})",
                    vm.lock.as_deref().unwrap_or_default()
                ))
            } else {
                None
            };
            match why {
                Some(reason) => {
                    skipped.push(json!({"vmid": vm.vmid, "node": vm.node, "reason": reason}))
                }
                None => picked.push(vm),
            }
        }
    }
    picked.sort_by_key(|v| v.vmid);
    let mut missing = false;
    for id in vmids {
        if !observed.all_vms().iter().any(|v| v.vmid.get() == *id) {
            missing = true;
            skipped.push(
                json!({"vmid": id, "node": null, "reason": "no VM with this id on the nodes read"}),
            );
        }
    }
    (picked, skipped, missing)
}

/// Each picked VM's configuration (`/pending`), one round trip per node;
/// one that cannot be read is skipped, with why.
async fn read_configs(
    handles: &[pvefleet_exec::observe::NodeHandle],
    picked: &[&ClusterVm],
    skipped: &mut Vec<Value>,
) -> Result<BTreeMap<u32, VmConfig>, ExitStatus> {
    let mut configs: BTreeMap<u32, VmConfig> = BTreeMap::new();
    for h in handles {
        let ids: Vec<&ClusterVm> = picked
            .iter()
            .copied()
            .filter(|v| v.node == h.name)
            .collect();
        let argvs: Vec<Vec<String>> = ids
            .iter()
            .map(|v| Command::Pvesh(Pvesh::vm_pending(&h.name, v.vmid)).argv())
            .collect();
        let outs = host::run_reads(h, &argvs).await?;
        for (vm, out) in ids.iter().zip(outs) {
            let cfg = if out.success() {
                parse_pending(out.stdout.as_bytes()).map_err(|e| e.to_string())
            } else {
                Err(out.stderr.trim().to_string())
            };
            match cfg {
                Ok(c) => {
                    configs.insert(vm.vmid.get(), c);
                }
                Err(e) => skipped.push(json!({"vmid": vm.vmid, "node": vm.node, "reason": format!("its configuration could not be read: {e}")})),
            }
        }
    }
    Ok(configs)
}

/// True when `name` is a name the language accepts for a VM.
fn valid_name(name: &str) -> bool {
    let probe = format!(
        "proxmox: {{host: h}}\nvms:\n  - {{name: {}, image: {UNKNOWN_IMAGE}}}\n",
        scalar(name)
    );
    pvefleet_config::parse("probe.yml", &probe, &|_| Err(String::new())).is_ok()
}

/// Percent-decodes `sshkeys` as Proxmox stores them.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The VM's boot disk: the first device of `boot: order=` that is a disk,
/// else the first of scsi0, virtio0, sata0, ide0 that is one.
fn boot_disk(cfg: &VmConfig) -> Option<(String, Drive)> {
    let disk = |d: &str| {
        cfg.effective(d)
            .and_then(|v| Drive::parse(v).ok())
            .filter(|drive| !drive.is_cdrom() && !drive.is_cloudinit())
    };
    let order = cfg
        .effective("boot")
        .and_then(|b| Boot::parse(b).ok())
        .and_then(|b| b.order)
        .unwrap_or_default();
    let found = order
        .iter()
        .map(String::as_str)
        .chain(["scsi0", "virtio0", "sata0", "ide0"])
        .filter(|d| !d.starts_with("net"))
        .find_map(|d| disk(d).map(|drive| (d.to_string(), drive)));
    found
}

/// One VM's entry while it is written: its keys in order (a key, its
/// value, or the items of a block list) and the notes above it.
#[derive(Default)]
struct Entry {
    keys: Vec<(&'static str, String, Vec<String>)>,
    notes: Vec<String>,
}

impl Entry {
    fn key(&mut self, k: &'static str, v: String) {
        self.keys.push((k, v, Vec::new()));
    }

    fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }
}

/// Writes one VM's entry; returns the name it got.
fn vm_entry(
    doc: &mut Doc,
    vm: &ClusterVm,
    cfg: &VmConfig,
    observed: &Observed,
    names: &mut BTreeSet<String>,
) -> String {
    let mut e = Entry::default();
    let name = entry_name(&mut e, vm, cfg, names);
    if vm.tags.iter().any(|t| t == OWNER_TAG) {
        e.note("already managed by pvefleet");
    }
    e.key("name", scalar(&name));
    e.key("node", scalar(&vm.node));
    entry_hardware(&mut e, cfg);
    entry_net(&mut e, cfg);
    entry_ip(&mut e, cfg);
    entry_cloud_init(&mut e, cfg);
    entry_disk(&mut e, cfg, observed);
    for (k, v) in super::import_lifecycle::keys(cfg, observed, vm.vmid) {
        e.key(k, v);
    }
    entry_rest(&mut e, vm, cfg);
    let status = vm
        .status
        .as_ref()
        .map(|s| format!("{s:?}").to_ascii_lowercase())
        .unwrap_or_else(|| "status unknown".into());
    doc.fixed(format!(
        "\n  # {name}: VM {} on node {}, {status}",
        vm.vmid, vm.node
    ));
    for n in &e.notes {
        doc.fixed(format!("  #   - {n}"));
    }
    doc.fixed(format!("  - vmid: {}", vm.vmid));
    for (k, v, items) in e.keys {
        let line = if items.is_empty() {
            format!("    {k}: {v}")
        } else {
            format!("    {k}:")
        };
        doc.key(&name, k, line, &items);
    }
    name
}

/// The name the entry gets: the VM's own when the file accepts it and no
/// other entry has it, else `vm-ID` with a note.
fn entry_name(
    e: &mut Entry,
    vm: &ClusterVm,
    cfg: &VmConfig,
    names: &mut BTreeSet<String>,
) -> String {
    let id = vm.vmid;
    let have = cfg
        .effective("name")
        .map(str::to_string)
        .or_else(|| vm.name.clone());
    let name = match &have {
        Some(n) if valid_name(n) && !names.contains(n) => n.clone(),
        Some(n) => {
            e.note(format!(
                "its name {} is {}: renamed (adopting renames the VM)",
                scalar(n),
                if names.contains(n) {
                    "another VM's too"
                } else {
                    "not a name the file accepts"
                }
            ));
            format!("vm-{id}")
        }
        None => {
            e.note("it has no name: named after its id (adopting sets it)");
            format!("vm-{id}")
        }
    };
    names.insert(name.clone());
    name
}

/// memory, cores, sockets, cpu.
fn entry_hardware(e: &mut Entry, cfg: &VmConfig) {
    let memory = cfg
        .effective("memory")
        .map(|m| pvefleet_plan::options::normalise("memory", m))
        .unwrap_or_else(|| "512".into());
    e.key("memory", memory);
    e.key("cores", cfg.effective("cores").unwrap_or("1").to_string());
    e.key(
        "sockets",
        cfg.effective("sockets").unwrap_or("1").to_string(),
    );
    if let Some(cpu) = cfg.effective("cpu") {
        e.key("cpu", scalar(cpu));
    }
}

/// bridge, vlan, mac from `net0`; notes on what the file cannot say.
fn entry_net(e: &mut Entry, cfg: &VmConfig) {
    match cfg.effective("net0").map(Net::parse) {
        Some(Ok(net)) => {
            if let Some(b) = &net.bridge {
                e.key("bridge", scalar(b));
            }
            if let Some(t) = net.tag {
                e.key("vlan", t.to_string());
            }
            if let Some(m) = &net.macaddr {
                e.key("mac", scalar(m.as_str()));
            }
            if net.model != NicModel::Virtio {
                e.note(format!(
                    "its net0 model is {}: pvefleet makes virtio NICs, and adopting changes it",
                    net.model
                ));
            }
        }
        Some(Err(_)) => e.note("its net0 could not be read: adopting rewrites it"),
        None => e.note("it has no net0: adopting adds a virtio NIC on 'bridge'"),
    }
    if cfg.current.keys().chain(cfg.pending.keys()).any(|k| {
        k.strip_prefix("net")
            .is_some_and(|n| n != "0" && n.bytes().all(|b| b.is_ascii_digit()))
    }) {
        e.note("its other NICs are not described here; pvefleet leaves them as they are");
    }
}

/// ip, gateway, ip6, gateway6 from `ipconfig0`.
fn entry_ip(e: &mut Entry, cfg: &VmConfig) {
    let Some(ipc) = cfg.effective("ipconfig0") else {
        return;
    };
    let Ok(ip) = IpConfig::parse(ipc) else {
        return e.note(format!("its ipconfig0 ({ipc}) could not be read"));
    };
    match ip.ip {
        Some(Ipv4Config::Dhcp) => e.key("ip", "dhcp".into()),
        Some(s @ Ipv4Config::Static { .. }) => {
            e.key("ip", scalar(&s.to_string()));
            if let Some(gw) = ip.gw {
                e.key("gateway", scalar(&gw.to_string()));
            }
        }
        Some(Ipv4Config::Manual) | None => {}
    }
    match ip.ip6 {
        Some(Ipv6Config::Dhcp) => e.key("ip6", "dhcp".into()),
        Some(Ipv6Config::Auto) => e.key("ip6", "auto".into()),
        Some(s @ Ipv6Config::Static { .. }) => {
            e.key("ip6", scalar(&s.to_string()));
            if let Some(gw) = ip.gw6 {
                e.key("gateway6", scalar(&gw.to_string()));
            }
        }
        Some(Ipv6Config::Manual) | None => {}
    }
    if matches!(ip.ip, Some(Ipv4Config::Manual)) || matches!(ip.ip6, Some(Ipv6Config::Manual)) {
        e.note(format!(
            "its ipconfig0 ({ipc}) has 'manual', which the file cannot say"
        ));
    }
}

/// nameserver, searchdomain, user, ssh_keys; a note on a password.
fn entry_cloud_init(e: &mut Entry, cfg: &VmConfig) {
    if let Some(ns) = cfg.effective("nameserver") {
        let list: Vec<String> = ns
            .split([' ', ',', ';'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !list.is_empty() {
            e.key("nameserver", flow_list(&list));
        }
    }
    if let Some(sd) = cfg.effective("searchdomain") {
        e.key("searchdomain", scalar(sd));
    }
    if let Some(u) = cfg.effective("ciuser") {
        e.key("user", scalar(u));
    }
    let ssh_keys: Vec<String> = cfg
        .effective("sshkeys")
        .map(percent_decode)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if !ssh_keys.is_empty() {
        e.keys.push((
            "ssh_keys",
            String::new(),
            ssh_keys
                .iter()
                .map(|k| format!("      - {}", scalar(k)))
                .collect(),
        ));
    }
    if cfg.effective("cipassword").is_some() {
        e.note("it has a cloud-init password, which Proxmox keeps only as a hash: set 'password:' to manage it (left as it is without)");
    }
}

/// storage and disk from the boot disk, and where the disk came from: the
/// template of a linked clone, else an image to fill in.
fn entry_disk(e: &mut Entry, cfg: &VmConfig, observed: &Observed) {
    let mut source: Option<(&'static str, String, String)> = None;
    match boot_disk(cfg) {
        Some((dev, drive)) => {
            if let Some(vol) = drive.file.volume() {
                e.key("storage", scalar(vol.storage().as_str()));
                // A linked clone's volume is `base-<template>-disk-N/...`.
                let template = vol
                    .volname()
                    .strip_prefix("base-")
                    .and_then(|r| r.split('-').next())
                    .and_then(|t| t.parse::<u32>().ok())
                    .filter(|t| {
                        observed
                            .all_vms()
                            .iter()
                            .any(|v| v.vmid.get() == *t && v.template)
                    });
                if let Some(t) = template {
                    source = Some((
                        "clone",
                        t.to_string(),
                        format!("its {dev} is a linked clone of template {t}"),
                    ));
                }
            }
            if let Some(size) = drive.size {
                e.key("disk", format_size(size));
            }
        }
        None => e.note("it has no disk pvefleet recognises"),
    }
    let (k, v, why) = source.unwrap_or_else(|| {
        (
            "image",
            UNKNOWN_IMAGE.to_string(),
            "TODO: the cloud image it was made from (Proxmox does not record it); only used if the VM must be made again"
                .to_string(),
        )
    });
    e.key(k, format!("{}   # {why}", scalar(&v)));
}

/// tags, description (without pvefleet's lines), onboot, state.
fn entry_rest(e: &mut Entry, vm: &ClusterVm, cfg: &VmConfig) {
    let tags: Vec<String> = vm
        .tags
        .iter()
        .filter(|t| *t != OWNER_TAG && *t != CACHE_TAG)
        .cloned()
        .collect();
    if !tags.is_empty() {
        e.key("tags", flow_list(&tags));
    }
    if let Some(d) = cfg.effective("description") {
        let own: Vec<&str> = d
            .lines()
            .filter(|l| {
                l.trim() != OWNER_DESCRIPTION_LINE
                    && !l.trim().starts_with(PASSWORD_CHECK_PREFIX)
                    && !pvefleet_plan::hardware::is_record_line(l)
            })
            .collect();
        let own = own.join("\n");
        let own = own.trim_end();
        if !own.trim().is_empty() {
            e.key("description", scalar(own));
        }
    }
    let onboot = cfg
        .effective("onboot")
        .map(|v| pvefleet_plan::options::normalise("onboot", v) == "1")
        .unwrap_or(false);
    e.key("onboot", onboot.to_string());
    let running = vm.status.as_ref().is_some_and(VmStatus::is_up);
    e.key(
        "state",
        if running { "running" } else { "stopped" }.to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshkeys_are_percent_decoded() {
        assert_eq!(
            percent_decode("ssh-ed25519%20AAAA%20a%40b%0A"),
            "ssh-ed25519 AAAA a@b\n"
        );
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
