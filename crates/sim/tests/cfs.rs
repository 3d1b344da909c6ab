//! pmxcfs's cluster-wide locks as a root shell meets them, and what an
//! interrupted `qm create`/`qm clone` leaves (CONTRACT §19).

use pve_sim::state::Root;
use std::thread;
use std::time::{Duration, Instant};

fn cluster(extra: &[&str]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut args = vec![
        root.0.display().to_string(),
        "--node".into(),
        "pve1".into(),
        "--node".into(),
        "pve2".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(pve_sim::init::init_cli(&args), 0);
    (dir, root)
}

/// Runs `PROGRAM ARGS` on `node`, as a shell there would.
fn sh(root: &Root, node: &str, line: &str) -> (i32, String, String) {
    let mut words = line.split(' ').map(str::to_string);
    let program = words.next().unwrap_or_default();
    let args: Vec<String> = words.collect();
    pve_sim::run(root.clone(), Some(node.into()), &program, &args)
}

const LOCK: &str = "/etc/pve/priv/lock/pvefleet";

#[test]
fn mkdir_takes_a_lock_once_for_the_whole_cluster() {
    let (_d, root) = cluster(&[]);
    // Nobody made /etc/pve/priv/lock yet; Proxmox's code makes it first.
    let (code, _, err) = sh(&root, "pve1", &["mkdir ", LOCK].concat());
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "mkdir: cannot create directory '/etc/pve/priv/lock/pvefleet': No such file or directory\n"
    );
    assert_eq!(sh(&root, "pve1", "mkdir -p /etc/pve/priv/lock").0, 0);
    assert_eq!(
        sh(&root, "pve1", &["mkdir ", LOCK].concat()),
        (0, String::new(), String::new())
    );
    assert!(root.join("etc/pve/priv/lock/pvefleet").is_dir());
    // Exactly one mkdir wins, on any node.
    let (code, _, err) = sh(&root, "pve2", &["mkdir ", LOCK].concat());
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "mkdir: cannot create directory '/etc/pve/priv/lock/pvefleet': File exists\n"
    );
    // `mkdir -p` is content with an existing directory: it takes nothing.
    assert_eq!(sh(&root, "pve2", &["mkdir -p ", LOCK].concat()).0, 0);
    // rmdir releases it, from any node; a second rmdir finds nothing.
    assert_eq!(sh(&root, "pve2", &["rmdir ", LOCK].concat()).0, 0);
    let (code, _, err) = sh(&root, "pve1", &["rmdir ", LOCK].concat());
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "rmdir: failed to remove '/etc/pve/priv/lock/pvefleet': No such file or directory\n"
    );
    assert_eq!(sh(&root, "pve2", &["mkdir ", LOCK].concat()).0, 0);
    // The rest of /etc/pve is not emulated, and left alone.
    let (code, _, err) = sh(&root, "pve1", "mkdir /etc/pve/nodes/pve1/x");
    assert_ne!(code, 0);
    assert!(err.contains("pve-sim emulates /etc/pve/priv/lock"), "{err}");
}

#[test]
fn an_unlock_request_removes_only_an_expired_lock() {
    let (_d, root) = cluster(&["--cfs-lock-expiry-ms", "300"]);
    assert_eq!(sh(&root, "pve1", "mkdir -p /etc/pve/priv/lock").0, 0);
    assert_eq!(sh(&root, "pve1", &["mkdir ", LOCK].concat()).0, 0);
    // Young: pmxcfs refuses the mtime of 0.
    let (code, _, err) = sh(&root, "pve2", &["touch -d @0 ", LOCK].concat());
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "touch: setting times of '/etc/pve/priv/lock/pvefleet': Permission denied\n"
    );
    assert!(root.join("etc/pve/priv/lock/pvefleet").is_dir());
    thread::sleep(Duration::from_millis(400));
    // Expired: the request removes it, and the next mkdir wins.
    assert_eq!(sh(&root, "pve2", &["touch -d @0 ", LOCK].concat()).0, 0);
    assert!(!root.join("etc/pve/priv/lock/pvefleet").exists());
    assert_eq!(sh(&root, "pve2", &["mkdir ", LOCK].concat()).0, 0);
}

