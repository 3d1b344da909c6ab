//! End to end over sshd: firmware (`bios`, `secure_boot`, `machine`,
//! `tpm`) and placement/lifecycle keys (`pool`, `startup`, `protection`,
//! `ha`, `agent`, `balloon`, `numa`, `hotplug`) against pve-sim.

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::path::PathBuf;
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
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"))
}

/// Writes a one-host file with `vms` (YAML lines of the `vms:` list).
fn config(bed: &TestBed, vms: &str) -> String {
    let text = format!(
        "proxmox:\n  host: pve\ndefaults:\n  image: local:iso/jammy-server-cloudimg-amd64.img\n  storage: local-lvm\n  memory: 2048\nvms:\n{vms}"
    );
    let path = bed.dir.path().join("fleet.yml");
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
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

fn run_ok(bed: &TestBed, args: &[&str]) -> String {
    let out = pvefleet(bed, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    text(&out)
}

fn ssh_ok(bed: &TestBed, line: &str) {
    let out = bed.ssh("pve", line);
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The commands `plan --output json` lists for `vmid`, as argv lines.
fn planned(bed: &TestBed, file: &str, extra: &[&str], vmid: u64) -> (Vec<String>, Value) {
    let mut args = vec!["plan", file, "--output", "json"];
    args.extend_from_slice(extra);
    let out = pvefleet(bed, &args);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan JSON: {e}: {}", text(&out)));
    let vm = doc["vms"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["vmid"] == vmid).cloned())
        .unwrap_or(Value::Null);
    let lines = vm["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|c| shlex::split(c).unwrap_or_default().join(" "))
        .collect();
    (lines, vm)
}

/// The commands of the journal that change the host, as lines.
fn changing(bed: &TestBed) -> Vec<String> {
    bed.journal_rows()
        .iter()
        .map(argv_of)
        .filter(|a| {
            let word = |i: usize| a.get(i).map(String::as_str).unwrap_or("");
            match word(0) {
                "qm" => !matches!(word(1), "config" | "guest" | "status" | "list" | "pending"),
                "pvesh" => word(1) != "get",
                "ha-manager" => word(1) != "status",
                _ => false,
            }
        })
        .map(|a| a.join(" "))
        .collect()
}

fn vm(bed: &TestBed, vmid: u64) -> Value {
    bed.state()["vms"]
        .as_array()
        .and_then(|vms| vms.iter().find(|v| v["vmid"] == vmid).cloned())
        .unwrap_or(Value::Null)
}

fn volumes(bed: &TestBed) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for s in bed.state()["storages"].as_array().into_iter().flatten() {
        for v in s["volumes"].as_array().into_iter().flatten() {
            out.push((
                v["volid"].as_str().unwrap_or("").to_string(),
                v["size"].as_u64().unwrap_or(0),
            ));
        }
    }
    out
}

const UEFI: &str = "  - vmid: 301\n    name: uefi-01\n    bios: ovmf\n    secure_boot: true\n    tpm: true\n    machine: q35\n";

#[test]
fn uefi_vm_gets_its_volumes_once_and_keeps_them_unless_data_loss_is_allowed() {
    let bed = bed();
    let c = config(&bed, UEFI);
    run_ok(&bed, &["apply", &c, "--yes"]);
    let cfg = &vm(&bed, 301)["config"];
    assert_eq!(cfg["bios"], "ovmf");
    assert_eq!(cfg["machine"], "q35");
    assert_eq!(
        cfg["efidisk0"],
        "local-lvm:vm-301-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M"
    );
    let tpm = cfg["tpmstate0"].as_str().unwrap_or("");
    assert!(
        tpm.starts_with("local-lvm:vm-301-disk-2,") && tpm.contains("version=v2.0"),
        "{tpm}"
    );
    // Exactly the intended firmware keys: nothing else of the kind.
    for absent in ["protection", "numa", "balloon", "hotplug", "startup"] {
        assert!(cfg.get(absent).is_none(), "{absent}: {}", cfg[absent]);
    }
    let vols = volumes(&bed);
    for v in ["local-lvm:vm-301-disk-1", "local-lvm:vm-301-disk-2"] {
        assert!(vols.contains(&(v.to_string(), 4 << 20)), "{v}: {vols:?}");
    }

    bed.clear_journal();
    let again = run_ok(&bed, &["apply", &c, "--yes"]);
    assert!(again.contains("no changes"), "{again}");
    assert_eq!(changing(&bed), Vec::<String>::new());

    // Flipping Secure Boot or going back to SeaBIOS destroys the EFI vars:
    // refused, nothing sent.
    let seabios = "  - vmid: 301\n    name: uefi-01\n    machine: q35\n";
    for edited in [
        &UEFI.replace("secure_boot: true", "secure_boot: false"),
        seabios,
    ] {
        let c2 = config(&bed, edited);
        bed.clear_journal();
        let out = pvefleet(&bed, &["apply", &c2, "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("--allow-data-loss"), "{}", text(&out));
        assert_eq!(changing(&bed), Vec::<String>::new());
    }

    // Allowed: the EFI vars and the TPM state are detached, bios goes back
    // to SeaBIOS at the next boot, as the plan says.
    let c = config(&bed, seabios);
    let (commands, plan) = planned(&bed, &c, &["--allow-data-loss"], 301);
    assert_eq!(
        plan["reboot_pending"],
        serde_json::json!(["bios", "efidisk0", "tpmstate0"])
    );
    bed.clear_journal();
    let out = run_ok(&bed, &["apply", &c, "--yes", "--allow-data-loss"]);
    assert_eq!(
        changing(&bed),
        vec!["qm set 301 --bios seabios --delete efidisk0,tpmstate0".to_string()]
    );
    assert_eq!(changing(&bed), commands);
    assert!(out.contains("reboot"), "{out}");
    let cfg = &vm(&bed, 301)["config"];
    assert!(cfg.get("efidisk0").is_none() && cfg.get("tpmstate0").is_none());
    let pending = bed.ssh(
        "pve",
        "pvesh get /nodes/pve/qemu/301/pending --output-format json",
    );
    let pending: Value = serde_json::from_slice(&pending.stdout).expect("pending JSON");
    let bios = pending
        .as_array()
        .and_then(|p| p.iter().find(|e| e["key"] == "bios").cloned())
        .unwrap_or(Value::Null);
    assert_eq!(
        (&bios["value"], &bios["pending"]),
        (&serde_json::json!("ovmf"), &serde_json::json!("seabios"))
    );
}

#[test]
fn uefi_secure_boot_flip_remakes_the_efi_vars_with_allow_data_loss() {
    let bed = bed();
    let stopped = UEFI.replace("tpm: true", "state: stopped");
    let c = config(&bed, &stopped);
    run_ok(&bed, &["apply", &c, "--yes"]);
    let flipped = config(
        &bed,
        &stopped.replace("secure_boot: true", "secure_boot: false"),
    );
    bed.clear_journal();
    run_ok(&bed, &["apply", &flipped, "--yes", "--allow-data-loss"]);
    assert_eq!(
        changing(&bed),
        vec![
            "qm set 301 --delete efidisk0".to_string(),
            "qm set 301 --efidisk0 local-lvm:1,efitype=4m,pre-enrolled-keys=0".to_string(),
        ]
    );
    let cfg = &vm(&bed, 301)["config"];
    let efi = cfg["efidisk0"].as_str().unwrap_or("");
    assert!(efi.contains("pre-enrolled-keys=0"), "{efi}");
    bed.clear_journal();
    run_ok(&bed, &["apply", &flipped, "--yes"]);
    assert_eq!(changing(&bed), Vec::<String>::new());

    // Protected, the VM keeps its EFI vars until the file lifts the
    // protection, which the main qm set does first.
    let guarded = stopped.replace(
        "secure_boot: true",
        "secure_boot: false\n    protection: true",
    );
    let c = config(&bed, &guarded);
    run_ok(&bed, &["apply", &c, "--yes"]);
    let keep = config(
        &bed,
        &stopped.replace(
            "secure_boot: true",
            "secure_boot: true\n    protection: true",
        ),
    );
    bed.clear_journal();
    let out = pvefleet(&bed, &["apply", &keep, "--yes", "--allow-data-loss"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(changing(&bed), Vec::<String>::new());
    assert!(text(&out).contains("'protection: false'"), "{}", text(&out));
    let back = config(
        &bed,
        &stopped.replace(
            "secure_boot: true",
            "secure_boot: true\n    protection: false",
        ),
    );
    bed.clear_journal();
    run_ok(&bed, &["apply", &back, "--yes", "--allow-data-loss"]);
    assert_eq!(
        changing(&bed),
        vec![
            "qm set 301 --protection 0".to_string(),
            "qm set 301 --delete efidisk0".to_string(),
            "qm set 301 --efidisk0 local-lvm:1,efitype=4m,pre-enrolled-keys=1".to_string(),
        ]
    );
}

const LIFECYCLE: &str = "  - vmid: 401
    name: db-01
    state: stopped
    memory: 4096
    pool: prod
    startup: {order: 1, up: 30}
    protection: true
    ha: {state: stopped, group: g1}
    agent: {fstrim_cloned_disks: true}
    balloon: 1024
    numa: true
    hotplug: [disk]
";

#[test]
fn lifecycle_options_apply_then_nothing_then_each_update_as_planned() {
    let bed = bed();
    ssh_ok(&bed, "pvesh create /pools --poolid prod");
    ssh_ok(&bed, "pvesh create /pools --poolid dev");
    ssh_ok(&bed, "ha-manager groupadd g1 --nodes pve");
    let c = config(&bed, LIFECYCLE);
    run_ok(&bed, &["apply", &c, "--yes"]);
    let state = bed.state();
    let cfg = &vm(&bed, 401)["config"];
    assert_eq!(cfg["startup"], "order=1,up=30");
    assert_eq!(cfg["protection"], "1");
    assert_eq!(cfg["agent"], "enabled=1,fstrim_cloned_disks=1");
    assert_eq!(cfg["balloon"], "1024");
    assert_eq!(cfg["numa"], "1");
    assert_eq!(cfg["hotplug"], "disk");
    assert_eq!(state["pools"]["prod"], serde_json::json!([401]));
    assert_eq!(
        state["ha_resources"]["vm:401"],
        serde_json::json!({"state": "stopped", "group": "g1"})
    );

    bed.clear_journal();
    run_ok(&bed, &["apply", &c, "--yes"]);
    assert_eq!(changing(&bed), Vec::<String>::new());

    let updated = LIFECYCLE
        .replace("pool: prod", "pool: dev")
        .replace("{order: 1, up: 30}", "{order: 2, down: 60}")
        .replace("protection: true", "protection: false")
        .replace("{state: stopped, group: g1}", "{state: ignored}")
        .replace("{fstrim_cloned_disks: true}", "{type: isa}")
        .replace("balloon: 1024", "balloon: 512")
        .replace("numa: true", "numa: false")
        .replace("hotplug: [disk]", "hotplug: [network, disk]");
    let c2 = config(&bed, &updated);
    let plan = run_ok(&bed, &["plan", &c2]);
    for key in [
        "startup",
        "protection",
        "agent",
        "balloon",
        "numa",
        "hotplug",
        "pool",
        "ha",
    ] {
        assert!(plan.contains(key), "{key} not in the plan: {plan}");
    }
    let (commands, _) = planned(&bed, &c2, &[], 401);
    bed.clear_journal();
    run_ok(&bed, &["apply", &c2, "--yes"]);
    assert_eq!(changing(&bed), commands);
    assert_eq!(
        changing(&bed),
        vec![
            "qm set 401 --startup order=2,down=60 --protection 0 --agent enabled=1,type=isa --balloon 512 --numa 0 --hotplug network,disk".to_string(),
            "pvesh set /pools/prod --vms 401 --delete 1".to_string(),
            "pvesh set /pools/dev --vms 401".to_string(),
            "ha-manager set vm:401 --state ignored --delete group".to_string(),
        ]
    );
    let state = bed.state();
    let cfg = &vm(&bed, 401)["config"];
    assert_eq!(cfg["startup"], "order=2,down=60");
    assert_eq!(cfg["protection"], "0");
    assert_eq!(cfg["hotplug"], "network,disk");
    assert_eq!(state["pools"]["prod"], serde_json::json!([]));
    assert_eq!(state["pools"]["dev"], serde_json::json!([401]));
    assert_eq!(
        state["ha_resources"]["vm:401"],
        serde_json::json!({"state": "ignored", "group": null})
    );
    bed.clear_journal();
    run_ok(&bed, &["apply", &c2, "--yes"]);
    assert_eq!(changing(&bed), Vec::<String>::new());

    // Without `ha`, the resource goes; a missing pool is a plan problem.
    let no_ha = config(&bed, &updated.replace("    ha: {state: ignored}\n", ""));
    bed.clear_journal();
    run_ok(&bed, &["apply", &no_ha, "--yes"]);
    assert_eq!(changing(&bed), vec!["ha-manager remove vm:401".to_string()]);
    assert_eq!(bed.state()["ha_resources"], serde_json::json!({}));
    let missing = config(&bed, &updated.replace("pool: dev", "pool: nope"));
    let out = pvefleet(&bed, &["plan", &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("pveum pool add nope"), "{}", text(&out));
}

#[test]
fn destroy_refuses_a_protected_vm_and_removes_the_ha_resource() {
    let bed = bed();
    let vms = "  - vmid: 501\n    name: ha-01\n    protection: true\n    ha: {state: started}\n";
    let c = config(&bed, vms);
    run_ok(&bed, &["apply", &c, "--yes"]);
    assert_eq!(bed.state()["ha_resources"]["vm:501"]["state"], "started");
    bed.clear_journal();
    let out = pvefleet(&bed, &["destroy", &c, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("protection"), "{}", text(&out));
    assert_eq!(changing(&bed), Vec::<String>::new());
    assert!(!vm(&bed, 501).is_null());

    let unprotected = config(&bed, &vms.replace("protection: true", "protection: false"));
    run_ok(&bed, &["apply", &unprotected, "--yes"]);
    bed.clear_journal();
    run_ok(&bed, &["destroy", &unprotected, "--yes"]);
    let sent = changing(&bed);
    assert_eq!(
        sent.first().map(String::as_str),
        Some("ha-manager remove vm:501")
    );
    assert!(
        sent.iter().any(|l| l.starts_with("qm destroy 501")),
        "{sent:?}"
    );
    assert!(vm(&bed, 501).is_null());
    assert_eq!(bed.state()["ha_resources"], serde_json::json!({}));
}

#[test]
fn an_imported_uefi_vm_in_a_pool_with_ha_is_adopted_without_other_changes() {
    let bed = bed();
    ssh_ok(&bed, "pvesh create /pools --poolid prod");
    ssh_ok(&bed, "ha-manager groupadd g1 --nodes pve");
    ssh_ok(
        &bed,
        "qm create 160 --name uefi-legacy --memory 1024 --bios ovmf --machine q35 --efidisk0 local-lvm:1,efitype=4m,pre-enrolled-keys=1 --tpmstate0 local-lvm:1,version=v2.0 --scsihw virtio-scsi-pci --scsi0 local-lvm:4 --boot order=scsi0 --pool prod --protection 1 --startup order=3 --agent 1 && ha-manager add vm:160 --state stopped --group g1",
    );
    let out = pvefleet(&bed, &["import", "--host", "pve", "--node", "pve"]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).to_string();
    for want in [
        "    bios: ovmf\n    secure_boot: true\n    machine: q35\n    tpm: true\n    pool: prod\n    startup: {order: 3}\n    protection: true\n    ha: {state: stopped, group: g1}\n",
        "    state: stopped\n",
    ] {
        assert!(yaml.contains(want), "missing {want:?} in:\n{yaml}");
    }
    let file = bed.dir.path().join("imported.yml");
    std::fs::write(&file, &yaml).expect("write");
    let f = file.to_str().expect("utf8");
    bed.clear_journal();
    run_ok(&bed, &["apply", f, "--adopt", "--yes"]);
    let sent = changing(&bed);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("qm set 160 --tags pvefleet"),
        "{sent:?}"
    );
    bed.clear_journal();
    let again = run_ok(&bed, &["apply", f, "--yes"]);
    assert!(again.contains("no changes"), "{again}");
    assert_eq!(changing(&bed), Vec::<String>::new());
    assert_eq!(
        bed.state()["ha_resources"]["vm:160"],
        serde_json::json!({"state": "stopped", "group": "g1"})
    );
}
