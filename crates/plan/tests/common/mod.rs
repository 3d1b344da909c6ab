//! Small builders for planner tests: a file from YAML, nodes with a
//! version, bridges, storages and image paths, and managed VMs with a
//! configuration, so each test states only what its rule is about.

#![allow(dead_code)]

use pvefleet_config::Desired;
use pvefleet_model::VmId;
use pvefleet_plan::observed::{
    ClusterVm, NodeState, Observed, PveVersion, StorageFacts, VmConfig, Volume,
};
use pvefleet_plan::{plan, Plan, PlanInput, Step, VmPlan};

/// The cloud image most tests use, and its host path.
pub const IMG: &str = "local:iso/x.img";
pub const IMG_PATH: &str = "/var/lib/vz/template/iso/x.img";

/// Two valid public keys.
pub const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKrQPep6apPoT9iKpB4v3TjyNKUw6ti+Ol5LCfCrhuaq a@x";
pub const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOUTwOpbf7PzlU8QZB/F8iCAvSTP32RB4KEupxPTIlcv b@x";

/// The MAC Proxmox generated for the managed VMs of these tests.
pub const MAC: &str = "BC:24:11:AA:BB:CC";

/// A file parsed and validated; panics with the report when invalid.
pub fn desired(yaml: &str) -> Desired {
    pvefleet_config::parse("t.yml", yaml, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)))
}

/// A single-host file (`proxmox:` without a node name) with these VMs,
/// each a YAML flow mapping.
pub fn host(vms: &[&str]) -> Desired {
    let mut y = String::from("proxmox: {host: h}\nvms:\n");
    for v in vms {
        y.push_str("  - ");
        y.push_str(v);
        y.push('\n');
    }
    desired(&y)
}

/// A cluster file with these node names and VMs.
pub fn cluster(nodes: &[&str], vms: &[&str]) -> Desired {
    let mut y = String::from("nodes:\n");
    for n in nodes {
        y.push_str(&format!("  {n}: {{host: {n}.lan}}\n"));
    }
    y.push_str("vms:\n");
    for v in vms {
        y.push_str("  - ");
        y.push_str(v);
        y.push('\n');
    }
    desired(&y)
}

pub fn id(n: u32) -> VmId {
    VmId::new(i64::from(n)).expect("vmid")
}

/// A node running Proxmox VE `version`, with bridges vmbr0 and vmbr1,
/// storage `local` holding [`IMG`] (path known), an empty `local-lvm`, and
/// 16 GiB free.
pub fn node(name: &str, version: &str) -> NodeState {
    let mut n = NodeState {
        name: name.into(),
        version: Some(PveVersion::parse(version).expect("version")),
        bridges: vec!["vmbr0".into(), "vmbr1".into()],
        free_memory: Some(16 << 30),
        ..NodeState::default()
    };
    n.storages.insert("local-lvm".into(), Vec::new());
    add_volume(&mut n, IMG, Some(IMG_PATH));
    n
}

/// Lists `volid` on its storage, with its host path when given.
pub fn add_volume(n: &mut NodeState, volid: &str, path: Option<&str>) {
    let (storage, volname) = volid.split_once(':').expect("volid");
    let content = volname.split('/').next().map(str::to_string);
    n.storages.entry(storage.into()).or_default().push(Volume {
        volid: volid.into(),
        content,
        size: Some(1 << 30),
    });
    if let Some(p) = path {
        n.image_paths.insert(volid.into(), p.into());
    }
}

/// A qemu guest carrying pvefleet's tag, running.
pub fn vm(vmid: u32, node: &str, name: &str) -> ClusterVm {
    ClusterVm {
        vmid: id(vmid),
        node: node.into(),
        kind: pvefleet_model::GuestKind::Qemu,
        name: Some(name.into()),
        template: false,
        tags: vec!["pvefleet".into()],
        status: Some(pvefleet_model::VmStatus::Running),
        lock: None,
    }
}

/// A qemu guest without pvefleet's tag.
pub fn foreign(vmid: u32, node: &str, name: &str) -> ClusterVm {
    ClusterVm {
        tags: Vec::new(),
        ..vm(vmid, node, name)
    }
}

/// A template VM (no pvefleet tag) as an admin makes one.
pub fn template(vmid: u32, node: &str, name: &str) -> ClusterVm {
    ClusterVm {
        template: true,
        status: Some(pvefleet_model::VmStatus::Stopped),
        ..foreign(vmid, node, name)
    }
}

