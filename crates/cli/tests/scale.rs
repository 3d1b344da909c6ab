//! Invocation and round-trip counts, concurrent VM id allocation and the
//! image cache, end to end over real sshd (counts, not timings).

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
}

fn bed(nodes: &[&str]) -> TestBed {
    TestBed::start(
        &exe(),
        nodes,
        &["--image", "local:iso/jammy.img:1G", "--agent-ping-ms", "20"],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"))
}

fn key() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ops_keys.pub"),
    )
    .expect("key")
    .trim()
    .to_string()
}

/// A config with `n` VMs named `prefix-N`, with or without vmids.
fn fleet(bed: &TestBed, file: &str, prefix: &str, n: usize, extra: &str, vmids: bool) -> PathBuf {
    let mut y = ["proxmox: {host: pve}\ndefaults:\n  image: local:iso/jammy.img\n  disk: 4G\n  ssh_keys: [\"", &key(), "\"]\n", extra, "vms:\n"].concat();
    for i in 0..n {
        y.push_str(&["  - {name: ", prefix, "-", &i.to_string()].concat());
        if vmids {
            y.push_str(&[", vmid: ", &(400 + i).to_string()].concat());
        }
        y.push_str("}\n");
    }
    let path = bed.dir.path().join(file);
    std::fs::write(&path, y).expect("write");
    path
}

/// A file for the two-node cluster `pve1`, `pve2`: extra `defaults` lines,
/// then one VM per `(name, vmid, node)`.
fn cluster_fleet(
    bed: &TestBed,
    file: &str,
    defaults: &str,
    vms: &[(String, usize, &str)],
) -> PathBuf {
    let mut y = [
        "nodes:\n  pve1: {host: pve1}\n  pve2: {host: pve2}\ndefaults:\n  image: local:iso/jammy.img\n  disk: 4G\n  ssh_keys: [\"",
        &key(),
        "\"]\n",
        defaults,
        "vms:\n",
    ]
    .concat();
    for (name, vmid, node) in vms {
        y.push_str(
            &[
                "  - {name: ",
                name,
                ", vmid: ",
                &vmid.to_string(),
                ", node: ",
                node,
                "}\n",
            ]
            .concat(),
        );
    }
    let path = bed.dir.path().join(file);
    std::fs::write(&path, y).expect("write");
    path
}

fn apply(bed: &TestBed, cfg: &Path) -> Output {
    Command::new(exe())
        .arg("apply")
        .arg(cfg)
        .args(["--yes", "--output", "json", "--ssh-config"])
        .arg(&bed.ssh_config)
        .output()
        .expect("run")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

/// The entry of VM `name` in an apply summary.
fn vm_in(summary: &Value, name: &str) -> Value {
    summary["vms"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} in {summary}"))
}

/// The argv of every invocation in the journal.
fn journal(bed: &TestBed) -> Vec<Vec<String>> {
    bed.journal_rows().iter().map(argv_of).collect()
}

fn is_read(a: &[String]) -> bool {
    matches!(a.first().map(String::as_str), Some("pvesh" | "pvesm"))
        || a.get(1).is_some_and(|c| c == "guest")
}

#[test]
fn counts_per_vm_stay_constant_as_the_fleet_grows() {
    let mut reads = Vec::new();
    let mut trips = Vec::new();
    for n in [2usize, 8] {
        let bed = bed(&["pve"]);
        let cfg = fleet(&bed, "f.yml", "vm", n, "", true);
        let out = apply(&bed, &cfg);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j = journal(&bed);
        // Creation: exactly create + resize + start per VM.
        for i in 0..n {
            let id = (400 + i).to_string();
            let mine: Vec<&Vec<String>> = j
                .iter()
                .filter(|a| {
                    a.first().map(String::as_str) == Some("qm") && a.contains(&id) && !is_read(a)
                })
                .collect();
            let verbs: Vec<&str> = mine.iter().map(|a| a[1].as_str()).collect();
            assert_eq!(verbs, ["create", "disk", "start"], "{id}: {mine:?}");
        }
        // Observation does not grow with the fleet.
        reads.push(j.iter().filter(|a| a[0] != "qm").count());
        trips.push(
            json(&out)["round_trips"]["pve"]
                .as_u64()
                .expect("round_trips"),
        );
    }
    assert_eq!(
        reads[0], reads[1],
        "pvesh/pvesm invocations for 2 and 8 VMs"
    );
    // Observation and uploads are the same for both fleets; each VM adds one
    // round trip for its steps and (the agent answers at once here) one for
    // the agent.
    assert_eq!(trips[1] - trips[0], 2 * 6, "round trips {trips:?}");
}

#[test]
fn two_concurrent_applies_never_share_a_vmid() {
    let bed = bed(&["pve"]);
    let a = fleet(&bed, "a.yml", "a", 6, "", false);
    let b = fleet(&bed, "b.yml", "b", 6, "", false);
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| apply(&bed, &a));
        let hb = s.spawn(|| apply(&bed, &b));
        (ha.join().expect("a"), hb.join().expect("b"))
    });
    assert!(
        ra.status.success(),
        "{}",
        String::from_utf8_lossy(&ra.stderr)
    );
    assert!(
        rb.status.success(),
        "{}",
        String::from_utf8_lossy(&rb.stderr)
    );
    let vms = bed.state()["vms"].as_array().cloned().unwrap_or_default();
    assert_eq!(vms.len(), 12);
    let mut names: Vec<String> = vms
        .iter()
        .filter_map(|v| v["config"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12, "every VM once: {names:?}");
    // Re-running either file finds its VMs by name: nothing to do.
    let again = json(&apply(&bed, &a));
    assert_eq!(again["changed"], false);
}

