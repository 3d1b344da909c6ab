//! `pvefleet-bench`: pvefleet against the original playbook's sequence, on
//! pve-sim behind real sshd, with the realistic latency model.
//!
//! ```text
//! cargo build --release -p pvefleet -p pvefleet-bench
//! target/release/pvefleet-bench > bench.md
//! ```
//!
//! Scenario (a), start-up bound: every qm/pvesh start-up costs 400 ms and
//! holds one of 8 host CPU slots; importing costs nothing more. Scenario (b),
//! disk bound: the same, plus a 2 GiB image imported at 400 MB/s, imports on
//! one storage sharing that bandwidth. The guest agent answers as soon as a
//! VM runs (`--agent-after-ms 0`); pvefleet waits for it unless a row says
//! `--no-wait`, the original never does. The original sequence is measured up to 100 VMs in (a) and 20 in
//! (b); beyond that its time is extrapolated linearly from its measured
//! per-VM cost (it is strictly sequential) and marked `≈`. `--full`
//! measures everything.
//!
//! Options: `--quick` (1 and 20 VMs), `--full`, `--only a|b`,
//! `--sizes 20,100` (300 means 300 VMs on 3 nodes), `--parallel N`,
//! `--no-original`, `--variant TEXT` (only rows whose variant contains
//! TEXT), `--timeline`, `--pvefleet PATH`.

use pvefleet_test_support::{argv_of, TestBed};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const LATENCY_S: f64 = 0.4;
const SLOTS: f64 = 8.0;
const IMAGE_BYTES: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;
const MBPS: f64 = 400.0;

struct Args {
    pvefleet: PathBuf,
    full: bool,
    parallel: Option<String>,
    only: Option<String>,
    sizes: Vec<usize>,
    /// Only the rows whose variant label contains this text.
    variant: Option<String>,
    no_original: bool,
    /// Print each pvefleet run's journal timeline to stderr.
    timeline: bool,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let has = |flag: &str| argv.iter().any(|a| a == flag);
    let sibling = std::env::current_exe()
        .unwrap_or_default()
        .with_file_name("pvefleet");
    let sizes = match value("--sizes") {
        Some(s) => s.split(',').filter_map(|x| x.parse().ok()).collect(),
        None if has("--quick") => vec![1, 20],
        None => vec![1, 20, 100, 300],
    };
    Args {
        pvefleet: value("--pvefleet").map(PathBuf::from).unwrap_or(sibling),
        full: has("--full"),
        parallel: value("--parallel"),
        only: value("--only"),
        sizes,
        variant: value("--variant"),
        no_original: has("--no-original"),
        timeline: has("--timeline"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    StartUp,
    Disk,
}

fn init_args(s: Scenario) -> Vec<&'static str> {
    let mut a = vec![
        "--image",
        "local:iso/jammy.img:2G",
        "--latency-ms",
        "400",
        "--slots",
        "8",
        "--agent-after-ms",
        "0",
    ];
    if s == Scenario::Disk {
        a.extend(["--import-mbps", "400"]);
    }
    a
}

fn node_names(n: usize) -> Vec<String> {
    if n == 1 {
        vec!["pve".into()]
    } else {
        (1..=n).map(|i| ["pve", &i.to_string()].concat()).collect()
    }
}

fn key() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ops_keys.pub");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn config(nodes: &[String], count: usize, cache: bool) -> String {
    let mut y = String::new();
    if nodes.len() == 1 {
        y.push_str("proxmox: {host: pve}\n");
    } else {
        y.push_str("nodes:\n");
        for n in nodes {
            let _ = writeln!(y, "  {n}: {{host: {n}}}");
        }
    }
    let _ = writeln!(y, "defaults:\n  image: local:iso/jammy.img\n  storage: local-lvm\n  memory: 1024\n  disk: 4G\n  user: ubuntu\n  ssh_keys: [\"{}\"]", key());
    if cache {
        y.push_str("  disk_from: linked-clone\n");
    }
    y.push_str("vms:\n");
    for i in 0..count {
        let _ = write!(
            y,
            "  - {{vmid: {}, name: vm-{}, ip: 10.0.{}.{}/16, gateway: 10.0.0.1",
            1000 + i,
            1000 + i,
            i / 250,
            i % 250 + 2
        );
        if nodes.len() > 1 {
            let _ = write!(y, ", node: {}", nodes[i % nodes.len()]);
        }
        y.push_str("}\n");
    }
    y
}

