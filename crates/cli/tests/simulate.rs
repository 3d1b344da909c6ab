//! `--simulate`: the emulated host follows the file (what the file names
//! and the host lacks is added on each run, and said), never changes an
//! existing storage's content types, switches release with
//! `--simulate-version`, and `sim reset` / `sim state` manage it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(repo().join("examples")).expect("examples") {
        let path = entry.expect("entry").path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, dir.path().join(name)).expect("copy");
        }
    }
    dir
}

fn pvefleet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pvefleet"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("PVEFLEET_LOG")
        .output()
        .expect("run pvefleet")
}

fn state(dir: &Path) -> Value {
    let out = pvefleet(dir, &["sim", "state", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("state JSON")
}

/// The example with `from` replaced by `to`, written as `name`.
fn variant(dir: &Path, name: &str, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(dir.join("vm_config.example.yml")).expect("example");
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn the_emulated_host_follows_the_file() {
    let dir = examples_copy();
    let d = dir.path();
    let first = pvefleet(d, &["plan", "vm_config.example.yml", "--simulate"]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("emulated host: created"));

    variant(
        d,
        "more.yml",
        &[
            (
                "image: local:iso/jammy-server-cloudimg-amd64.img",
                "image: local:iso/noble.img",
            ),
            ("bridge: vmbr0", "bridge: vmbr7"),
            ("storage: local-lvm ", "storage: fast-zfs "),
        ],
    );
    let out = pvefleet(d, &["plan", "more.yml", "--simulate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for said in [
        "emulated host: added bridge vmbr7 on pve",
        "emulated host: added storage fast-zfs (lvmthin)",
        "emulated host: added image local:iso/noble.img on pve",
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("create"), "{plan}");
    let st = state(d);
    assert!(st["nodes"][0]["bridges"]
        .as_array()
        .is_some_and(|b| b.iter().any(|x| x == "vmbr7")));
    assert!(st["storages"]
        .as_array()
        .is_some_and(|s| s.iter().any(|x| x["id"] == "fast-zfs")));
    assert!(st["volumes"]
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x["volid"] == "local:iso/noble.img")));

    // Nothing more to add: nothing said.
    let again = pvefleet(d, &["plan", "more.yml", "--simulate"]);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("emulated host"));

    // A cluster file adds its nodes.
    let cluster = pvefleet(d, &["plan", "cluster.yml", "--simulate"]);
    let stderr = String::from_utf8_lossy(&cluster.stderr);
    assert!(
        stderr.contains("emulated host: added node pve1"),
        "{stderr}"
    );
    let names: Vec<Value> = state(d)["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].clone())
        .collect();
    assert_eq!(names, ["pve", "pve1", "pve2", "pve3"]);
}

#[test]
fn an_existing_storage_keeps_its_content_types() {
    let dir = examples_copy();
    let d = dir.path();
    assert!(pvefleet(d, &["sim", "reset", "vm_config.example.yml"])
        .status
        .success());
    let content = |st: &Value| {
        st["storages"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["id"] == "local").cloned())
            .expect("local")["content"]
            .clone()
    };
    let before = content(&state(d));
    assert!(!before
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c == "import"));
    variant(
        d,
        "import.yml",
        &[(
            "image: local:iso/jammy-server-cloudimg-amd64.img",
            "image: local:import/jammy.qcow2",
        )],
    );
    let out = pvefleet(d, &["plan", "import.yml", "--simulate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("storage local does not hold import content"),
        "{stderr}"
    );
    let after = state(d);
    assert_eq!(content(&after), before);
    assert!(!after["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .any(|v| v["volid"] == "local:import/jammy.qcow2"));
}

#[test]
fn simulate_version_reset_and_state() {
    let dir = examples_copy();
    let d = dir.path();
    let file = "vm_config.example.yml";
    let out = pvefleet(
        d,
        &["plan", file, "--simulate", "--simulate-version", "7.1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(d)["version"], "7.1-10");
    // PVE 7.1 has no import-from: the classic import sequence is planned.
    assert!(String::from_utf8_lossy(&out.stdout).contains("qm importdisk"));

    let out = pvefleet(
        d,
        &["plan", file, "--simulate", "--simulate-version", "8.2"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("emulated host: now runs PVE 8.2 (was 7.1-10)"),
        "{stderr}"
    );
    assert_eq!(state(d)["version"], "8.2.2");

    let bad = pvefleet(
        d,
        &["plan", file, "--simulate", "--simulate-version", "6.4"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--simulate-version"));
    let needs = pvefleet(d, &["plan", file, "--simulate-version", "8.2"]);
    assert_eq!(needs.status.code(), Some(2), "only with --simulate");

    assert!(pvefleet(d, &["apply", file, "--simulate", "--yes"])
        .status
        .success());
    let shown = pvefleet(d, &["sim", "state"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.starts_with("emulated host in .pvefleet-sim: PVE 8.2.2"),
        "{text}"
    );
    for word in ["NODE", "STORAGE", "local-lvm", "web-01", "running"] {
        assert!(text.contains(word), "{word}: {text}");
    }

    let reset = pvefleet(d, &["sim", "reset"]);
    assert!(reset.status.success());
    assert!(!d.join(".pvefleet-sim").exists());
    let none = pvefleet(d, &["sim", "state"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no emulated host"));

    let fresh = pvefleet(d, &["sim", "reset", file, "--simulate-version", "9.0"]);
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let st = state(d);
    assert_eq!(st["version"], "9.0.2");
    assert_eq!(st["vms"].as_array().map(Vec::len), Some(0));
    // The next run finds the host made from the file.
    let plan = pvefleet(d, &["plan", file, "--simulate"]);
    assert!(plan.status.success());
    assert!(!String::from_utf8_lossy(&plan.stderr).contains("emulated host"));
}