pub fn config(pairs: &[(&str, &str)]) -> VmConfig {
    VmConfig {
        current: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..VmConfig::default()
    }
}

/// The configuration Proxmox reports for
/// `{name: web, vmid: 200, image: local:iso/x.img, memory: 2048}`
/// created by pvefleet: nothing drifts.
pub fn web_config() -> VmConfig {
    config(&[
        ("name", "web"),
        ("memory", "2048"),
        ("cores", "1"),
        ("sockets", "1"),
        ("net0", &format!("virtio={MAC},bridge=vmbr0")),
        ("agent", "enabled=1"),
        ("serial0", "socket"),
        ("vga", "serial0"),
        ("ostype", "l26"),
        ("scsihw", "virtio-scsi-pci"),
        ("scsi0", "local-lvm:vm-200-disk-0,size=10G"),
        ("ide2", "local-lvm:vm-200-cloudinit,media=cdrom"),
        ("boot", "order=scsi0"),
        ("tags", "pvefleet"),
        ("description", "managed-by: pvefleet"),
    ])
}

/// The VM line matching [`web_config`], with extra keys.
pub fn web(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { ", " };
    format!("{{name: web, vmid: 200, image: {IMG}, memory: 2048{sep}{extra}}}")
}

/// Adds a managed VM and its configuration to a node.
pub fn put(n: &mut NodeState, guest: ClusterVm, cfg: VmConfig) {
    n.configs.insert(guest.vmid, cfg);
    n.vms.push(guest);
}

/// A node `pve1` on PVE 8.4 with VM 200 `web` running with `cfg`.
pub fn web_node(cfg: VmConfig) -> NodeState {
    let mut n = node("pve1", "8.4.1");
    put(&mut n, vm(200, "pve1", "web"), cfg);
    n
}

pub fn observed(nodes: Vec<NodeState>) -> Observed {
    Observed {
        nodes,
        next_id: Some(100),
        ..Observed::default()
    }
}

/// The plan of the whole file, no reboots.
pub fn plan_of(desired: &Desired, observed: &Observed) -> Plan {
    plan_with(desired, observed, false, &[])
}

pub fn plan_with(desired: &Desired, observed: &Observed, reboot: bool, only: &[&str]) -> Plan {
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    plan(PlanInput {
        desired,
        observed,
        reboot,
        only: &only,
        adopt: false,
        allow_data_loss: false,
    })
}

/// The plan of the whole file with `--adopt`.
pub fn plan_adopting(desired: &Desired, observed: &Observed) -> Plan {
    plan(PlanInput {
        desired,
        observed,
        reboot: false,
        only: &[],
        adopt: true,
        allow_data_loss: false,
    })
}

/// The plan of a one-VM file, and that VM's plan.
pub fn only_vm(desired: &Desired, observed: &Observed) -> (Plan, VmPlan) {
    let p = plan_of(desired, observed);
    assert_eq!(p.vms.len(), 1, "{p:#?}");
    let v = p.vms[0].clone();
    (p, v)
}

pub fn argv(step: &Step) -> Vec<String> {
    step.command.argv()
}

/// Every step's argv, in order.
pub fn argvs(steps: &[Step]) -> Vec<Vec<String>> {
    steps.iter().map(argv).collect()
}

/// An argv from words.
pub fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

/// Describes `storage` on `node` as `/cluster/resources` does: its plugin
/// type and content types (`iso,vztmpl,backup`).
pub fn storage_fact(o: &mut Observed, node: &str, storage: &str, kind: &str, content: &str) {
    o.storage_facts.entry(node.into()).or_default().insert(
        storage.into(),
        StorageFacts {
            content: Some(
                content
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            shared: false,
            kind: Some(kind.into()),
        },
    );
}

/// The storages of a default installation up to PVE 8.x on `node`:
/// `local` (dir) holds `iso,vztmpl,backup`, `local-lvm` (lvmthin)
/// `rootdir,images` (CONTRACT §13).
pub fn default_storages(o: &mut Observed, node: &str) {
    storage_fact(o, node, "local", "dir", "iso,vztmpl,backup");
    storage_fact(o, node, "local-lvm", "lvmthin", "rootdir,images");
}

/// Lists `volid` on its storage under `content` with `size` bytes.
pub fn add_sized(n: &mut NodeState, volid: &str, content: &str, size: i64) {
    let (storage, _) = volid.split_once(':').expect("volid");
    n.storages.entry(storage.into()).or_default().push(Volume {
        volid: volid.into(),
        content: Some(content.into()),
        size: Some(size),
    });
}
