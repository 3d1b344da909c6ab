//! What pvefleet hands other tools: shell completions, manual pages, and
//! an Ansible inventory that `ansible-inventory` reads.
//!
//! `ansible-inventory` comes from ansible-core, which scripts/test installs
//! with pip when missing (and then sets PVEFLEET_REQUIRE_ANSIBLE). Without
//! it the one assertion that runs it is skipped with a notice.

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

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_are_generated_for_every_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ok(&pvefleet(dir.path(), &["completions", shell]));
        for word in ["pvefleet", "apply", "inventory", "simulate-version"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script is valid bash.
    let script = dir.path().join("pvefleet.bash");
    std::fs::write(&script, ok(&pvefleet(dir.path(), &["completions", "bash"]))).expect("write");
    if let Ok(out) = Command::new("bash").arg("-n").arg(&script).output() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bad = pvefleet(dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn manual_pages_are_generated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = ok(&pvefleet(dir.path(), &["man"]));
    assert!(page.contains(".TH pvefleet 1"), "{page}");
    for word in ["apply", "output", "PVEFLEET_LOG", "Exit status"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
    let listed = ok(&pvefleet(dir.path(), &["man", "--dir", "pages"]));
    for sub in [
        "check",
        "plan",
        "apply",
        "status",
        "destroy",
        "inventory",
        "schema",
        "sim",
    ] {
        let file = dir.path().join("pages").join(format!("pvefleet-{sub}.1"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{sub}: {e}"));
        assert!(text.contains(&format!(".TH pvefleet-{sub} 1")), "{sub}");
        assert!(listed.contains(&format!("pvefleet-{sub}.1")));
    }
    assert!(dir.path().join("pages/pvefleet.1").exists());
}

/// Runs `ansible-inventory -i FILE --list`; `None` (with a notice) when
/// ansible-core is not installed and not required.
fn ansible_list(file: &Path) -> Option<Value> {
    let out = match Command::new("ansible-inventory")
        .arg("-i")
        .arg(file)
        .arg("--list")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_LOCAL_TEMP", std::env::temp_dir())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var_os("PVEFLEET_REQUIRE_ANSIBLE").is_none(),
                "ansible-inventory is required here: {e}"
            );
            eprintln!("NOTICE: ansible-inventory not found ({e}): skipping the check that Ansible parses the inventory; scripts/test installs ansible-core");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "ansible-inventory {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("ansible-inventory --list JSON"))
}

/// The hosts of `group` in `ansible-inventory --list` output.
fn members(list: &Value, group: &str) -> Vec<String> {
    list[group]["hosts"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_inventory_groups_by_tag_and_node_and_ansible_reads_every_format() {
    let dir = examples_copy();
    let d = dir.path();
    // Static addresses need no host: nothing is contacted.
    let ini = ok(&pvefleet(d, &["inventory", "vm_config.example.yml"]));
    assert!(!d.join(".pvefleet-sim").exists());
    assert!(
        ini.contains(
            "\n[pvefleet]\nweb-01 ansible_host=10.0.0.51 ansible_user=ubuntu pvefleet_vmid=201\n"
        ),
        "{ini}"
    );
    assert!(ini.contains("\n[tag_web]\nweb-01\nweb-02\n"), "{ini}");
    assert!(ini.contains("\n[tag_db]\ndb-01\n"), "{ini}");

    // DHCP: the address comes from the guest agent.
    ok(&pvefleet(
        d,
        &["apply", "dhcp-vlan.yml", "--simulate", "--yes", "-q"],
    ));
    let dhcp = ok(&pvefleet(d, &["inventory", "dhcp-vlan.yml", "--simulate"]));
    let lab01 = dhcp
        .lines()
        .find(|l| l.starts_with("lab-01 "))
        .expect("lab-01");
    assert!(lab01.contains(" ansible_host="), "{dhcp}");
    let stopped = dhcp
        .lines()
        .find(|l| l.starts_with("lab-02 "))
        .expect("lab-02");
    assert!(
        !stopped.contains("ansible_host"),
        "a stopped VM has no address"
    );
    let offline = pvefleet(d, &["inventory", "dhcp-vlan.yml", "--offline"]);
    assert!(String::from_utf8_lossy(&offline.stderr).contains("--offline: no ansible_host"));

    // A cluster: node groups, ids known once the VMs exist.
    ok(&pvefleet(
        d,
        &["apply", "cluster.yml", "--simulate", "--yes", "-q"],
    ));

    // A cluster: node groups, ids known once the VMs exist.
    ok(&pvefleet(
        d,
        &["apply", "cluster.yml", "--simulate", "--yes", "-q"],
    ));
    for (format, ext) in [("ini", "ini"), ("yaml", "yml"), ("json", "json")] {
        let text = ok(&pvefleet(
            d,
            &["inventory", "cluster.yml", "--simulate", "--format", format],
        ));
        let file = d.join(format!("inventory.{ext}"));
        std::fs::write(&file, &text).expect("write");
        let Some(list) = ansible_list(&file) else {
            continue;
        };
        let vars = &list["_meta"]["hostvars"]["k8s-cp-1"];
        assert_eq!(vars["ansible_host"], "10.0.1.11", "{format}: {list}");
        assert_eq!(vars["ansible_user"], "ubuntu", "{format}");
        assert_eq!(vars["pvefleet_vmid"], 301, "{format}");
        assert!(list["_meta"]["hostvars"]["k8s-worker-1"]["pvefleet_vmid"].is_number());
        let mut pve1 = members(&list, "node_pve1");
        pve1.sort();
        assert_eq!(pve1, ["k8s-cp-1", "k8s-worker-1"], "{format}: {list}");
        assert_eq!(members(&list, "pvefleet").len(), 5, "{format}");
    }
    // Tag groups parse too.
    let file = d.join("tags.ini");
    std::fs::write(&file, &ini).expect("write");
    if let Some(list) = ansible_list(&file) {
        assert_eq!(members(&list, "tag_web"), ["web-01", "web-02"]);
    }
}
