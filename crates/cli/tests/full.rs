//! examples/full.yml, every feature at once, over real sshd: the host
//! prepared as docs/real-host.md tells an admin (pool, HA group, snippets
//! content type), apply converges, a re-apply changes nothing, and each
//! VM's config holds what the file asks.

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const URL: &str = "https://cloud-images.ubuntu.com/noble/20250805/noble-server-cloudimg-amd64.img";

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
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

/// A node with the file's bridges and a directory storage `nas`, prepared
/// by the admin's commands: the pool, the HA group and the `snippets`
/// content type.
fn prepared_bed() -> TestBed {
    let bed = TestBed::start(
        &exe(),
        &["pve"],
        &[
            "--bridge",
            "vmbr0",
            "--bridge",
            "vmbr1",
            "--storage",
            "nas:dir:iso+backup",
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"));
    for line in [
        "pvesh create /pools --poolid prod",
        "ha-manager groupadd prod-nodes --nodes pve",
        "pvesm set nas --content iso,backup,snippets",
    ] {
        let out = bed.ssh("pve", line);
        assert!(out.status.success(), "{line}: {}", text(&out));
    }
    // What the URL serves; the example's checksum is the file's.
    let example = std::fs::read_to_string(examples().join("full.yml")).expect("example");
    let sha = example
        .split("checksum: sha256:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("checksum in examples/full.yml");
    std::fs::write(
        bed.root.join("urls.json"),
        format!(r#"{{"{URL}": {{"sha256": "{sha}", "size": 629145600}}}}"#),
    )
    .expect("urls.json");
    bed
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn config(bed: &TestBed) -> String {
    let text = std::fs::read_to_string(examples().join("full.yml")).expect("example");
    assert!(text.contains(URL), "examples/full.yml changed its URL");
    let path = bed.dir.path().join("full.yml");
    std::fs::write(&path, text.replace("host: pve1.example.com", "host: pve"))
        .expect("write config");
    std::fs::copy(
        examples().join("ops_keys.pub"),
        bed.dir.path().join("ops_keys.pub"),
    )
    .expect("keys");
    path.to_string_lossy().into_owned()
}

fn vm<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["vms"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["config"]["name"] == name))
        .unwrap_or_else(|| panic!("no VM {name}: {state}"))
}

fn state_changing(argv: &[String]) -> bool {
    match argv.first().map(String::as_str) {
        Some("qm") => !matches!(
            argv.get(1).map(String::as_str),
            Some("config" | "guest" | "status" | "list" | "pending")
        ),
        Some("pvesh") => argv.get(1).map(String::as_str) != Some("get"),
        Some("ha-manager") => argv.get(1).map(String::as_str) != Some("status"),
        Some("install" | "rm") => true,
        _ => false,
    }
}

#[test]
fn the_full_example_converges_then_a_rerun_changes_nothing() {
    let bed = prepared_bed();
    let cfg = config(&bed);
    let first = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let state = bed.state();
    let db = &vm(&state, "db-01")["config"];
    for (key, want) in [
        ("bios", "ovmf"),
        ("machine", "q35"),
        ("protection", "1"),
        ("numa", "1"),
        ("balloon", "2048"),
        ("startup", "order=1,up=30,down=120"),
        ("agent", "enabled=1,fstrim_cloned_disks=1"),
    ] {
        assert_eq!(db[key].as_str(), Some(want), "db-01 {key}: {db}");
    }
    for key in [
        "efidisk0",
        "tpmstate0",
        "scsi1",
        "scsi2",
        "net1",
        "ipconfig1",
    ] {
        assert!(db[key].is_string(), "db-01 has no {key}: {db}");
    }
    assert!(
        db["cicustom"]
            .as_str()
            .is_some_and(|c| c.starts_with("vendor=nas:snippets/pvefleet-")),
        "{db}"
    );
    // The VM without a vmid was claimed bare, with its pool at create.
    let app2 = vm(&state, "app-02");
    assert_eq!(
        state["pools"]["prod"].as_array().map(Vec::len),
        Some(3),
        "{}",
        state["pools"]
    );
    assert!(app2["config"]["scsi0"].is_string(), "{app2}");
    let downloads = bed
        .journal_rows()
        .iter()
        .filter(|r| argv_of(r).iter().any(|w| w.ends_with("/download-url")))
        .count();
    assert_eq!(downloads, 1, "the image is downloaded once");

    bed.clear_journal();
    let again = pvefleet(&bed, &["apply", &cfg, "--yes", "--output", "json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let j: Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(j["changed"], false, "{}", text(&again));
    let changing: Vec<Vec<String>> = bed
        .journal_rows()
        .iter()
        .map(argv_of)
        .filter(|a| state_changing(a))
        .collect();
    assert!(changing.is_empty(), "the re-run changed: {changing:?}");
}
