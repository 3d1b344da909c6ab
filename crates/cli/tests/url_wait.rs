//! End to end over sshd: images by URL (`image: {url, checksum, storage}`)
//! downloaded once and verified, and `wait: cloud-init` reading
//! cloud-init's verdict through the guest agent.

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const URL: &str = "https://images.example.test/noble-server-cloudimg-amd64.img";

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
}

fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn bed() -> TestBed {
    TestBed::start(
        &exe(),
        &["pve"],
        &[
            "--image",
            "local:iso/jammy-server-cloudimg-amd64.img:2G",
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"))
}

/// What the emulated host finds behind the URL (`ROOT/urls.json`).
fn serve(bed: &TestBed, sha256: &str) {
    let json = format!(r#"{{"{URL}": {{"sha256": "{sha256}", "size": 629145600}}}}"#);
    std::fs::write(bed.root.join("urls.json"), json).expect("urls.json");
}

/// How the guests behave (`ROOT/guests.json`).
fn guests(bed: &TestBed, json: &str) {
    std::fs::write(bed.root.join("guests.json"), json).expect("guests.json");
}

fn write(bed: &TestBed, name: &str, yaml: &str) -> String {
    let path = bed.dir.path().join(name);
    std::fs::write(&path, yaml).expect("write config");
    path.to_string_lossy().into_owned()
}

fn url_config(bed: &TestBed, sha256: &str) -> String {
    let vms: String = (1..=3)
        .map(|i| {
            format!("  - {{vmid: 20{i}, name: web-0{i}, ip: 10.0.0.5{i}/24, gateway: 10.0.0.1}}\n")
        })
        .collect();
    write(
        bed,
        "url.yml",
        &format!(
            "proxmox:\n  host: pve\ndefaults:\n  image:\n    url: {URL}\n    checksum: sha256:{sha256}\n    storage: local\n  storage: local-lvm\nvms:\n{vms}"
        ),
    )
}

fn wait_config(bed: &TestBed, wait: &str) -> String {
    write(
        bed,
        "wait.yml",
        &format!(
            "proxmox:\n  host: pve\ndefaults:\n  image: local:iso/jammy-server-cloudimg-amd64.img\n  storage: local-lvm\n  wait: {wait}\nvms:\n  - {{vmid: 301, name: app-01, ip: 10.0.0.61/24, gateway: 10.0.0.1}}\n"
        ),
    )
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

fn journal(bed: &TestBed) -> Vec<Vec<String>> {
    bed.journal_rows().iter().map(argv_of).collect()
}

fn downloads(bed: &TestBed) -> Vec<Vec<String>> {
    journal(bed)
        .into_iter()
        .filter(|a| a.len() > 2 && a[1] == "create" && a[2].ends_with("/download-url"))
        .collect()
}

/// Commands that change the host: every `qm` but the read-only and guest
/// ones, and every `pvesh create`.
fn changing(bed: &TestBed) -> Vec<String> {
    journal(bed)
        .into_iter()
        .filter(
            |a| match (a.first().map(String::as_str), a.get(1).map(String::as_str)) {
                (Some("qm"), Some(sub)) => {
                    !matches!(sub, "config" | "guest" | "status" | "list" | "pending")
                }
                (Some("pvesh"), Some(verb)) => verb != "get",
                _ => false,
            },
        )
        .map(|a| a.join(" "))
        .collect()
}

fn volumes(bed: &TestBed) -> Vec<String> {
    let state = bed.state();
    state["storages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["volumes"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v["volid"].as_str().map(str::to_string))
        .collect()
}

fn vm_config(bed: &TestBed, vmid: u64) -> Value {
    bed.state()["vms"]
        .as_array()
        .and_then(|vms| vms.iter().find(|v| v["vmid"] == vmid).cloned())
        .map(|v| v["config"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn an_image_by_url_is_downloaded_once_for_three_vms_and_then_reused() {
    let bed = bed();
    let good = sha('a');
    serve(&bed, &good);
    let cfg = url_config(&bed, &good);
    let plan = pvefleet(&bed, &["plan", &cfg]);
    let shown = text(&plan);
    assert!(plan.status.success(), "{shown}");
    assert!(
        shown.contains("download-url") && shown.contains(URL),
        "{shown}"
    );

    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let d = downloads(&bed);
    assert_eq!(d.len(), 1, "one download for three VMs: {d:?}");
    let argv = &d[0];
    assert_eq!(argv[2], "/nodes/pve/storage/local/download-url");
    for (k, v) in [
        ("--url", URL),
        ("--filename", "noble-server-cloudimg-amd64.img"),
        ("--content", "iso"),
        ("--checksum", good.as_str()),
        ("--checksum-algorithm", "sha256"),
    ] {
        let i = argv.iter().position(|a| a == k).expect(k);
        assert_eq!(argv[i + 1], v, "{argv:?}");
    }
    assert!(volumes(&bed).contains(&"local:iso/noble-server-cloudimg-amd64.img".to_string()));
    for vmid in [201, 202, 203] {
        let c = vm_config(&bed, vmid);
        assert!(
            c["scsi0"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("local-lvm:vm-{vmid}-disk-0"))),
            "{c}"
        );
    }

    bed.clear_journal();
    let again = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(downloads(&bed).is_empty());
    assert_eq!(changing(&bed), Vec::<String>::new());

    // The image matters only when a VM is made: another URL and checksum
    // change nothing on the existing VMs.
    let moved = std::fs::read_to_string(&cfg)
        .expect("cfg")
        .replace(URL, "https://mirror.example.test/noble.img")
        .replace(&good, &sha('c'));
    let other = write(&bed, "moved.yml", &moved);
    let plan = pvefleet(&bed, &["plan", &other, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // A fourth VM uses the file already there: no download.
    let more = std::fs::read_to_string(&cfg).expect("cfg")
        + "  - {vmid: 204, name: web-04, ip: 10.0.0.54/24, gateway: 10.0.0.1}\n";
    std::fs::write(&cfg, more).expect("cfg");
    bed.clear_journal();
    let fourth = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(fourth.status.success(), "{}", text(&fourth));
    assert!(downloads(&bed).is_empty());
    let made: Vec<String> = changing(&bed)
        .into_iter()
        .filter(|c| c.starts_with("qm create"))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].contains("import-from="), "{made:?}");
}

#[test]
fn a_bad_checksum_fails_the_vms_and_leaves_no_file() {
    let bed = bed();
    serve(&bed, &sha('a'));
    let cfg = url_config(&bed, &sha('b'));
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("checksum mismatch"), "{all}");
    assert_eq!(downloads(&bed).len(), 1);
    assert!(!volumes(&bed).iter().any(|v| v.contains("noble")));
    assert!(!changing(&bed).iter().any(|c| c.starts_with("qm create")));
    assert!(bed.state()["vms"].as_array().is_none_or(Vec::is_empty));
}

#[test]
fn an_unreachable_url_is_a_clear_error() {
    let bed = bed();
    let cfg = url_config(&bed, &sha('a'));
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("download failed") && all.contains(URL),
        "{all}"
    );
    assert!(!volumes(&bed).iter().any(|v| v.contains("noble")));
}

#[test]
fn wait_cloud_init_done_is_ok_and_a_changed_wait_changes_nothing() {
    let bed = bed();
    guests(&bed, r#"{"*": {"cloud_init": "done", "after_ms": 300}}"#);
    let cfg = wait_config(&bed, "cloud-init");
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let execs: Vec<Vec<String>> = journal(&bed)
        .into_iter()
        .filter(|a| a.get(2).map(String::as_str) == Some("exec"))
        .collect();
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert!(execs[0]
        .ends_with(&["cloud-init", "status", "--wait", "--format", "json"].map(String::from)));
    assert!(journal(&bed)
        .iter()
        .any(|a| a.get(2).map(String::as_str) == Some("exec-status")));

    // `wait` is no VM setting: changing it plans nothing.
    let cfg = wait_config(&bed, "none");
    let plan = pvefleet(&bed, &["plan", &cfg, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    bed.clear_journal();
    let again = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(changing(&bed), Vec::<String>::new());
    assert!(!journal(&bed)
        .iter()
        .any(|a| a.get(1).map(String::as_str) == Some("guest")));
}

#[test]
fn wait_cloud_init_error_fails_with_the_modules_message() {
    let bed = bed();
    guests(
        &bed,
        r#"{"app-01": {"cloud_init": "error", "message": "('scripts_user', RuntimeError('Runparts: 1 failures (runcmd) in 1 attempted commands'))"}}"#,
    );
    let cfg = wait_config(&bed, "cloud-init");
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("cloud-init failed") && all.contains("scripts_user"),
        "{all}"
    );
    // The VM stays: it was made and runs; only its guest setup failed.
    assert_eq!(vm_config(&bed, 301)["name"], "app-01");
}

#[test]
fn wait_cloud_init_degraded_is_ok_with_a_warning() {
    let bed = bed();
    guests(
        &bed,
        r#"{"*": {"cloud_init": "degraded", "message": "Invalid cloud-config provided: Please run 'sudo cloud-init schema --system'"}}"#,
    );
    let cfg = wait_config(&bed, "cloud-init");
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("degraded") && all.contains("Invalid cloud-config"),
        "{all}"
    );
}

#[test]
fn wait_cloud_init_without_a_guest_agent_fails_early_with_a_hint() {
    let bed = bed();
    guests(&bed, r#"{"app-01": {"agent": false}}"#);
    let cfg = wait_config(&bed, "cloud-init");
    let start = Instant::now();
    let out = pvefleet(
        &bed,
        &[
            "apply",
            &cfg,
            "--yes",
            "--agent-grace",
            "2",
            "--wait-timeout",
            "120",
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("install qemu-guest-agent"), "{all}");
    assert!(all.contains("wait: none"), "{all}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_shared_storage_downloads_once_for_the_vms_of_every_node() {
    let bed = TestBed::start(
        &exe(),
        &["pve1", "pve2"],
        &[
            "--storage",
            "nfs:nfs:shared:iso+images",
            "--agent-ping-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("test bed: {e}"));
    serve(&bed, &sha('a'));
    let cfg = write(
        &bed,
        "cluster.yml",
        &format!(
            "nodes:\n  pve1: {{host: pve1}}\n  pve2: {{host: pve2}}\ndefaults:\n  image: {{url: '{URL}', checksum: 'sha256:{}', storage: nfs}}\n  storage: local-lvm\nvms:\n  - {{vmid: 401, name: a, node: pve1}}\n  - {{vmid: 402, name: b, node: pve2}}\n  - {{vmid: 403, name: c, node: pve2}}\n",
            sha('a')
        ),
    );
    let out = pvefleet(&bed, &["apply", &cfg, "--yes", "--no-wait"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<Value> = bed
        .journal_rows()
        .into_iter()
        .filter(|r| {
            argv_of(r)
                .get(2)
                .is_some_and(|p| p.ends_with("/download-url"))
        })
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    for vmid in [401, 402, 403] {
        assert!(vm_config(&bed, vmid)["scsi0"].is_string(), "{vmid}");
    }
}
