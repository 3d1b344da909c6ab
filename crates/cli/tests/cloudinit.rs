//! Custom cloud-init data end to end: the real pvefleet binary against
//! pve-sim behind a real OpenSSH sshd. `user_data` becomes a snippet file
//! on the storage and `cicustom` on the VM; changes, removal and destroy;
//! and the three refusals (user mode beside ssh_keys, a storage without
//! `snippets`, data cloud-init rejects).

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK+66PhulpELdpmjPQtlFOlzKTK86bQskKxnbC2m6YWn admin@example";

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"))
}

/// A one-node bed; `local` gets `snippets` when `snippets` is true, else
/// it keeps a default installation's content types.
fn bed(snippets: bool) -> TestBed {
    let mut args = vec![
        "--image",
        "local:iso/jammy-server-cloudimg-amd64.img:2G",
        "--agent-ping-ms",
        "50",
    ];
    if snippets {
        args.extend(["--storage", "local:dir:iso+vztmpl+backup+snippets"]);
    }
    TestBed::start(&exe(), &["pve"], &args).unwrap_or_else(|e| panic!("test bed: {e}"))
}

/// Writes the configuration: one VM, 301, with `vm` appended to its keys.
fn config(bed: &TestBed, vm: &str) -> String {
    let text = format!(
        "proxmox: {{host: pve}}\nvms:\n  - vmid: 301\n    name: app-01\n    image: local:iso/jammy-server-cloudimg-amd64.img\n    user: ubuntu\n    ssh_keys: [\"{KEY}\"]\n{vm}"
    );
    let path = bed.dir.path().join("fleet.yml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
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

/// `pvefleet check`, which contacts nothing.
fn check(bed: &TestBed, cfg: &str) -> Output {
    Command::new(exe())
        .args(["check", cfg])
        .current_dir(bed.dir.path())
        .output()
        .expect("run pvefleet check")
}

fn text(o: &Output) -> String {
    [
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    ]
    .concat()
}

fn vm_config(bed: &TestBed) -> Value {
    bed.state()["vms"]
        .as_array()
        .and_then(|vms| vms.iter().find(|v| v["vmid"] == 301))
        .map(|v| v["config"].clone())
        .unwrap_or(Value::Null)
}

fn snippets_dir(bed: &TestBed) -> PathBuf {
    bed.root.join("nodes/pve/storage/local/snippets")
}

/// The snippet files on `local`, by name.
fn snippets(bed: &TestBed) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(snippets_dir(bed))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The `cicustom` value the VM should have for one snippet file name.
fn vendor(name: &str) -> String {
    format!("vendor=local:snippets/{name}")
}

/// Commands sent to the node that change it.
fn changing(bed: &TestBed) -> Vec<Vec<String>> {
    bed.journal_rows()
        .iter()
        .map(argv_of)
        .filter(|a| {
            a.first().map(String::as_str) == Some("qm")
                && !matches!(
                    a.get(1).map(String::as_str),
                    Some("config" | "guest" | "status" | "list" | "pending")
                )
        })
        .collect()
}

const DATA_A: &str = "    user_data:\n      packages: [qemu-guest-agent]\n";
const FILE_A: &str = "#cloud-config\npackages:\n- qemu-guest-agent\n";
const DATA_B: &str = "    user_data: |\n      #cloud-config\n      packages: [htop]\n";
const FILE_B: &str = "#cloud-config\npackages: [htop]\n";

#[test]
fn user_data_lifecycle_create_converge_change_remove_destroy() {
    let bed = bed(true);
    let cfg = config(&bed, DATA_A);
    // Create: the snippet holds exactly the data, the VM points at it.
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let names = snippets(&bed);
    assert_eq!(names.len(), 1, "{names:?}");
    let a = names[0].clone();
    assert!(a.starts_with("pvefleet-") && a.ends_with(".yaml"), "{a}");
    let body = std::fs::read_to_string(snippets_dir(&bed).join(&a)).expect("snippet");
    assert_eq!(body, FILE_A);
    let c = vm_config(&bed);
    assert_eq!(c["cicustom"], vendor(&a));
    // Vendor mode keeps what Proxmox generates.
    assert_eq!(c["ciuser"], "ubuntu");
    assert!(c["sshkeys"].as_str().is_some_and(|k| !k.is_empty()));

    // Re-apply: nothing that changes the node, the file untouched.
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let before = mtime(&snippets_dir(&bed).join(&a));
    bed.clear_journal();
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(changing(&bed), Vec::<Vec<String>>::new());
    assert_eq!(mtime(&snippets_dir(&bed).join(&a)), before);
    let out = pvefleet(&bed, &["plan", &cfg, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A snippet removed by hand is written again, nothing else is sent.
    std::fs::remove_file(snippets_dir(&bed).join(&a)).expect("rm");
    bed.clear_journal();
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(snippets_dir(&bed).join(&a)).expect("written again"),
        FILE_A
    );
    assert_eq!(changing(&bed), Vec::<Vec<String>>::new());

    // Change: a new snippet, cicustom follows, the plan says next boot.
    let cfg = config(&bed, DATA_B);
    let out = pvefleet(&bed, &["plan", &cfg, "--output", "json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let vm = &plan["vms"][0];
    assert_eq!(vm["action"], "update", "{plan}");
    assert!(
        vm["reboot_pending"]
            .as_array()
            .is_some_and(|r| r.iter().any(|k| k == "cicustom")),
        "{vm}"
    );
    assert!(
        vm["notes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["code"] == "user_data_next_boot")),
        "{vm}"
    );
    bed.clear_journal();
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let names = snippets(&bed);
    let b = names
        .iter()
        .find(|n| **n != a)
        .cloned()
        .expect("a new snippet");
    assert_eq!(
        std::fs::read_to_string(snippets_dir(&bed).join(&b)).expect("snippet"),
        FILE_B
    );
    assert_eq!(vm_config(&bed)["cicustom"], vendor(&b));
    // One qm set, then the running VM's drive is regenerated.
    let sets = changing(&bed);
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert!(sets[0]
        .windows(2)
        .any(|w| w[0] == "--cicustom" && w[1] == vendor(&b)));
    assert_eq!(sets[1], ["qm", "cloudinit", "update", "301"]);

    // Remove user_data: cicustom goes.
    let cfg = config(&bed, "");
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(vm_config(&bed).get("cicustom"), None);

    // Destroy with the data back: the VM's snippet goes with it, a
    // snippet of someone else stays.
    std::fs::write(snippets_dir(&bed).join("mine.yaml"), "#cloud-config\n").expect("write");
    let cfg = config(&bed, DATA_B);
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(vm_config(&bed)["cicustom"], vendor(&b));
    let out = pvefleet(&bed, &["destroy", &cfg, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let left = snippets(&bed);
    assert!(!left.contains(&b), "{left:?}");
    assert!(left.contains(&"mine.yaml".to_string()), "{left:?}");
}

#[test]
fn a_snippet_another_vm_uses_survives_destroy() {
    let bed = bed(true);
    let two = "proxmox: {host: pve}\ndefaults:\n  image: local:iso/jammy-server-cloudimg-amd64.img\n  user_data: {packages: [htop]}\nvms:\n  - {vmid: 301, name: a}\n  - {vmid: 302, name: b}\n";
    let path = bed.dir.path().join("two.yml");
    std::fs::write(&path, two).expect("write");
    let p = path.display().to_string();
    let out = pvefleet(&bed, &["apply", &p, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(snippets(&bed).len(), 1, "the same data is one file");
    let out = pvefleet(&bed, &["destroy", &p, "--yes", "--only", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(snippets(&bed).len(), 1, "b still uses it");
    let out = pvefleet(&bed, &["destroy", &p, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(snippets(&bed), Vec::<String>::new());
}

#[test]
fn user_mode_beside_ssh_keys_is_refused_at_its_line() {
    let bed = bed(true);
    let cfg = config(
        &bed,
        "    user_data_mode: user\n    user_data: {packages: [htop]}\n",
    );
    let out = check(&bed, &cfg);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("fleet.yml:7:15: error: 'ssh_keys' has no effect with user_data_mode: user"),
        "{t}"
    );
    assert!(
        t.contains("fleet.yml:6:11: error: 'user' has no effect"),
        "{t}"
    );
    assert!(t.contains("user_data_mode: vendor"), "{t}");
}

#[test]
fn a_storage_without_snippets_is_a_plan_problem_naming_the_fix() {
    let bed = bed(false);
    let cfg = config(&bed, DATA_A);
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("pvesm set local --content iso,vztmpl,backup,snippets"),
        "{t}"
    );
    assert!(changing(&bed).is_empty(), "nothing was sent");
    assert!(
        plan_commands_empty(&bed, &cfg),
        "an error VM lists no commands"
    );
    assert!(snippets(&bed).is_empty());
    let out = pvefleet(&bed, &["plan", &cfg, "--output", "json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["vms"][0]["code"], "snippets_not_enabled", "{plan}");
}

/// True when the plan of `cfg` lists no commands for its VM.
fn plan_commands_empty(bed: &TestBed, cfg: &str) -> bool {
    let out = pvefleet(bed, &["plan", cfg, "--output", "json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    plan["vms"][0]["commands"]
        .as_array()
        .is_some_and(|c| c.is_empty())
}

/// True when cloud-init is installed; when it is not, the test fails under
/// `PVEFLEET_REQUIRE_CLOUD_INIT=1` (scripts/test installs it) and is
/// skipped with a notice otherwise.
fn cloud_init_present() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("cloud-init").is_file()));
    if !found {
        assert!(
            std::env::var_os("PVEFLEET_REQUIRE_CLOUD_INIT").is_none(),
            "cloud-init is not installed (apt-get install cloud-init)"
        );
        eprintln!("cloud-init is not installed: skipping its schema check");
    }
    found
}

#[test]
fn data_cloud_init_rejects_is_refused_by_check_with_its_message() {
    if !cloud_init_present() {
        return;
    }
    let bed = bed(true);
    let cfg = config(&bed, "    user_data:\n      packages: 5\n");
    let out = check(&bed, &cfg);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("fleet.yml:9:7: error: user_data: cloud-init rejects it:"),
        "{t}"
    );
    assert!(t.contains("packages: 5"), "{t}");
    let out = pvefleet(&bed, &["plan", &cfg]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // apply refuses it before contacting the node.
    bed.clear_journal();
    let out = pvefleet(&bed, &["apply", &cfg, "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(bed.journal_rows().is_empty(), "the node was contacted");
    // Valid data passes, and without the program a note says so.
    let cfg = config(&bed, DATA_A);
    let out = check(&bed, &cfg);
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new(exe())
        .args(["check", &cfg])
        .env("PVEFLEET_CLOUD_INIT", "/nonexistent/cloud-init")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("note: cloud-init is not installed"),
        "{}",
        text(&out)
    );
}
