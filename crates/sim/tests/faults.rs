//! One test per fault action of `ROOT/faults.json`.

use pve_sim::state::Root;
use std::time::{Duration, Instant};

fn host(extra: &[&str]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut args = vec![
        root.0.display().to_string(),
        "--image".into(),
        "local:iso/x.img:1G".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(pve_sim::init::init_cli(&args), 0);
    (dir, root)
}

fn qm(root: &Root, line: &str) -> (i32, String, String) {
    let args: Vec<String> = line.split(' ').map(str::to_string).collect();
    pve_sim::run(root.clone(), None, "qm", &args)
}

fn faults(root: &Root, json: &str) {
    std::fs::write(root.join("faults.json"), json).expect("faults.json");
}

#[test]
fn fail_fires_on_the_nth_match_only() {
    let (_d, root) = host(&[]);
    faults(
        &root,
        r#"[{"match": "qm create", "nth": 2, "action": "fail", "exit": 7, "message": "boom"}]"#,
    );
    assert_eq!(qm(&root, "create 100").0, 0);
    let (code, _, err) = qm(&root, "create 101");
    assert_eq!((code, err.as_str()), (7, "boom\n"));
    assert_eq!(qm(&root, "create 102").0, 0);
    // The failed invocation changed nothing and is journaled with its exit.
    assert_ne!(qm(&root, "config 101").0, 0);
    let journal = std::fs::read_to_string(root.join("journal.jsonl")).expect("journal");
    assert!(
        journal
            .lines()
            .any(|l| l.contains(r#""argv":["qm","create","101"]"#) && l.contains(r#""exit":7"#)),
        "{journal}"
    );
}

#[test]
fn hang_delays_then_runs() {
    let (_d, root) = host(&[]);
    faults(
        &root,
        r#"[{"match": "qm start 100", "action": "hang", "seconds": 1}]"#,
    );
    assert_eq!(qm(&root, "create 100").0, 0);
    let t = Instant::now();
    assert_eq!(qm(&root, "start 100").0, 0);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(qm(&root, "status 100").1, "status: running\n");
}

#[test]
fn partial_create_leaves_a_locked_config() {
    let (_d, root) = host(&[]);
    faults(
        &root,
        r#"[{"match": "qm create 100", "action": "partial"}]"#,
    );
    let (code, _, err) = qm(&root, "create 100 --scsi0 local-lvm:1");
    assert_eq!(code, 255);
    assert!(err.contains("unable to create VM 100"), "{err}");
    assert_eq!(qm(&root, "config 100").1, "lock: create\n");
    assert!(qm(&root, "start 100").2.contains("VM is locked (create)"));
    assert!(qm(&root, "set 100 --memory 1024")
        .2
        .contains("VM is locked (create)"));
    assert_eq!(qm(&root, "destroy 100 --skiplock 1").0, 0);
    assert_ne!(qm(&root, "config 100").0, 0);
}

#[test]
fn partial_import_leaves_an_unattached_disk() {
    let (_d, root) = host(&[]);
    assert_eq!(qm(&root, "create 100").0, 0);
    faults(
        &root,
        r#"[{"match": "qm importdisk", "action": "partial"}]"#,
    );
    let path = root.0.join("nodes/pve/storage/local/template/iso/x.img");
    let (code, _, _) = qm(
        &root,
        &["importdisk 100 ", &path.display().to_string(), " local-lvm"].concat(),
    );
    assert_eq!(code, 255);
    assert!(!qm(&root, "config 100").1.contains("vm-100-disk-0"));
    let st = pve_sim::init::state_json(&root).expect("state").to_string();
    assert!(
        st.contains("local-lvm:vm-100-disk-0"),
        "the orphan stays: {st}"
    );
    // The orphan shifts the next disk's number (CONTRACT §4.3).
    assert_eq!(qm(&root, "set 100 --scsi0 local-lvm:1").0, 0);
    assert!(qm(&root, "config 100")
        .1
        .contains("scsi0: local-lvm:vm-100-disk-1,size=1G"));
    // destroy --destroy-unreferenced-disks frees it.
    assert_eq!(qm(&root, "destroy 100 --destroy-unreferenced-disks 1").0, 0);
    assert!(!pve_sim::init::state_json(&root)
        .expect("state")
        .to_string()
        .contains("vm-100-disk"));
}

#[test]
fn partial_clone_leaves_a_clone_lock() {
    let (_d, root) = host(&[]);
    assert_eq!(qm(&root, "create 9000 --scsi0 local-lvm:1").0, 0);
    assert_eq!(qm(&root, "template 9000").0, 0);
    faults(
        &root,
        r#"[{"match": "qm clone 9000 101", "action": "partial"}]"#,
    );
    assert_eq!(qm(&root, "clone 9000 101").0, 255);
    assert_eq!(qm(&root, "config 101").1, "lock: clone\n");
}

#[test]
fn drop_kills_the_ssh_session() {
    let bed = pvefleet_test_support::TestBed::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_pve-sim")),
        &["pve"],
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(bed.ssh("pve", "qm create 100").status.success());
    bed.set_faults(r#"[{"match": "qm start 100", "nth": 1, "action": "drop"}]"#);
    let out = bed.ssh("pve", "qm start 100; echo after");
    // ssh reports a lost connection with 255, and nothing after the command ran.
    assert_eq!(
        out.status.code(),
        Some(255),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("after"));
    // The next session works, and the dropped start did not happen.
    let status = bed.ssh("pve", "qm status 100");
    assert_eq!(String::from_utf8_lossy(&status.stdout), "status: stopped\n");
}

#[test]
fn an_unknown_action_fails_loudly_instead_of_injecting_nothing() {
    let (_d, root) = host(&[]);
    faults(&root, r#"[{"match": "qm create", "action": "explode"}]"#);
    let (code, _, err) = qm(&root, "create 100");
    assert_ne!(code, 0);
    assert!(
        err.contains("pve-sim: broken faults.json: unknown variant `explode`"),
        "{err}"
    );
    std::fs::remove_file(root.join("faults.json")).expect("rm");
    assert_eq!(qm(&root, "create 100").0, 0);
}