#[test]
fn only_the_node_that_holds_a_lock_can_renew_it() {
    let (_d, root) = cluster(&["--cfs-lock-expiry-ms", "400"]);
    assert_eq!(sh(&root, "pve1", "mkdir -p /etc/pve/priv/lock").0, 0);
    assert_eq!(sh(&root, "pve1", &["mkdir ", LOCK].concat()).0, 0);
    let (code, _, err) = sh(&root, "pve2", &["touch ", LOCK].concat());
    assert_eq!(code, 1, "{err}");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sh(&root, "pve1", &["touch ", LOCK].concat()).0,
        0,
        "renewed"
    );
    thread::sleep(Duration::from_millis(250));
    // 550 ms after the mkdir, 250 ms after the renewal: still held.
    assert_eq!(sh(&root, "pve2", &["touch -d @0 ", LOCK].concat()).0, 1);
    thread::sleep(Duration::from_millis(250));
    assert_eq!(sh(&root, "pve2", &["touch -d @0 ", LOCK].concat()).0, 0);
}

#[test]
fn proxmox_waits_for_a_shared_storage_lock_a_shell_holds() {
    let (_d, root) = cluster(&["--storage", "san:lvm:shared"]);
    assert_eq!(sh(&root, "pve1", "mkdir -p /etc/pve/priv/lock").0, 0);
    assert_eq!(
        sh(&root, "pve1", "mkdir /etc/pve/priv/lock/storage-san").0,
        0
    );
    let releaser = {
        let root = root.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(1500));
            sh(&root, "pve1", "rmdir /etc/pve/priv/lock/storage-san")
        })
    };
    let t = Instant::now();
    let (code, out, err) = sh(&root, "pve2", "qm create 100 --scsi0 san:1");
    assert_eq!(code, 0, "{err}");
    assert!(t.elapsed() >= Duration::from_millis(1500));
    // The create is a task: its waiting line is on stdout.
    assert!(
        out.starts_with("trying to acquire cfs lock 'storage-san' ...\n"),
        "{out}"
    );
    assert_eq!(err, "");
    assert_eq!(releaser.join().expect("releaser").0, 0);
    // Proxmox released its own lock.
    assert!(!root.join("etc/pve/priv/lock/storage-san").exists());
}

#[test]
fn a_killed_create_leaves_a_locked_config_that_no_process_holds() {
    let (_d, root) = cluster(&[]);
    std::fs::write(
        root.join("faults.json"),
        r#"[{"match": "qm create 100", "nth": 1, "action": "kill", "disks": 1, "seconds": 1}]"#,
    )
    .expect("faults");
    let create = {
        let root = root.clone();
        thread::spawn(move || {
            sh(
                &root,
                "pve1",
                "qm create 100 --name web --tags fleet --scsi0 local-lvm:1 --scsi1 local-lvm:1",
            )
        })
    };
    thread::sleep(Duration::from_millis(400));
    // While it runs: its flock is held, on its own node only.
    let probe = "flock -n /var/lock/qemu-server/lock-100.conf true";
    assert_eq!(
        sh(&root, "pve1", probe).0,
        1,
        "a live create holds the flock"
    );
    assert_eq!(sh(&root, "pve2", probe).0, 0, "pve2 has its own /var/lock");
    assert_eq!(sh(&root, "pve1", "qm config 100").1, "lock: create\n");
    let (code, out, _) = create.join().expect("create");
    assert_eq!(code, 137, "killed");
    assert!(
        out.contains("scsi0: successfully created disk 'local-lvm:vm-100-disk-0,size=1G'"),
        "{out}"
    );
    assert!(!out.contains("scsi1"), "{out}");
    // What it left: the id taken, no name, no tags, one volume, no holder.
    assert_eq!(
        sh(&root, "pve1", probe).0,
        0,
        "nobody holds a leftover's flock"
    );
    assert_eq!(sh(&root, "pve1", "qm config 100").1, "lock: create\n");
    let (_, list, _) = sh(
        &root,
        "pve1",
        "pvesh get /nodes/pve1/qemu --output-format json",
    );
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list[0]["name"], "VM 100", "vmstatus names a VM without one");
    assert_eq!(list[0]["lock"], "create");
    assert!(list[0].get("tags").is_none());
    let (code, _, err) = sh(&root, "pve2", "qm create 100");
    assert_ne!(code, 0);
    assert!(
        err.contains("VM 100 already exists on node 'pve1'"),
        "{err}"
    );
    let vols = || pve_sim::init::state_json(&root).expect("state").to_string();
    assert!(vols().contains("local-lvm:vm-100-disk-0") && !vols().contains("vm-100-disk-1"));
    // Removing it: the lock needs --skiplock; the orphan volume needs
    // --destroy-unreferenced-disks (no config key names it).
    assert!(sh(&root, "pve1", "qm destroy 100")
        .2
        .contains("VM is locked (create)"));
    assert_eq!(
        sh(&root, "pve1", "qm destroy 100 --skiplock 1 --purge 1").0,
        0
    );
    assert!(
        vols().contains("local-lvm:vm-100-disk-0"),
        "the orphan stays"
    );
    assert_eq!(sh(&root, "pve1", "qm create 100 --scsi0 local-lvm:1").0, 0);
    assert!(
        sh(&root, "pve1", "qm config 100")
            .1
            .contains("scsi0: local-lvm:vm-100-disk-1,size=1G"),
        "the orphan shifts the next disk's number (§4.3)"
    );
    assert_eq!(
        sh(
            &root,
            "pve1",
            "qm destroy 100 --destroy-unreferenced-disks 1 --purge 1"
        )
        .0,
        0
    );
    assert!(!vols().contains("vm-100-disk"));
}