#[test]
fn image_cache_imports_once_and_links_clones() {
    let bed = bed(&["pve"]);
    let cfg = fleet(&bed, "c.yml", "c", 3, "  disk_from: linked-clone\n", true);
    let out = apply(&bed, &cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = journal(&bed);
    let imports = j
        .iter()
        .filter(|a| a.iter().any(|w| w.contains("import-from=")))
        .count();
    assert_eq!(imports, 1, "the image is imported once");
    let vms = bed.state()["vms"].as_array().cloned().unwrap_or_default();
    let template = vms
        .iter()
        .find(|v| v["config"]["template"] == "1")
        .expect("cache template");
    assert!(template["config"]["tags"]
        .as_str()
        .is_some_and(|t| t.contains("pvefleet-cache")));
    let base = template["config"]["scsi0"]
        .as_str()
        .and_then(|s| s.split(',').next())
        .expect("base volume")
        .to_string();
    assert!(base.contains("base-"), "{base}");
    for i in 0..3 {
        let v = vms.iter().find(|v| v["vmid"] == 400 + i).expect("clone");
        let scsi0 = v["config"]["scsi0"].as_str().unwrap_or("");
        assert!(
            scsi0.contains(&["parent=", &base].concat()) && scsi0.ends_with("size=4G"),
            "{scsi0}"
        );
        assert_eq!(v["status"], "running");
        assert!(v["config"]["ide2"]
            .as_str()
            .is_some_and(|s| s.contains("cloudinit")));
    }
    assert_eq!(json(&apply(&bed, &cfg))["changed"], false);
    // destroy keeps the cache unless asked.
    let d = Command::new(exe())
        .arg("destroy")
        .arg(&cfg)
        .args(["--yes", "--ssh-config"])
        .arg(&bed.ssh_config)
        .output()
        .expect("destroy");
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let left = bed.state()["vms"].as_array().cloned().unwrap_or_default();
    assert_eq!(left.len(), 1, "only the cache template stays");
    let d = Command::new(exe())
        .arg("destroy")
        .arg(&cfg)
        .args(["--yes", "--include-cache", "--ssh-config"])
        .arg(&bed.ssh_config)
        .output()
        .expect("destroy");
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(bed.state()["vms"].as_array().is_some_and(|v| v.is_empty()));
}

#[test]
fn a_slow_node_does_not_hold_up_the_others() {
    let bed = bed(&["pve1", "pve2"]);
    let vms: Vec<(String, usize, &str)> = ["pve1", "pve1", "pve2", "pve2"]
        .iter()
        .enumerate()
        .map(|(i, node)| (["s-", &i.to_string()].concat(), 500 + i, *node))
        .collect();
    let cfg = cluster_fleet(&bed, "s.yml", "  disk_from: linked-clone\n", &vms);
    // The first cache template to be created, on whichever node, takes 3 s
    // longer.
    bed.set_faults(r#"[{"match": "qm create", "nth": 1, "action": "hang", "seconds": 3}]"#);
    let out = apply(&bed, &cfg);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = bed.journal_rows();
    let argv = argv_of;
    let creates: Vec<&Value> = rows
        .iter()
        .filter(|r| argv(r).get(1).is_some_and(|c| c == "create"))
        .collect();
    assert_eq!(creates.len(), 2, "one template per node");
    let slow = creates
        .iter()
        .max_by_key(|r| r["end_ms"].as_u64())
        .expect("slow create");
    let slow_node = slow["node"].as_str().expect("node");
    let slow_end = slow["end_ms"].as_u64().expect("end");
    let other_starts: Vec<u64> = rows
        .iter()
        .filter(|r| r["node"].as_str() != Some(slow_node))
        .filter(|r| argv(r).get(1).is_some_and(|c| c == "start"))
        .filter_map(|r| r["end_ms"].as_u64())
        .collect();
    assert_eq!(other_starts.len(), 2, "{rows:?}");
    assert!(
        other_starts.iter().all(|&e| e < slow_end),
        "the other node's VMs ran while {slow_node} built its template: {other_starts:?} vs {slow_end}"
    );
}

/// The most invocations of `rows` running at one moment.
fn peak_overlap(rows: &[&Value]) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for r in rows {
        edges.push((r["start_ms"].as_u64().expect("start"), 1));
        edges.push((r["end_ms"].as_u64().expect("end"), -1));
    }
    // Ends before starts at the same millisecond: touching is not overlapping.
    edges.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    peak as usize
}

#[test]
fn a_shared_storage_bounds_allocations_across_nodes() {
    let bed = TestBed::start(
        &exe(),
        &["pve1", "pve2"],
        &[
            "--image",
            "local:iso/jammy.img:1G",
            "--storage",
            "san:lvm:shared",
            "--latency-ms",
            "300",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"));
    let vms: Vec<(String, usize, &str)> = (0..8)
        .map(|i| {
            let node = if i % 2 == 0 { "pve1" } else { "pve2" };
            (["b-", &i.to_string()].concat(), 600 + i, node)
        })
        .collect();
    let cfg = cluster_fleet(&bed, "b.yml", "  storage: san\n", &vms);
    let out = Command::new(exe())
        .arg("apply")
        .arg(&cfg)
        .args([
            "--yes",
            "--no-wait",
            "--output",
            "json",
            "--parallel",
            "4",
            "--parallel-storage",
            "2",
            "--ssh-config",
        ])
        .arg(&bed.ssh_config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = bed.journal_rows();
    let verb = |r: &Value| r["argv"][1].as_str().unwrap_or("").to_string();
    let qm: Vec<&Value> = rows.iter().filter(|r| r["argv"][0] == "qm").collect();
    let allocating: Vec<&Value> = qm
        .iter()
        .copied()
        .filter(|r| matches!(verb(r).as_str(), "create" | "disk"))
        .collect();
    assert_eq!(allocating.len(), 16, "a create and a resize per VM");
    assert_eq!(
        peak_overlap(&allocating),
        2,
        "both nodes share the bound of 2 on the shared storage"
    );
    assert!(
        peak_overlap(&qm) > 2,
        "starts are outside the bound and run alongside"
    );
    for v in bed.state()["vms"].as_array().cloned().unwrap_or_default() {
        assert_eq!(v["status"], "running", "{v}");
    }
}

#[test]
fn an_unreachable_node_leaves_the_others_to_converge() {
    let mut bed = bed(&["pve1", "pve2"]);
    let vms = [
        ("u-0".to_string(), 700, "pve1"),
        ("u-1".to_string(), 701, "pve2"),
        ("u-2".to_string(), 702, "auto"),
    ];
    let cfg = cluster_fleet(&bed, "u.yml", "", &vms);
    // The first node, which would read the cluster-wide views, is down.
    bed.stop_node("pve1");
    let out = apply(&bed, &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("warning: node pve1"), "{stderr}");
    let j = json(&out);
    let vm = |name: &str| vm_in(&j, name);
    assert_eq!(vm("u-0")["result"], "skipped");
    assert!(vm("u-0")["error"]
        .as_str()
        .is_some_and(|e| e.contains("pve1 could not be reached")));
    assert_eq!(vm("u-1")["result"], "ok");
    assert_eq!(
        (vm("u-2")["result"].clone(), vm("u-2")["node"].clone()),
        ("ok".into(), "pve2".into())
    );
    let vms = bed.state()["vms"].as_array().cloned().unwrap_or_default();
    let mut running: Vec<(u64, String)> = vms
        .iter()
        .filter(|v| v["status"] == "running")
        .map(|v| {
            (
                v["vmid"].as_u64().unwrap_or(0),
                v["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    running.sort();
    assert_eq!(
        running,
        [(701, "pve2".to_string()), (702, "pve2".to_string())]
    );
}

#[test]
fn concurrent_applies_building_cache_templates_both_converge() {
    let bed = bed(&["pve"]);
    let cfg = |file: &str, prefix: &str, disk: &str| {
        let mut y = [
            "proxmox: {host: pve}\ndefaults:\n  image: local:iso/jammy.img\n  disk: ",
            disk,
            "\n  disk_from: linked-clone\n  ssh_keys: [\"",
            &key(),
            "\"]\nvms:\n",
        ]
        .concat();
        for i in 0..3 {
            y.push_str(&["  - {name: ", prefix, "-", &i.to_string(), "}\n"].concat());
        }
        let path = bed.dir.path().join(file);
        std::fs::write(&path, y).expect("write");
        path
    };
    // Two cache keys (disk sizes), so two templates; both runs see the same
    // next free id. The first template create waits a second before it
    // runs, so the other run takes that id first.
    let a = cfg("a.yml", "ca", "4G");
    let b = cfg("b.yml", "cb", "8G");
    bed.set_faults(r#"[{"match": "qm create", "nth": 1, "action": "hang", "seconds": 1}]"#);
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| apply(&bed, &a));
        let hb = s.spawn(|| apply(&bed, &b));
        (ha.join().expect("a"), hb.join().expect("b"))
    });
    for r in [&ra, &rb] {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let vms = bed.state()["vms"].as_array().cloned().unwrap_or_default();
    let templates: Vec<&Value> = vms
        .iter()
        .filter(|v| v["config"]["template"] == "1")
        .collect();
    assert_eq!(templates.len(), 2, "one template per cache key");
    let running = vms.iter().filter(|v| v["status"] == "running").count();
    assert_eq!(running, 6);
    let both = [&ra, &rb]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.stderr).to_string())
        .collect::<String>();
    assert!(both.contains("was taken meanwhile"), "{both}");
}

#[test]
fn a_node_that_fails_its_reads_is_left_out_too() {
    let bed = bed(&["pve1", "pve2"]);
    let vms = [
        ("r-0".to_string(), 710, "pve1"),
        ("r-1".to_string(), 711, "pve2"),
    ];
    let cfg = cluster_fleet(&bed, "r.yml", "", &vms);
    bed.set_faults(r#"[{"match": "pvesh get /nodes/pve2/network", "action": "fail", "exit": 255, "message": "permission denied - invalid PVE ticket"}]"#);
    let out = apply(&bed, &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("warning: node pve2"), "{stderr}");
    let j = json(&out);
    assert_eq!(vm_in(&j, "r-0")["result"], "ok");
    assert_eq!(vm_in(&j, "r-1")["result"], "skipped");
    let nodes: Vec<(u64, String)> = bed.state()["vms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            (
                v["vmid"].as_u64().unwrap_or(0),
                v["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(nodes, [(710, "pve1".to_string())]);
}

#[test]
fn a_failed_cache_template_fails_its_clones_with_the_reason() {
    let bed = bed(&["pve"]);
    let cfg = fleet(&bed, "f.yml", "f", 2, "  disk_from: linked-clone\n", true);
    bed.set_faults(r#"[{"match": "qm create", "nth": 1, "action": "fail", "exit": 255, "message": "unable to create VM 100 - no space left on device"}]"#);
    let out = apply(&bed, &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no space left on device"), "{stderr}");
    let j = json(&out);
    for v in j["vms"].as_array().cloned().unwrap_or_default() {
        assert_eq!(v["result"], "failed", "{v}");
        assert_eq!(v["error"], "the image cache template could not be prepared");
    }
    assert_eq!(bed.state()["vms"].as_array().map(Vec::len), Some(0));
    // The fault fired once: the next run builds the template and converges.
    let again = apply(&bed, &cfg);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
