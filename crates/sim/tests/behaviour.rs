//! Concurrency, the guest-agent delay and the latency model of pve-sim.

use pve_sim::state::Root;
use std::thread;
use std::time::{Duration, Instant};

fn host(extra: &[&str]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut args = vec![root.0.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(pve_sim::init::init_cli(&args), 0);
    (dir, root)
}

fn qm(root: &Root, node: Option<&str>, line: &str) -> (i32, String, String) {
    let args: Vec<String> = line.split(' ').map(str::to_string).collect();
    pve_sim::run(root.clone(), node.map(str::to_string), "qm", &args)
}

#[test]
fn many_processes_at_once_on_a_shared_root() {
    let (_d, root) = host(&["--node", "pve1", "--node", "pve2"]);
    // 24 creates with disks on two nodes, plus 8 racing for one VM id.
    let mut handles = Vec::new();
    for i in 0..24u32 {
        let root = root.clone();
        handles.push(thread::spawn(move || {
            let node = if i % 2 == 0 { "pve1" } else { "pve2" };
            qm(
                &root,
                Some(node),
                &[
                    "create ",
                    &(200 + i).to_string(),
                    " --scsi0 local-lvm:1 --ide2 local-lvm:cloudinit",
                ]
                .concat(),
            )
        }));
    }
    let mut racers = Vec::new();
    for i in 0..8 {
        let root = root.clone();
        racers.push(thread::spawn(move || {
            qm(
                &root,
                Some(if i % 2 == 0 { "pve1" } else { "pve2" }),
                "create 500 --scsi0 local-lvm:1",
            )
        }));
    }
    for h in handles {
        let (code, _, err) = h.join().expect("thread");
        assert_eq!(code, 0, "{err}");
    }
    let results: Vec<_> = racers
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.0 == 0).count(),
        1,
        "exactly one create of 500 wins"
    );
    for (code, _, err) in results.iter().filter(|r| r.0 != 0) {
        assert_eq!(*code, 255);
        assert!(
            err.contains("already exists on node") || err.contains("got timeout"),
            "{err}"
        );
    }
    let st = pve_sim::init::state_json(&root).expect("state");
    let vms = st["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), 25);
    // Every VM has exactly its own two volumes, none lost or shared.
    let vols: Vec<String> = st["storages"]
        .as_array()
        .expect("storages")
        .iter()
        .flat_map(|s| s["volumes"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["volid"].as_str().map(str::to_string))
        .collect();
    for vm in vms {
        let id = vm["vmid"].to_string();
        assert_eq!(
            vm["config"]["scsi0"].as_str(),
            Some(["local-lvm:vm-", &id, "-disk-0,size=1G"].concat().as_str())
        );
        assert!(vm["config"].get("lock").is_none());
        let own = vols
            .iter()
            .filter(|v| v.contains(&["vm-", &id, "-"].concat()))
            .count();
        let expected = if id == "500" { 1 } else { 2 };
        assert_eq!(own, expected, "volumes of {id}: {vols:?}");
    }
}

#[test]
fn agent_answers_only_after_its_boot_delay() {
    let (_d, root) = host(&["--agent-after-ms", "400", "--agent-ping-ms", "10"]);
    assert_eq!(
        qm(
            &root,
            None,
            "create 100 --agent 1 --net0 virtio,bridge=vmbr0 --ipconfig0 ip=dhcp"
        )
        .0,
        0
    );
    assert_eq!(qm(&root, None, "start 100").0, 0);
    let early = qm(&root, None, "guest cmd 100 network-get-interfaces");
    assert!(
        early.2.contains("QEMU guest agent is not running"),
        "{early:?}"
    );
    thread::sleep(Duration::from_millis(450));
    let late = qm(&root, None, "guest cmd 100 network-get-interfaces");
    assert_eq!(late.0, 0, "{late:?}");
    // ip=dhcp: the emulated DHCP server's address for this VM.
    assert!(
        late.1.contains(&pve_sim::qm::dhcp_address(100)),
        "{}",
        late.1
    );
}

#[test]
fn start_up_latency_holds_a_host_cpu_slot() {
    let (_d, root) = host(&["--latency-ms", "150", "--slots", "1"]);
    let t = Instant::now();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let root = root.clone();
            thread::spawn(move || qm(&root, None, "list"))
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().expect("thread").0, 0);
    }
    // One slot: the three start-ups cannot overlap.
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn imports_on_one_storage_share_its_bandwidth() {
    // 100 MB at 200 MB/s: 0.5 s each; two at once on one disk take >= 1 s.
    let (_d, root) = host(&[
        "--image",
        "local:iso/x.img:100000000",
        "--import-mbps",
        "200",
    ]);
    let src = root
        .0
        .join("nodes/pve/storage/local/template/iso/x.img")
        .display()
        .to_string();
    let t = Instant::now();
    let hs: Vec<_> = [100, 101]
        .iter()
        .map(|id| {
            let root = root.clone();
            let line = [
                "create ",
                &id.to_string(),
                " --scsi0 local-lvm:0,import-from=",
                &src,
            ]
            .concat();
            thread::spawn(move || qm(&root, None, &line))
        })
        .collect();
    for h in hs {
        let r = h.join().expect("thread");
        assert_eq!(r.0, 0, "{r:?}");
    }
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn allocations_wait_for_the_storage_lock_and_give_up_after_10_s() {
    // Each allocation holds its storage's lock for 2.1 s: six at once on
    // one lock need 12.6 s, so the last ones give up after their 10 s.
    let (_d, root) = host(&[
        "--node",
        "pve1",
        "--node",
        "pve2",
        "--storage",
        "san:lvm:shared",
        "--alloc-ms",
        "2100",
    ]);
    let t = Instant::now();
    let mut handles = Vec::new();
    for i in 0..12u32 {
        let root = root.clone();
        handles.push(thread::spawn(move || {
            // Six on pve1's local-lvm; six on the shared san from both nodes.
            let (node, storage) = if i < 6 {
                ("pve1", "local-lvm")
            } else {
                (if i % 2 == 0 { "pve1" } else { "pve2" }, "san")
            };
            let vmid = 300 + i;
            let out = qm(
                &root,
                Some(node),
                &["create ", &vmid.to_string(), " --scsi0 ", storage, ":1"].concat(),
            );
            (vmid, storage, out)
        }));
    }
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(t.elapsed() >= Duration::from_secs(10));
    for storage in ["local-lvm", "san"] {
        let mine: Vec<_> = results.iter().filter(|r| r.1 == storage).collect();
        let ok = mine.iter().filter(|r| r.2 .0 == 0).count();
        // 10 s of waiting lets four or five through, never all six.
        assert!((4..=5).contains(&ok), "{storage}: {ok} succeeded");
        for (vmid, _, (code, _, err)) in mine.iter().filter(|r| r.2 .0 != 0) {
            assert_eq!(*code, 255);
            let want = if storage == "san" {
                "cfs-lock 'storage-san' error: got lock request timeout".to_string()
            } else {
                "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout"
                    .to_string()
            };
            assert_eq!(
                err.trim(),
                ["unable to create VM ", &vmid.to_string(), " - ", &want].concat()
            );
        }
    }
    // A VM whose allocation gave up does not exist.
    let st = pve_sim::init::state_json(&root).expect("state");
    let count = st["vms"].as_array().map(Vec::len).unwrap_or(0);
    let ok = results.iter().filter(|r| r.2 .0 == 0).count();
    assert_eq!(count, ok);
    // Growing an LVM volume takes the lock as well.
    let (vmid, _, _) = results
        .iter()
        .find(|r| r.1 == "local-lvm" && r.2 .0 == 0)
        .expect("a local-lvm VM");
    let t = Instant::now();
    let (code, _, err) = qm(
        &root,
        Some("pve1"),
        &["disk resize ", &vmid.to_string(), " scsi0 2G"].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(t.elapsed() >= Duration::from_millis(2100));
}
