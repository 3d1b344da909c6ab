//! Every qm command `plan` emits for the examples passes Proxmox's parameter
//! schema (the copy vendored in pve-sim, parsed independently of the
//! renderer).

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn planned_commands_pass_the_qm_schema() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for f in std::fs::read_dir(&examples)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let local: PathBuf = dir.path().join(f.file_name().expect("name"));
        std::fs::copy(&f, &local).expect("copy");
        let _ = std::fs::copy(
            examples.join("ops_keys.pub"),
            dir.path().join("ops_keys.pub"),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_pvefleet"))
            .args(["plan", "--simulate", "--output", "json"])
            .arg(&local)
            .current_dir(dir.path())
            .output()
            .expect("plan");
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        for vm in plan["vms"].as_array().expect("vms") {
            assert!(
                matches!(vm["action"].as_str(), Some("create")),
                "{}: {vm}",
                f.display()
            );
            let cmds: Vec<&str> = vm["commands"]
                .as_array()
                .expect("commands")
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
            assert!(
                cmds.iter()
                    .any(|c| c.starts_with("qm create") || c.starts_with("qm clone")),
                "{vm}"
            );
            for c in cmds.iter().filter(|c| c.starts_with("qm ")) {
                let words = shlex::split(c).unwrap_or_else(|| panic!("unparsable: {c}"));
                if let Err(e) = pve_sim::schema::parse_qm(&words[1..]) {
                    panic!("{}: schema rejects `{c}`:\n{}", f.display(), e.stderr);
                }
                checked += 1;
            }
            if let Some(create) = cmds
                .iter()
                .find(|c| c.starts_with("qm create") && c.contains("--ide2"))
            {
                assert!(create.contains(":cloudinit"), "cloud-init drive: {create}");
                assert!(
                    create.contains("import-from=/"),
                    "import-from a host path: {create}"
                );
                assert!(create.contains("pvefleet"), "ownership tag: {create}");
            }
        }
    }
    assert!(checked >= 20, "only {checked} commands checked");
}

#[test]
fn schema_rejects_what_a_host_rejects() {
    let bad = [
        "create 100 --net0 virtio,tag=5000",
        "create --start 100",
        "set 100 --scsi0 local-lvm:0,import-from=local:iso/x.img,foo=1",
        "create 100 --memory 8",
        "create 100 --name web_01",
        "create 100 --bogus 1",
        "disk resize 100 scsi0 10GB",
    ];
    for b in bad {
        let words: Vec<String> = b.split(' ').map(str::to_string).collect();
        assert!(
            pve_sim::schema::parse_qm(&words).is_err(),
            "accepted: qm {b}"
        );
    }
}
