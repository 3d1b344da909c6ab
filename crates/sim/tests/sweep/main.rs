//! The conformance sweep: a few thousand `qm create`/`qm set` lines made
//! from `qm-schema.json` ([`gen`]), each labelled accept or reject by a rule
//! table written apart from pve-sim ([`rules`]), each run through pve-sim
//! on the same fresh host. pve-sim must agree on at least 99 % of the lines
//! and on every line the table says a real host rejects: it may be stricter
//! than a host in a few documented corners, never more lenient.
//!
//! `cargo test -p pve-sim --test sweep -- --nocapture` prints the figures
//! and every disagreement.

mod gen;
mod rules;

use pve_sim::state::Root;
use rules::Fixture;
use std::time::Instant;

/// The host every line runs on: PVE 9.2 with `local` (dir: ISOs, imports),
/// `local-lvm` (LVM-thin) and `vmdir` (a dir storage for images), two
/// images, one custom CPU model, an SSH key file and a broken one, and
/// VM 100 for the `qm set` lines.
fn host(dir: &std::path::Path) -> Root {
    let root = Root(dir.join("root"));
    let args: Vec<String> = [
        root.0.display().to_string().as_str(),
        "--version",
        "9.2",
        "--image",
        "local:iso/jammy.img:1G",
        "--image",
        "local:import/noble.qcow2:1G",
        "--storage",
        "vmdir:dir:images+rootdir",
        "--cpu-model",
        "mymodel",
        "--bridge",
        "vmbr0",
        "--bridge",
        "vmbr1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(pve_sim::init::init_cli(&args), 0, "init");
    let vz = root.0.join("nodes/pve/storage/local");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0b3RoZXJzIGtleSBmb3IgdGhlIHN3ZWVw sweep\n";
    std::fs::write(vz.join("keys.pub"), key).expect("key file");
    std::fs::write(vz.join("bad.pub"), "not a key\n").expect("bad key file");
    let base = "create 100 --name base --memory 1024 --net0 virtio,bridge=vmbr0 --scsi0 local-lvm:1 --ide2 local-lvm:cloudinit --ostype l26";
    let (code, _, err) = qm(
        &root,
        &base.split(' ').map(str::to_string).collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{err}");
    root
}

/// The same host as the table sees it.
fn fixture() -> Fixture {
    Fixture {
        storages: vec![
            ("local", "dir", vec!["iso", "vztmpl", "backup", "import"]),
            ("local-lvm", "lvmthin", vec!["images", "rootdir"]),
            ("vmdir", "dir", vec!["images", "rootdir"]),
        ],
        volumes: vec![
            ("local:iso/jammy.img".into(), "iso"),
            ("local:import/noble.qcow2".into(), "import"),
            ("local-lvm:vm-100-disk-0".into(), "images"),
            ("local-lvm:vm-100-cloudinit".into(), "images"),
        ],
        files: vec![
            ("/var/lib/vz/template/iso/jammy.img".into(), false),
            ("/var/lib/vz/import/noble.qcow2".into(), false),
            ("/var/lib/vz/keys.pub".into(), true),
            ("/var/lib/vz/bad.pub".into(), false),
        ],
        cpu_models: vec!["mymodel"],
        base_keys: vec![
            "name", "memory", "net0", "scsi0", "ide2", "ostype", "boot", "smbios1", "vmgenid",
            "meta",
        ],
        base_memory: 1024,
        base_cloudinit: "ide2",
    }
}

fn qm(root: &Root, args: &[String]) -> (i32, String, String) {
    pve_sim::run(root.clone(), Some("pve".into()), "qm", args)
}

/// How one line went: the table's verdict and pve-sim's exit and stderr.
struct Outcome {
    verdict: rules::Verdict,
    exit: i32,
    stderr: String,
}

/// Runs `lines` on a host of their own, each from the same fresh state.
fn run_all(fx: &Fixture, lines: &[Vec<String>]) -> Vec<Outcome> {
    // Memory-backed when there is one: the state is rewritten per line.
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm"),
        false => tempfile::tempdir(),
    }
    .expect("tempdir");
    let root = host(dir.path());
    let state = std::fs::read(root.join("state.json")).expect("state");
    lines
        .iter()
        .map(|args| {
            std::fs::write(root.join("state.json"), &state).expect("restore state");
            let verdict = rules::judge(fx, args);
            let (exit, _, stderr) = qm(&root, args);
            Outcome {
                verdict,
                exit,
                stderr,
            }
        })
        .collect()
}

#[test]
fn sweep() {
    let fx = fixture();
    let lines = gen::lines();
    let started = Instant::now();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let chunk = lines.len().div_ceil(workers);
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| s.spawn(|| run_all(&fx, part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    let (mut agree, mut host_rejects, mut rejects_agree) = (0usize, 0usize, 0usize);
    let mut lenient = Vec::new();
    let mut stricter = Vec::new();
    for (args, o) in lines.iter().zip(&outcomes) {
        let shown = format!(
            "qm {}",
            shlex::try_join(args.iter().map(String::as_str)).unwrap_or_default()
        );
        if o.verdict.is_err() {
            host_rejects += 1;
        }
        match (&o.verdict, o.exit == 0) {
            (Ok(()), true) => agree += 1,
            (Err(_), false) => {
                agree += 1;
                rejects_agree += 1;
            }
            (Err(why), true) => lenient.push(format!(
                "{shown}\n    table rejects ({why}); pve-sim accepts"
            )),
            (Ok(()), false) => stricter.push(format!(
                "{shown}\n    table accepts; pve-sim: {}",
                o.stderr.trim().replace('\n', " | ")
            )),
        }
    }
    let total = lines.len();
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "sweep: {total} lines in {:.1} s; agree {agree} ({:.2} %); the table rejects {host_rejects}, pve-sim rejects {rejects_agree} of them ({:.2} %)",
        started.elapsed().as_secs_f64(),
        pct(agree, total),
        pct(rejects_agree, host_rejects),
    );
    for l in &lenient {
        println!("LENIENT {l}");
    }
    for l in &stricter {
        println!("STRICTER {l}");
    }
    assert!(total >= 2000, "only {total} lines");
    assert!(
        lenient.is_empty(),
        "pve-sim accepts {} lines a host rejects (listed above)",
        lenient.len()
    );
    assert!(
        pct(agree, total) >= 99.0,
        "agreement {:.2} % < 99 % (disagreements listed above)",
        pct(agree, total)
    );
}
