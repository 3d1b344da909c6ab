//! The first hour on a host that already has VMs, end to end over real sshd:
//! a VM made by hand is imported into a file, is a conflict that names the
//! fix, is adopted by `apply --adopt` with one `qm set` and keeps its disk;
//! `init` writes a starter file that passes `check`.

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
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
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"))
}

fn pvefleet(bed: &TestBed, args: &[&str]) -> Output {
    Command::new(exe())
        .args(args)
        .arg("--ssh-config")
        .arg(&bed.ssh_config)
        .current_dir(bed.dir.path())
        .env_remove("PVEFLEET_LOG")
        .env_remove("PVEFLEET_VERBOSE")
        .output()
        .expect("run pvefleet")
}

fn check(bed: &TestBed, file: &Path) -> Output {
    Command::new(exe())
        .arg("check")
        .arg(file)
        .current_dir(bed.dir.path())
        .output()
        .expect("run pvefleet check")
}

fn text(o: &Output) -> String {
    [
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    ]
    .concat()
}

fn vm(bed: &TestBed, id: u64) -> Value {
    bed.state()["vms"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["vmid"] == id).cloned())
        .unwrap_or_else(|| panic!("no VM {id}"))
}

/// `qm` commands that change something, from the journal.
fn changing(bed: &TestBed) -> Vec<Vec<String>> {
    bed.journal_rows()
        .iter()
        .map(argv_of)
        .filter(|a| {
            a.first().map(String::as_str) == Some("qm")
                && !matches!(
                    a.get(1).map(String::as_str),
                    Some("config" | "guest" | "status" | "list" | "pending")
                )
        })
        .collect()
}

/// The JSON block after "### `id`" in docs/json.md.
fn documented(id: &str) -> Value {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json.md"))
            .expect("docs/json.md");
    let at = doc
        .find(&format!("### `{id}`"))
        .unwrap_or_else(|| panic!("docs/json.md has no section {id}"));
    let rest = &doc[at..];
    let start = rest.find("```json\n").expect("a json block") + 8;
    let end = start + rest[start..].find("```").expect("end of block");
    serde_json::from_str(&rest[start..end]).unwrap_or_else(|e| panic!("docs/json.md {id}: {e}"))
}

