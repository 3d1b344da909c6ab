//! `pve-sim init --version`: what hosts of PVE 7.1, 8.x and 9.x report,
//! and the default storages of a fresh installation (CONTRACT §13, §15).

use pve_sim::init::{init, InitSpec};
use pve_sim::state::Root;
use serde_json::Value;

fn host(spec: &InitSpec) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    init(&root, spec).expect("init");
    (dir, root)
}

fn run(root: &Root, program: &str, line: &str) -> (i32, String, String) {
    let args: Vec<String> = line.split(' ').map(str::to_string).collect();
    pve_sim::run(root.clone(), None, program, &args)
}

fn storage_content(root: &Root) -> Vec<(String, String)> {
    let (code, out, err) = run(
        root,
        "pvesh",
        "get /cluster/resources --type storage --output-format json",
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let mut list: Vec<(String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["storage"].as_str().unwrap_or("").to_string(),
                s["content"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    list.sort();
    list
}

#[test]
fn versions_are_full_pve_manager_versions() {
    for (given, want) in [
        ("7.1", "7.1-10"),
        ("8.4", "8.4.1"),
        ("9.0", "9.0.2"),
        ("8.2.4", "8.2.4"),
        ("7.1-10", "7.1-10"),
    ] {
        assert_eq!(pve_sim::init::pve_version(given).as_deref(), Ok(want));
    }
    for bad in ["6.4", "10.0", "8", "x.y", "8.4.1.2", "8.4."] {
        assert!(pve_sim::init::pve_version(bad).is_err(), "{bad}");
    }
    assert!(InitSpec::default().with_version("5.0").is_err());
}

#[test]
fn a_host_reports_its_version() {
    for (version, release, kernel) in [
        ("7.1", "7.1", "5.13"),
        ("8.3", "8.3", "6.8"),
        ("9.1", "9.1", "6.14"),
    ] {
        let spec = InitSpec::default().with_version(version).expect("version");
        let (_d, root) = host(&spec);
        let (_, out, _) = run(&root, "pveversion", "");
        assert!(
            out.starts_with(&["pve-manager/", release].concat()),
            "{out}"
        );
        assert!(
            out.contains(&["running kernel: ", kernel].concat()),
            "{out}"
        );
        let (_, out, _) = run(&root, "pvesh", "get /version --output-format json");
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["release"], release);
    }
}

#[test]
fn default_storages_are_those_of_a_fresh_installation() {
    let (_d, root) = host(&InitSpec::default().with_version("8.4").expect("8.4"));
    assert_eq!(
        storage_content(&root),
        [
            ("local".to_string(), "iso,vztmpl,backup".to_string()),
            ("local-lvm".to_string(), "images,rootdir".to_string()),
        ]
    );
    // The 9.0 installer also enables `import` on `local`.
    let (_d, root) = host(&InitSpec::default().with_version("9.0").expect("9.0"));
    assert_eq!(
        storage_content(&root)[0],
        ("local".to_string(), "iso,vztmpl,backup,import".to_string())
    );
    // Disks cannot go to `local`.
    let (code, _, err) = run(&root, "qm", "create 100 --scsi0 local:1");
    assert_ne!(code, 0);
    assert!(
        err.contains("storage 'local' does not support vm images"),
        "{err}"
    );
    let (code, _, err) = run(&root, "qm", "create 100 --scsi0 local-lvm:1");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn version_dependent_behaviour() {
    // PVE 7.1: random locally administered MACs, memory as a number in the
    // API, no ciupgrade option, no memhost.
    let (_d, root) = host(&InitSpec::default().with_version("7.1").expect("7.1"));
    assert_eq!(
        run(&root, "qm", "create 100 --net0 virtio --memory 1024").0,
        0
    );
    let (_, cfg, _) = run(&root, "qm", "config 100");
    let mac = cfg
        .lines()
        .find_map(|l| l.strip_prefix("net0: virtio="))
        .expect("net0")
        .to_string();
    assert!(!mac.starts_with("BC:24:11"), "{mac}");
    let first = u8::from_str_radix(&mac[..2], 16).expect("hex");
    assert_eq!(first & 3, 2, "local, unicast: {mac}");
    let (_, out, _) = run(
        &root,
        "pvesh",
        "get /nodes/pve/qemu/100/config --output-format json",
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["memory"], 1024);
    let (code, _, err) = run(&root, "qm", "set 100 --ciupgrade 0");
    assert_ne!(code, 0);
    assert!(err.contains("Unknown option: ciupgrade"), "{err}");
    let (_, out, _) = run(&root, "qm", "status 100 --verbose");
    assert!(!out.contains("memhost"), "{out}");

    // PVE 9.2: the Proxmox OUI, memory as a string, memhost, freeze-fs.
    let (_d, root) = host(&InitSpec::default().with_version("9.2").expect("9.2"));
    assert_eq!(
        run(&root, "qm", "create 100 --net0 virtio --memory 1024").0,
        0
    );
    let (_, cfg, _) = run(&root, "qm", "config 100");
    assert!(cfg.contains("net0: virtio=BC:24:11:"), "{cfg}");
    let (_, out, _) = run(
        &root,
        "pvesh",
        "get /nodes/pve/qemu/100/config --output-format json",
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["memory"], "1024");
    let (_, out, _) = run(&root, "qm", "status 100 --verbose");
    assert!(out.contains("memhost: 0"), "{out}");
    assert_eq!(
        run(&root, "qm", "set 100 --agent enabled=1,freeze-fs=1").0,
        0
    );
    assert_eq!(run(&root, "qm", "set 100 --ciupgrade 0").0, 0);

    // PVE 8.4: freeze-fs is still named freeze-fs-on-backup; no --ha-managed.
    let (_d, root) = host(&InitSpec::default());
    assert_eq!(run(&root, "qm", "create 100").0, 0);
    let (code, _, err) = run(&root, "qm", "set 100 --agent enabled=1,freeze-fs=1");
    assert_ne!(code, 0);
    assert!(
        err.contains(
            "agent: invalid format - invalid key in comma-separated list property: freeze-fs"
        ),
        "{err}"
    );
    let (code, _, err) = run(&root, "qm", "create 101 --ha-managed 1");
    assert_ne!(code, 0);
    assert!(err.contains("Unknown option: ha-managed"), "{err}");
}
