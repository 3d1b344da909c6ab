//! Successful commands that print warnings are successes; tasks that fail
//! inside with exit 0 are failures. End to end over sshd, on the shapes of
//! PVE 7 (a resize is a direct command: lvm2's warnings on stderr) and PVE
//! 8 (a resize is a task: the warnings on stdout).

use pvefleet_test_support::TestBed;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
}

fn bed(version: &str, extra: &[&str]) -> TestBed {
    let mut args = vec![
        "--image",
        "local:iso/jammy.img:1G",
        "--agent-ping-ms",
        "20",
        "--version",
        version,
    ];
    args.extend_from_slice(extra);
    TestBed::start(&exe(), &["pve"], &args).unwrap_or_else(|e| panic!("test bed: {e}"))
}

fn apply(bed: &TestBed) -> Output {
    let cfg = bed.dir.path().join("w.yml");
    std::fs::write(
        &cfg,
        "proxmox: {host: pve}\nvms:\n  - {name: w-1, vmid: 301, image: local:iso/jammy.img, disk: 8G}\n",
    )
    .expect("write");
    Command::new(exe())
        .arg("apply")
        .arg(&cfg)
        .args(["--yes", "--no-wait", "--output", "json", "--ssh-config"])
        .arg(&bed.ssh_config)
        .current_dir(bed.dir.path())
        .output()
        .expect("run")
}

fn summary(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn vm_exists(bed: &TestBed, vmid: u64) -> bool {
    bed.state()["vms"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v["vmid"].as_u64() == Some(vmid)))
}

fn thin_warned(s: &Value) -> bool {
    s["vms"][0]["warnings"].as_array().is_some_and(|w| {
        w.iter().any(|l| {
            l.as_str()
                .is_some_and(|l| l.contains("exceeds the size of thin pool"))
        })
    })
}

#[test]
fn a_resize_with_thin_pool_warnings_is_ok_on_pve_7_and_8() {
    for version in ["7.4", "8.4"] {
        let bed = bed(version, &["--thin-overprovisioned"]);
        let out = apply(&bed);
        let s = summary(&out);
        assert_eq!(out.status.code(), Some(0), "{version}: {s}");
        assert_eq!(s["vms"][0]["result"], "ok", "{version}: {s}");
        assert!(thin_warned(&s), "{version}: the warning is shown: {s}");
        assert!(vm_exists(&bed, 301), "{version}: not rolled back");
    }
}

#[test]
fn a_task_that_ends_with_warnings_is_ok_and_says_so() {
    let bed = bed("8.4", &[]);
    bed.set_faults(r#"[{"match": "qm disk resize", "nth": 1, "action": "task-warnings", "message": "volume is nearly full"}]"#);
    let out = apply(&bed);
    let s = summary(&out);
    assert_eq!(s["vms"][0]["result"], "ok", "{s}");
    let w = s["vms"][0]["warnings"].to_string();
    assert!(w.contains("Task finished with 1 warning(s)!"), "{s}");
    assert!(vm_exists(&bed, 301));
}

#[test]
fn a_resize_task_that_fails_with_exit_0_is_rolled_back_and_nothing_runs_after_it() {
    let bed = bed("8.4", &[]);
    bed.set_faults(r#"[{"match": "qm disk resize", "nth": 1, "action": "task-error", "message": "resize failed: no space left"}]"#);
    let out = apply(&bed);
    let s = summary(&out);
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert_eq!(s["vms"][0]["result"], "failed", "{s}");
    assert_eq!(s["vms"][0]["rolled_back"], true, "{s}");
    assert!(!vm_exists(&bed, 301), "rolled back");
    let started = bed
        .journal()
        .iter()
        .any(|l| l.contains("\"start\"") && l.contains("301"));
    assert!(!started, "qm start was not sent after the failed resize");
}