/// Every key of `actual` is shown in `doc`, recursively.
fn keys_documented(actual: &Value, doc: &Value, path: &str) {
    match (actual, doc) {
        (Value::Object(a), Value::Object(d)) => {
            for (k, v) in a {
                let shown = d
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} is not in docs/json.md"));
                keys_documented(v, shown, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(d)) => {
            if let Some(item) = d.first() {
                for (i, v) in a.iter().enumerate() {
                    keys_documented(v, item, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

#[test]
fn a_vm_made_by_hand_is_imported_then_adopted_and_keeps_its_disk() {
    let bed = bed();
    let made = bed.ssh(
        "pve",
        "qm create 150 --name legacy-01 --memory 1024 --cores 2 --net0 virtio,bridge=vmbr0 --scsihw virtio-scsi-pci --scsi0 local-lvm:4 --boot order=scsi0 --ipconfig0 ip=10.0.0.80/24,gw=10.0.0.1 --tags legacy --description 'hand made' && qm start 150",
    );
    assert!(made.status.success(), "{}", text(&made));
    let disk_before = vm(&bed, 150)["config"]["scsi0"].clone();
    assert!(
        disk_before.as_str().is_some_and(|d| d.ends_with("size=4G")),
        "{disk_before}"
    );

    // import: a file that passes check, naming the VM as it is.
    let out = pvefleet(&bed, &["import", "--host", "pve", "--node", "pve"]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        yaml.starts_with("# yaml-language-server: $schema="),
        "{yaml}"
    );
    for want in [
        "proxmox:\n  host: pve\n  node: pve\n",
        "  - vmid: 150\n    name: legacy-01\n    node: pve\n    memory: 1024\n    cores: 2\n",
        "    bridge: vmbr0\n",
        "    ip: \"10.0.0.80/24\"\n    gateway: \"10.0.0.1\"\n",
        "    storage: local-lvm\n    disk: 4G\n",
        "    tags: [legacy]\n    description: \"hand made\"\n",
        "    state: running\n",
        "TODO",
    ] {
        assert!(yaml.contains(want), "missing {want:?} in:\n{yaml}");
    }
    let file = bed.dir.path().join("imported.yml");
    std::fs::write(&file, &yaml).expect("write");
    let c = check(&bed, &file);
    assert!(c.status.success(), "{}\n{yaml}", text(&c));
    let f = file.to_str().expect("utf8");

    // Not managed yet: a conflict whose message names the fix.
    let out = pvefleet(&bed, &["plan", f]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("pvefleet apply --adopt"),
        "{}",
        text(&out)
    );

    // Adopted with one qm set: the marker, nothing else.
    bed.clear_journal();
    let out = pvefleet(&bed, &["apply", f, "--adopt", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("adopt"), "{}", text(&out));
    assert_eq!(
        changing(&bed),
        [vec![
            "qm",
            "set",
            "150",
            "--tags",
            "legacy;pvefleet",
            "--description",
            "hand made\nmanaged-by: pvefleet",
        ]]
    );

    // Managed now: nothing to do, and the VM kept its disk and ran on.
    let out = pvefleet(&bed, &["plan", f]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no changes"), "{}", text(&out));
    let after = vm(&bed, 150);
    assert_eq!(after["config"]["scsi0"], disk_before);
    assert_eq!(after["status"], "running");
    assert_eq!(after["config"]["tags"], "legacy;pvefleet");
}

#[test]
fn import_json_is_the_documented_document() {
    let bed = bed();
    let made = bed.ssh(
        "pve",
        "qm create 160 --name tmpl --memory 512 --scsi0 local-lvm:1 && qm template 160 && qm create 161 --name keep --tags team-a && qm create 162 --name other --tags team-b",
    );
    assert!(made.status.success(), "{}", text(&made));
    let out = pvefleet(&bed, &["import", "--host", "pve", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    keys_documented(&v, &documented("import"), "import");
    assert_eq!(v["check"], true);
    let ids: Vec<&Value> = v["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .map(|r| &r["vmid"])
        .collect();
    assert_eq!(ids, [161, 162]);
    // The template is named as skipped, not imported.
    assert_eq!(v["skipped"][0]["vmid"], 160);
    let file = v["file"].as_str().expect("file");
    let path = bed.dir.path().join("j.yml");
    std::fs::write(&path, file).expect("write");
    assert!(check(&bed, &path).status.success(), "{file}");

    // --tag and --vmid select.
    let out = pvefleet(
        &bed,
        &[
            "import", "--host", "pve", "--tag", "team-a", "--output", "json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ids: Vec<&Value> = v["vms"]
        .as_array()
        .expect("vms")
        .iter()
        .map(|r| &r["vmid"])
        .collect();
    assert_eq!(ids, [161]);
    let out = pvefleet(&bed, &["import", "--host", "pve", "--vmid", "162"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("- vmid: 162"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("- vmid: 161"));
    // An id the node does not have is an error (exit 1), said.
    let out = pvefleet(&bed, &["import", "--host", "pve", "--vmid", "999"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("999"), "{}", text(&out));
}

#[test]
fn init_on_the_bed_writes_a_file_that_passes_check_with_its_example() {
    let bed = bed();
    let out = pvefleet(&bed, &["init", "--host", "pve"]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        yaml.starts_with("# yaml-language-server: $schema="),
        "{yaml}"
    );
    assert!(
        yaml.contains("  image: \"local:iso/jammy-server-cloudimg-amd64.img\"")
            || yaml.contains("  image: local:iso/jammy-server-cloudimg-amd64.img"),
        "{yaml}"
    );
    assert!(yaml.contains("  storage: local-lvm"), "{yaml}");
    assert!(yaml.contains("  bridge: vmbr0"), "{yaml}");
    let file = bed.dir.path().join("init.yml");
    std::fs::write(&file, &yaml).expect("write");
    let c = check(&bed, &file);
    assert!(c.status.success(), "{}\n{yaml}", text(&c));
    // Uncommented, the example VM is valid and plans a create.
    let open: String = yaml
        .lines()
        .map(|l| match l.strip_prefix("  # ") {
            Some(rest) if rest.starts_with("- ") || rest.starts_with("  ") => format!("  {rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&file, &open).expect("write");
    let c = check(&bed, &file);
    assert!(c.status.success(), "{}\n{open}", text(&c));
    assert!(
        String::from_utf8_lossy(&c.stdout).contains("1 VM"),
        "{}",
        text(&c)
    );
    let out = pvefleet(&bed, &["plan", file.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("create"), "{}", text(&out));

    let out = pvefleet(&bed, &["init", "--host", "pve", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    keys_documented(&v, &documented("init"), "init");
    assert_eq!(v["nodes"][0]["name"], "pve");
    assert_eq!(
        v["nodes"][0]["images"][0],
        "local:iso/jammy-server-cloudimg-amd64.img"
    );
}

#[test]
fn import_and_init_need_a_host() {
    let bed = bed();
    for cmd in ["import", "init"] {
        let out = Command::new(exe())
            .arg(cmd)
            .current_dir(bed.dir.path())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("--host"), "{}", text(&out));
    }
}
