//! `become: sudo`: an SSH user other than root, over real sshd and real
//! sudo, with the sudoers rule of docs/real-host.md. The emulated host
//! refuses `qm`/`pvesh`/`pvesm` and `/etc/pve/priv` to anyone but root, as
//! a real one does.
//!
//! These tests add a user and a sudoers rule, so they need root; they say
//! so and pass on a machine where the tests do not run as root, unless
//! `PVEFLEET_REQUIRE_SUDO_BED=1` (scripts/test sets it as root).

use pvefleet_test_support::{argv_of, SudoRule, TestBed, SUDO_USER};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
}

/// One bed at a time: every bed's program links lead to one binary, and
/// sudo matches a command by its file, so one bed's rule would allow the
/// commands of another bed.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A bed with the sudo user, or `None` (with a notice) where that cannot be.
/// The guard of [`ONE_AT_A_TIME`] comes first: keep it to the end.
fn bed(rule: bool) -> Option<(MutexGuard<'static, ()>, TestBed, SudoRule)> {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bed = TestBed::start(
        &exe(),
        &["pve"],
        &[
            "--image",
            "local:iso/jammy-server-cloudimg-amd64.img:2G",
            "--storage",
            "local:dir:iso+vztmpl+backup+snippets",
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"));
    match bed.sudo_user(rule, "local") {
        Ok(guard) => Some((turn, bed, guard)),
        Err(e) if std::env::var("PVEFLEET_REQUIRE_SUDO_BED").as_deref() != Ok("1") => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("sudo bed: {e}"),
    }
}

/// examples/sudo.yml pointed at the bed, logging in as the sudo user;
/// `become` replaced by `with` (`None`: removed).
fn config(bed: &TestBed, with: Option<&str>) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let text = std::fs::read_to_string(examples.join("sudo.yml")).expect("example");
    let become_line = "  become: sudo          # sudo -n: never asks for a password\n";
    assert!(text.contains(become_line), "examples/sudo.yml changed");
    let text = text
        .replace("host: pve1.example.com", "host: pve")
        .replace("user: deploy", &format!("user: {SUDO_USER}"))
        .replace(
            become_line,
            &with.map(|b| format!("  become: {b}\n")).unwrap_or_default(),
        );
    let path = bed.dir.path().join("vm_config.yml");
    std::fs::write(&path, text).expect("write config");
    std::fs::copy(
        examples.join("ops_keys.pub"),
        bed.dir.path().join("ops_keys.pub"),
    )
    .expect("keys");
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

fn names(bed: &TestBed) -> Vec<String> {
    let mut n: Vec<String> = bed.state()["vms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v["config"]["name"].as_str().map(str::to_string))
        .collect();
    n.sort();
    n
}

#[test]
fn with_the_sudoers_rule_a_user_other_than_root_applies_then_changes_nothing() {
    let Some((_turn, bed, _rule)) = bed(true) else {
        return;
    };
    let cfg = config(&bed, Some("sudo"));
    let cfg = cfg.to_str().expect("utf8");
    let first = pvefleet(&bed, &["apply", cfg, "--yes", "--no-wait"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // Both VMs, the one without a vmid claimed under the fleet lock, which
    // sudo took and released in /etc/pve/priv.
    assert_eq!(names(&bed), ["ops-1", "ops-2"]);
    let rows = bed.journal_rows();
    let ran = |program: &str| {
        rows.iter()
            .any(|r| argv_of(r)[0] == program && r["exit"] == 0)
    };
    assert!(ran("mkdir") && ran("rmdir"), "the fleet lock was not taken");
    assert!(
        rows.iter()
            .all(|r| r["exit"] == 0 || argv_of(r)[0] == "flock"),
        "a command failed: {rows:?}"
    );
    bed.clear_journal();
    let again = pvefleet(
        &bed,
        &["apply", cfg, "--yes", "--no-wait", "--output", "json"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let j: Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(j["changed"], false, "{}", text(&again));
    assert!(
        bed.journal_rows()
            .iter()
            .all(|r| argv_of(r)[0] != "qm" || argv_of(r)[1] == "config"),
        "the re-run changed something"
    );
}

#[test]
fn without_become_a_user_other_than_root_is_told_to_add_it() {
    let Some((_turn, bed, _rule)) = bed(true) else {
        return;
    };
    let cfg = config(&bed, None);
    let out = pvefleet(&bed, &["plan", cfg.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("please run as root"), "{t}");
    assert!(t.contains("add 'become: sudo'"), "{t}");
}

#[test]
fn become_sudo_without_a_rule_fails_at_once_naming_the_sudoers_rule() {
    let Some((_turn, bed, _rule)) = bed(false) else {
        return;
    };
    let cfg = config(&bed, Some("sudo"));
    let out = pvefleet(&bed, &["apply", cfg.to_str().expect("utf8"), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!("sudo on {SUDO_USER}@pve refused")),
        "{t}"
    );
    assert!(t.contains("a password is required"), "{t}");
    assert!(t.contains("NOPASSWD"), "{t}");
    assert!(names(&bed).is_empty(), "something was made");
}

#[test]
fn user_data_under_become_sudo_goes_through_the_rules_snippet_lines() {
    let Some((_turn, bed, _rule)) = bed(true) else {
        return;
    };
    let yaml = format!(
        "proxmox: {{host: pve, user: {SUDO_USER}, become: sudo}}\n\
         defaults: {{image: local:iso/jammy-server-cloudimg-amd64.img, storage: local-lvm}}\n\
         vms:\n  - vmid: 130\n    name: ops-ci\n    user_data: {{packages: [htop]}}\n"
    );
    let cfg = bed.dir.path().join("ci.yml");
    std::fs::write(&cfg, yaml).expect("write config");
    let cfg = cfg.to_str().expect("utf8");
    let snippets = bed.root.join("nodes/pve/storage/local/snippets");
    let listed = || -> Vec<String> {
        std::fs::read_dir(&snippets)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let apply = pvefleet(&bed, &["apply", cfg, "--yes", "--no-wait"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let files = listed();
    assert_eq!(files.len(), 1, "{files:?}");
    let content = std::fs::read_to_string(snippets.join(&files[0])).expect("snippet");
    assert!(content.starts_with("#cloud-config\n"), "{content}");
    let state = bed.state();
    let vm = state["vms"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["config"]["name"] == "ops-ci"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        vm["config"]["cicustom"].as_str(),
        Some(format!("vendor=local:snippets/{}", files[0]).as_str())
    );
    let destroy = pvefleet(&bed, &["destroy", cfg, "--yes"]);
    assert_eq!(destroy.status.code(), Some(0), "{}", text(&destroy));
    assert!(listed().is_empty(), "the snippet is left: {:?}", listed());
}