#[test]
fn a_killed_clone_leaves_a_clone_lock() {
    let (_d, root) = cluster(&[]);
    assert_eq!(
        sh(
            &root,
            "pve1",
            "qm create 9000 --scsi0 local-lvm:1 --scsi1 local-lvm:1"
        )
        .0,
        0
    );
    std::fs::write(
        root.join("faults.json"),
        r#"[{"match": "qm clone 9000 101", "action": "kill", "disks": 1}]"#,
    )
    .expect("faults");
    let (code, out, _) = sh(&root, "pve1", "qm clone 9000 101 --name copy");
    assert_eq!(code, 137);
    assert!(
        out.contains("allocated target volume 'local-lvm:vm-101-disk-0'"),
        "{out}"
    );
    assert_eq!(sh(&root, "pve1", "qm config 101").1, "lock: clone\n");
    assert_eq!(
        sh(
            &root,
            "pve1",
            "flock -n /var/lock/qemu-server/lock-101.conf true"
        )
        .0,
        0
    );
}

#[test]
fn a_shell_reaches_the_emulated_paths_through_links_to_pve_sim() {
    let sim = std::path::Path::new(env!("CARGO_BIN_EXE_pve-sim"));
    let bed = pvefleet_test_support::TestBed::start(sim, &["pve1", "pve2"], &[])
        .unwrap_or_else(|e| panic!("{e}"));
    // The bed links every program pve-sim answers as, the shell tools too.
    for tool in ["mkdir", "rmdir", "touch", "flock"] {
        assert!(bed.bin.join(tool).exists(), "{tool} is linked");
    }
    let run = |node: &str, line: &str| {
        let o = bed.ssh(node, line);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let take = "mkdir -p /etc/pve/priv/lock && mkdir /etc/pve/priv/lock/pvefleet && echo got";
    assert_eq!(run("pve1", take).1, "got\n");
    let (code, out, err) = run("pve2", take);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "mkdir: cannot create directory '/etc/pve/priv/lock/pvefleet': File exists\n"
    );
    assert!(bed.root.join("etc/pve/priv/lock/pvefleet").is_dir());
    // Anything else runs the real tools.
    let (code, _, err) = run("pve1", "mkdir \"$TMPDIR/plain\" && rmdir \"$TMPDIR/plain\"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(run("pve2", "rmdir /etc/pve/priv/lock/pvefleet").0, 0);
    // The VM flock through util-linux's syntax.
    assert_eq!(
        run("pve1", "flock -n /var/lock/qemu-server/lock-100.conf true").0,
        0
    );
    let (code, out, _) = run(
        "pve1",
        "flock -n /var/lock/qemu-server/lock-100.conf -c 'echo held'",
    );
    assert_eq!((code, out.as_str()), (0, "held\n"));
}
