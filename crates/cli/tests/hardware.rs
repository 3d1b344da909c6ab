//! End to end over sshd: data disks (`disks:`) and NICs (`networks:`)
//! against pve-sim. After apply the host holds exactly the intended keys
//! and volumes; a re-apply changes nothing; each update does what the plan
//! said; removing a disk needs `--allow-data-loss`.

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
}

fn bed() -> TestBed {
    TestBed::start(
        &exe(),
        &["pve"],
        &[
            "--image",
            "local:iso/jammy-server-cloudimg-amd64.img:2G",
            "--bridge",
            "vmbr0",
            "--bridge",
            "vmbr1",
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"))
}

const HEAD: &str = "proxmox: {host: pve}
defaults:
  image: local:iso/jammy-server-cloudimg-amd64.img
  storage: local-lvm
vms:
  - vmid: 501
    name: hw-01
";

const DISKS: &str = "    disks:
      - {size: 2G, discard: true}
      - {size: 1G, slot: virtio1, backup: false}
";

const NETS: &str = "    networks:
      - {bridge: vmbr0, ip: 10.0.0.51/24, gateway: 10.0.0.1}
      - {bridge: vmbr1, vlan: 10, ip: 10.1.0.51/24}
      - {bridge: vmbr1, ip: dhcp}
";

fn write(bed: &TestBed, text: &str) -> PathBuf {
    let path = bed.dir.path().join("hw.yml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn pvefleet(bed: &TestBed, args: &[&str]) -> Output {
    Command::new(exe())
        .args(args)
        .arg("--ssh-config")
        .arg(&bed.ssh_config)
        .current_dir(bed.dir.path())
        .output()
        .expect("run pvefleet")
}

fn text(o: &Output) -> String {
    [
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    ]
    .concat()
}

/// Applies `file` (with `extra` flags) after forgetting the journal; the
/// output and the state-changing `qm` commands it sent.
fn apply(bed: &TestBed, file: &Path, extra: &[&str]) -> (Output, Vec<Vec<String>>) {
    bed.clear_journal();
    let mut args = vec!["apply", file.to_str().expect("utf8"), "--yes", "--no-wait"];
    args.extend_from_slice(extra);
    let out = pvefleet(bed, &args);
    let sent = bed
        .journal_rows()
        .iter()
        .map(argv_of)
        .filter(|a| {
            a.first().map(String::as_str) == Some("qm")
                && !matches!(
                    a.get(1).map(String::as_str),
                    Some("config" | "guest" | "status" | "list" | "pending")
                )
        })
        .collect();
    (out, sent)
}

fn plan(bed: &TestBed, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["plan", file.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    pvefleet(bed, &args)
}

fn config(bed: &TestBed) -> Value {
    bed.state()["vms"]
        .as_array()
        .and_then(|vms| vms.iter().find(|v| v["vmid"] == 501).cloned())
        .map(|v| v["config"].clone())
        .expect("vm 501")
}

fn key(cfg: &Value, k: &str) -> String {
    cfg[k].as_str().unwrap_or_default().to_string()
}

/// The volumes of VM 501 on `local-lvm`, by volume id, with their sizes.
fn volumes(bed: &TestBed) -> Vec<(String, u64)> {
    let st = bed.state();
    let mut out = Vec::new();
    for s in st["storages"].as_array().into_iter().flatten() {
        for v in s["volumes"].as_array().into_iter().flatten() {
            let id = v["volid"].as_str().unwrap_or_default();
            if id.contains("vm-501-disk-") {
                out.push((id.to_string(), v["size"].as_u64().unwrap_or(0)));
            }
        }
    }
    out.sort();
    out
}

const GIB: u64 = 1 << 30;

#[test]
fn disks_are_created_grown_and_destroyed_only_with_allow_data_loss() {
    let bed = bed();
    let file = write(&bed, &[HEAD, DISKS].concat());
    let (out, _) = apply(&bed, &file, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let cfg = config(&bed);
    let keys: BTreeSet<&str> = cfg
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let want: BTreeSet<&str> = [
        "agent",
        "boot",
        "cores",
        "description",
        "ide2",
        "memory",
        "meta",
        "name",
        "net0",
        "ostype",
        "scsi0",
        "scsi1",
        "scsihw",
        "serial0",
        "smbios1",
        "sockets",
        "tags",
        "vga",
        "virtio1",
        "vmgenid",
    ]
    .into();
    assert_eq!(keys, want, "{cfg:#}");
    assert_eq!(
        key(&cfg, "scsi1"),
        "local-lvm:vm-501-disk-1,discard=on,size=2G"
    );
    assert_eq!(
        key(&cfg, "virtio1"),
        "local-lvm:vm-501-disk-2,backup=0,size=1G"
    );
    // `qm config` percent-encodes the description.
    assert!(
        key(&cfg, "description").ends_with("%0Apvefleet-disks%3A scsi1 virtio1"),
        "{cfg:#}"
    );
    assert_eq!(
        volumes(&bed),
        [
            ("local-lvm:vm-501-disk-0".to_string(), 2 * GIB),
            ("local-lvm:vm-501-disk-1".to_string(), 2 * GIB),
            ("local-lvm:vm-501-disk-2".to_string(), GIB),
        ]
    );

    // Again: nothing that changes state is sent.
    let (out, sent) = apply(&bed, &file, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sent.is_empty(), "{sent:?}");

    // Grow scsi1: the plan says so, apply resizes it and nothing else.
    let grown = write(
        &bed,
        &[HEAD, &DISKS.replace("size: 2G", "size: 3G")].concat(),
    );
    let p = plan(&bed, &grown, &[]);
    assert!(text(&p).contains("scsi1 size: 2G -> 3G"), "{}", text(&p));
    let (out, sent) = apply(&bed, &grown, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        sent,
        [argv(&["qm", "disk", "resize", "501", "scsi1", "3G"])]
    );
    assert!(key(&config(&bed), "scsi1").ends_with("size=3G"));
    assert_eq!(volumes(&bed)[1].1, 3 * GIB);

    // Drop virtio1 without the flag: exit 1 with the problem, nothing sent.
    let dropped = write(
        &bed,
        &[HEAD, "    disks:\n      - {size: 3G, discard: true}\n"].concat(),
    );
    let (out, sent) = apply(&bed, &dropped, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("disk virtio1 (local-lvm:vm-501-disk-2) is no longer in the file"),
        "{}",
        text(&out)
    );
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(volumes(&bed).len(), 3);

    // With --allow-data-loss the plan says it destroys the volume, and it does.
    let p = plan(&bed, &dropped, &["--allow-data-loss"]);
    assert!(
        text(&p).contains("destroys volume local-lvm:vm-501-disk-2"),
        "{}",
        text(&p)
    );
    let (out, sent) = apply(&bed, &dropped, &["--allow-data-loss"]);
    assert!(out.status.success(), "{}", text(&out));
    // The removal goes first: the `qm set` after it drops the slot from
    // the record, so a failed removal is tried again by the next run.
    assert_eq!(
        sent.first(),
        Some(&argv(&[
            "qm", "disk", "unlink", "501", "--idlist", "virtio1", "--force", "1"
        ]))
    );
    let cfg = config(&bed);
    assert!(
        cfg.get("virtio1").is_none() && cfg.get("unused0").is_none(),
        "{cfg:#}"
    );
    assert_eq!(volumes(&bed).len(), 2);
    let (_, sent) = apply(&bed, &dropped, &["--allow-data-loss"]);
    assert!(sent.is_empty(), "{sent:?}");
}

#[test]
fn nics_are_created_changed_keeping_admin_items_and_removed() {
    let bed = bed();
    let file = write(&bed, &[HEAD, NETS].concat());
    let (out, _) = apply(&bed, &file, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let cfg = config(&bed);
    let nets: BTreeSet<&str> = cfg
        .as_object()
        .map(|o| {
            o.keys()
                .map(String::as_str)
                .filter(|k| k.starts_with("net") || k.starts_with("ipconfig"))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        nets,
        [
            "ipconfig0",
            "ipconfig1",
            "ipconfig2",
            "net0",
            "net1",
            "net2"
        ]
        .into()
    );
    assert!(key(&cfg, "net1").starts_with("virtio=BC:24:11:"));
    assert!(key(&cfg, "net1").ends_with(",bridge=vmbr1,tag=10"));
    assert!(key(&cfg, "net2").ends_with(",bridge=vmbr1"));
    assert_eq!(key(&cfg, "ipconfig0"), "ip=10.0.0.51/24,gw=10.0.0.1");
    assert_eq!(key(&cfg, "ipconfig1"), "ip=10.1.0.51/24");
    assert_eq!(key(&cfg, "ipconfig2"), "ip=dhcp");
    let (_, sent) = apply(&bed, &file, &[]);
    assert!(sent.is_empty(), "{sent:?}");

    // An admin turns net1's firewall on; the file changes its VLAN.
    let net1 = key(&cfg, "net1");
    let with_fw = net1.replace(",tag=10", ",firewall=1,tag=10");
    let o = bed.ssh("pve", &format!("qm set 501 --net1 '{with_fw}'"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let vlan20 = write(
        &bed,
        &[HEAD, &NETS.replace("vlan: 10", "vlan: 20")].concat(),
    );
    let (out, sent) = apply(&bed, &vlan20, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let want = net1.replace(",tag=10", ",firewall=1,tag=20");
    assert_eq!(sent, [argv(&["qm", "set", "501", "--net1", &want])]);
    let cfg = config(&bed);
    assert_eq!(key(&cfg, "net1"), want);
    assert!(key(&cfg, "net2").ends_with(",bridge=vmbr1"));

    // Drop net2: deleted with its ipconfig2 (no data lost, no flag needed).
    let two = write(
        &bed,
        &[
            HEAD,
            &NETS
                .replace("vlan: 10", "vlan: 20")
                .replace("      - {bridge: vmbr1, ip: dhcp}\n", ""),
        ]
        .concat(),
    );
    let (out, sent) = apply(&bed, &two, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].ends_with(&argv(&["--delete", "net2,ipconfig2"])),
        "{sent:?}"
    );
    let cfg = config(&bed);
    assert!(cfg.get("net2").is_none() && cfg.get("ipconfig2").is_none());
    assert_eq!(key(&cfg, "net1"), want);
    let (_, sent) = apply(&bed, &two, &[]);
    assert!(sent.is_empty(), "{sent:?}");
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}