/// Wall seconds, peak RSS (KiB) and CPU seconds of a command, via GNU time.
fn timed(cmd: &Command, dir: &Path) -> (f64, u64, f64, std::process::Output) {
    let stats = dir.join("time.txt");
    let mut full = Command::new("/usr/bin/time");
    full.arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(&stats)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let t = Instant::now();
    let out = full
        .output()
        .unwrap_or_else(|e| panic!("{e} (GNU time is needed: apt-get install time)"));
    let wall = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let f: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let cpu = f.get(1).copied().unwrap_or(0.0) + f.get(2).copied().unwrap_or(0.0);
    (wall, f.first().copied().unwrap_or(0.0) as u64, cpu, out)
}

/// The journal of a run: every invocation's node and argv.
struct Journal(Vec<(String, Vec<String>)>);

impl Journal {
    fn read(bed: &TestBed) -> Self {
        Self(
            bed.journal_rows()
                .iter()
                .map(|j| (j["node"].as_str().unwrap_or("").to_string(), argv_of(j)))
                .collect(),
        )
    }

    fn is_import(argv: &[String]) -> bool {
        argv.get(1).is_some_and(|c| c == "importdisk")
            || argv.iter().any(|w| w.contains("import-from="))
    }

    fn is_agent(argv: &[String]) -> bool {
        argv.get(1).is_some_and(|c| c == "guest")
    }

    /// qm invocations that act on `vmid`: the VM id positional (for
    /// `clone`, the new VM), never a value that happens to look the same.
    fn of_vm(&self, vmid: &str) -> Vec<&Vec<String>> {
        self.0
            .iter()
            .map(|(_, a)| a)
            .filter(|a| a.first().is_some_and(|p| p == "qm"))
            .filter(|a| {
                let at = match a.get(1).map(String::as_str) {
                    Some("disk" | "guest" | "clone") => 3,
                    _ => 2,
                };
                a.get(at).is_some_and(|id| id == vmid)
            })
            .collect()
    }

    fn chain(&self, vmid: &str, import_s: f64) -> f64 {
        let inv = self.of_vm(vmid);
        inv.len() as f64 * LATENCY_S
            + inv.iter().filter(|a| Self::is_import(a)).count() as f64 * import_s
    }

    /// The lower bound under the latency model: the longest chain of one VM
    /// (including the cache template it is cloned from), a node's start-ups
    /// over its slots, or its disk's bytes over the bandwidth; on a node
    /// with a cache template, also the template's chain followed by the
    /// node's other `qm` start-ups over its slots, since no clone can start
    /// before its template exists.
    fn lower_bound(&self, scenario: Scenario, vmids: &[String]) -> f64 {
        let import_s = if scenario == Scenario::Disk {
            IMAGE_BYTES / (MBPS * 1e6)
        } else {
            0.0
        };
        let templates: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(_, a)| a.get(1).is_some_and(|c| c == "template"))
            .filter_map(|(n, a)| a.get(2).map(|id| (n.clone(), id.clone())))
            .collect();
        let prelude = templates
            .iter()
            .map(|(_, t)| self.chain(t, import_s))
            .fold(0.0, f64::max);
        let chain = vmids
            .iter()
            .map(|id| self.chain(id, import_s) + prelude)
            .fold(0.0, f64::max);
        let mut per_node: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (node, argv) in &self.0 {
            let e = per_node.entry(node.as_str()).or_default();
            e.0 += LATENCY_S;
            if Self::is_import(argv) {
                e.1 += import_s;
            }
        }
        let node = per_node
            .values()
            .map(|(cpu, disk)| (cpu / SLOTS).max(*disk))
            .fold(0.0, f64::max);
        let after_template = templates
            .iter()
            .map(|(n, t)| {
                let own = self.of_vm(t).len();
                let qm = self
                    .0
                    .iter()
                    .filter(|(node, a)| node == n && a.first().is_some_and(|p| p == "qm"))
                    .count();
                self.chain(t, import_s) + (qm - own) as f64 * LATENCY_S / SLOTS
            })
            .fold(0.0, f64::max);
        chain.max(node).max(after_template)
    }
}

struct Run {
    wall: f64,
    qm_per_vm: f64,
    step_trips_per_vm: f64,
    all_trips_per_vm: f64,
    efficiency: f64,
    rss_mib: f64,
    cpu_s: f64,
    /// A second apply of the same file: wall seconds, invocations, round
    /// trips.
    rerun: Option<(f64, usize, u64)>,
}

fn bed(a: &Args, scenario: Scenario, names: &[String]) -> TestBed {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    TestBed::start(&a.pvefleet, &refs, &init_args(scenario)).unwrap_or_else(|e| panic!("{e}"))
}

fn run_pvefleet(
    a: &Args,
    scenario: Scenario,
    nodes: usize,
    count: usize,
    cache: bool,
    wait: bool,
) -> Run {
    let names = node_names(nodes);
    let bed = bed(a, scenario, &names);
    let cfg = bed.dir.path().join("fleet.yml");
    std::fs::write(&cfg, config(&names, count, cache)).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(&a.pvefleet);
    cmd.arg("apply")
        .arg(&cfg)
        .args(["--yes", "--output", "json", "--ssh-config"])
        .arg(&bed.ssh_config);
    if let Some(p) = &a.parallel {
        cmd.args(["--parallel", p]);
    }
    if !wait {
        cmd.arg("--no-wait");
    }
    let (wall, rss, cpu, out) = timed(&cmd, bed.dir.path());
    assert!(
        out.status.success(),
        "pvefleet failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let trips = round_trips(&j);
    let journal = Journal::read(&bed);
    if a.timeline {
        eprintln!("{}", timeline(&bed, wall));
    }
    let vmids: Vec<String> = (0..count).map(|i| (1000 + i).to_string()).collect();
    let creating: usize = vmids
        .iter()
        .map(|id| {
            journal
                .of_vm(id)
                .iter()
                .filter(|a| !Journal::is_agent(a))
                .count()
        })
        .sum();
    // Per node, one round trip observes, one uploads the keys and one
    // removes them again; each agent poll is its own; what remains are the
    // VMs' step batches (and the cache template's).
    let agent_polls = journal
        .0
        .iter()
        .filter(|(_, a)| Journal::is_agent(a))
        .count() as u64;
    let steps = trips.saturating_sub(agent_polls + 3 * nodes as u64);
    Run {
        wall,
        qm_per_vm: creating as f64 / count as f64,
        step_trips_per_vm: steps as f64 / count as f64,
        all_trips_per_vm: trips as f64 / count as f64,
        efficiency: journal.lower_bound(scenario, &vmids) / wall,
        rss_mib: rss as f64 / 1024.0,
        cpu_s: cpu,
        rerun: (scenario == Scenario::StartUp && wait && !cache).then(|| rerun(&bed, &cmd)),
    }
}

/// The round trips an apply summary reports, all nodes together.
fn round_trips(summary: &Value) -> u64 {
    summary["round_trips"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Applies the same file again: nothing may change. Its wall time, the
/// invocations it made (all reads) and its round trips.
fn rerun(bed: &TestBed, cmd: &Command) -> (f64, usize, u64) {
    let before = bed.journal().len();
    let (wall, _, _, out) = timed(cmd, bed.dir.path());
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        j["changed"],
        false,
        "the re-run changed something: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trips = round_trips(&j);
    (wall, bed.journal().len() - before, trips)
}

/// Start-ups running per 100 ms over the run, then its first and last
/// invocations (seconds since the first).
fn timeline(bed: &TestBed, wall: f64) -> String {
    let rows: Vec<(u64, u64, String)> = bed
        .journal_rows()
        .iter()
        .map(|j| {
            (
                j["start_ms"].as_u64().unwrap_or(0),
                j["end_ms"].as_u64().unwrap_or(0),
                argv_of(j).join(" "),
            )
        })
        .collect();
    let t0 = rows.iter().map(|r| r.0).min().unwrap_or(0);
    let end = rows.iter().map(|r| r.1).max().unwrap_or(t0);
    let mut busy = vec![0u32; ((end - t0) / 100 + 1) as usize];
    for (s, e, _) in &rows {
        for t in (*s..*e).step_by(100) {
            busy[((t - t0) / 100) as usize] += 1;
        }
    }
    let mut out = format!(
        "wall {wall:.2} s, journal spans {:.2} s; running per 100 ms:\n",
        (end - t0) as f64 / 1000.0
    );
    out.push_str(
        &busy
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let mut sorted = rows.clone();
    sorted.sort();
    for (s, e, a) in sorted.iter().take(12).chain(sorted.iter().rev().take(4)) {
        out.push_str(&format!(
            "\n{:6.2} {:6.2} {}",
            (s - t0) as f64 / 1000.0,
            (e - t0) as f64 / 1000.0,
            a.chars().take(70).collect::<String>()
        ));
    }
    out
}

fn run_original(a: &Args, scenario: Scenario, nodes: usize, count: usize) -> f64 {
    let names = node_names(nodes);
    let bed = bed(a, scenario, &names);
    let image =
        String::from_utf8_lossy(&bed.ssh(&names[0], "pvesm path local:iso/jammy.img").stdout)
            .trim()
            .to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("original.sh");
    let ctl = bed.dir.path().join("ctl");
    std::fs::create_dir_all(&ctl).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&bed.ssh_config)
        .arg(&ctl)
        .arg(&image)
        .arg("1000")
        .arg(count.to_string())
        .args(&names)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "original failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn plan_10k(a: &Args) -> (f64, f64) {
    let dir =
        std::env::temp_dir().join(["pvefleet-bench-", &std::process::id().to_string()].concat());
    let _ = std::fs::create_dir_all(&dir);
    let cfg = dir.join("big.yml");
    std::fs::write(&cfg, config(&node_names(1), 10_000, false)).unwrap_or_else(|e| panic!("{e}"));
    let obs = serde_json::json!({"nodes": [{"name": "pve", "version": {"major": 8, "minor": 4, "patch": 1}, "bridges": ["vmbr0"],
        "storages": {"local": [{"volid": "local:iso/jammy.img", "content": "iso", "size": 2147483648u64}]},
        "image_paths": {"local:iso/jammy.img": "/var/lib/vz/template/iso/jammy.img"}, "vms": [], "configs": {}, "free_memory": null}],
        "cluster_vms": [], "next_id": 100});
    let obs_path = dir.join("observed.json");
    std::fs::write(&obs_path, obs.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(&a.pvefleet);
    cmd.arg("plan")
        .arg(&cfg)
        .arg("--host-state")
        .arg(&obs_path)
        .args(["--output", "json"]);
    let (wall, rss, _, out) = timed(&cmd, &dir);
    assert!(
        out.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    (wall, rss as f64 / 1024.0)
}

fn emit(s: &str) {
    print!("{s}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

fn main() {
    let a = args();
    assert!(
        a.pvefleet.exists(),
        "no pvefleet binary at {} (cargo build --release, or --pvefleet PATH)",
        a.pvefleet.display()
    );
    let scenarios = [
        (Scenario::StartUp, "a", "(a) start-up bound"),
        (
            Scenario::Disk,
            "b",
            "(b) disk bound, 2 GiB image at 400 MB/s",
        ),
    ];
    let mut reruns: Vec<String> = Vec::new();
    for (scenario, key, title) in scenarios {
        if a.only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        let original_max = if a.full {
            usize::MAX
        } else if scenario == Scenario::StartUp {
            100
        } else {
            20
        };
        emit(&format!("\n### Scenario {title}\n\n| VMs | nodes | variant | original (s) | pvefleet (s) | original ÷ pvefleet | qm per VM | round trips per VM: steps / all | efficiency | RSS (MiB) | CPU (s) |\n|---|---|---|---|---|---|---|---|---|---|---|\n"));
        // (image cache, wait for the agent, label). The original does not
        // wait; `--no-wait` is the like-for-like row.
        let variants: &[(bool, bool, &str)] = if scenario == Scenario::Disk {
            &[
                (false, true, "import"),
                (true, true, "image cache"),
                (true, false, "image cache, --no-wait"),
            ]
        } else {
            &[(false, true, "import"), (false, false, "import, --no-wait")]
        };
        let mut per_vm_original = 0.0;
        for &count in &a.sizes {
            let nodes = if count >= 300 { 3 } else { 1 };
            let original = if a.no_original {
                None
            } else if count <= original_max {
                let s = run_original(&a, scenario, nodes, count);
                per_vm_original = s / count as f64;
                Some((s, ""))
            } else {
                Some((per_vm_original * count as f64, " ≈"))
            };
            for &(cache, wait, label) in variants {
                if a.variant.as_deref().is_some_and(|v| !label.contains(v)) {
                    continue;
                }
                let r = run_pvefleet(&a, scenario, nodes, count, cache, wait);
                if let Some((wall, invocations, trips)) = r.rerun {
                    reruns.push(format!(
                        "| {count} | {nodes} | {wall:.1} | {:.2} | {:.2} |\n",
                        invocations as f64 / count as f64,
                        trips as f64 / count as f64
                    ));
                }
                let (o, ratio) = match original {
                    Some((s, mark)) => {
                        (format!("{s:.1}{mark}"), format!("{:.1}{mark}", s / r.wall))
                    }
                    None => ("-".into(), "-".into()),
                };
                emit(&format!(
                    "| {count} | {nodes} | {label} | {o} | {:.1} | {ratio} | {:.2} | {:.2} / {:.2} | {:.2} | {:.1} | {:.2} |\n",
                    r.wall, r.qm_per_vm, r.step_trips_per_vm, r.all_trips_per_vm, r.efficiency, r.rss_mib, r.cpu_s
                ));
            }
        }
    }
    if !reruns.is_empty() {
        emit(&format!("\n### Re-running the converged fleet of scenario (a)\n\n| VMs | nodes | pvefleet (s) | invocations per VM | round trips per VM |\n|---|---|---|---|---|\n{}", reruns.concat()));
    }
    let (wall, rss) = plan_10k(&a);
    emit(&format!("\n### plan of a generated 10,000-VM config\n\n| wall (s) | peak RSS (MiB) |\n|---|---|\n| {wall:.2} | {rss:.1} |\n"));
}
