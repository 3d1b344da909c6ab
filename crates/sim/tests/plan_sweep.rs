//! The second sweep: random valid configurations are planned against a
//! host the rule table knows, and every `qm create`/`qm set` line the
//! planner emits is judged by that table (written apart from both the
//! planner and pve-sim): a real host must accept every one.

#[path = "sweep/rules.rs"]
#[allow(dead_code)]
mod rules;

use pvefleet_plan::observed::{NodeState, Observed, PveVersion, StorageFacts, Volume};
use pvefleet_plan::{plan, InputSource, PlanInput};
use rules::Fixture;

/// The host: PVE 9.2, `local` (iso, import), `local-lvm` (images), two
/// bridges, a custom CPU model, the SSH key file the uploads stand for.
fn fixture() -> Fixture {
    Fixture {
        storages: vec![
            ("local", "dir", vec!["iso", "vztmpl", "backup", "import"]),
            ("local-lvm", "lvmthin", vec!["images", "rootdir"]),
        ],
        volumes: vec![
            ("local:iso/jammy.img".into(), "iso"),
            ("local:import/noble.qcow2".into(), "import"),
        ],
        files: vec![
            ("/var/lib/vz/template/iso/jammy.img".into(), false),
            ("/var/lib/vz/import/noble.qcow2".into(), false),
            ("/tmp/pvefleet-run-pve/sshkeys-0.pub".into(), true),
        ],
        cpu_models: vec!["mymodel"],
        base_keys: vec![],
        base_memory: 1024,
        base_cloudinit: "ide2",
    }
}

fn observed() -> Observed {
    let mut n = NodeState {
        name: "pve".into(),
        version: PveVersion::parse("9.2.1"),
        bridges: vec!["vmbr0".into(), "vmbr1".into()],
        free_memory: Some(64 << 30),
        ..NodeState::default()
    };
    n.storages.insert(
        "local".into(),
        vec![
            Volume {
                volid: "local:iso/jammy.img".into(),
                content: Some("iso".into()),
                size: Some(600 << 20),
            },
            Volume {
                volid: "local:import/noble.qcow2".into(),
                content: Some("import".into()),
                size: Some(600 << 20),
            },
        ],
    );
    n.image_paths.insert(
        "local:iso/jammy.img".into(),
        "/var/lib/vz/template/iso/jammy.img".into(),
    );
    n.image_paths.insert(
        "local:import/noble.qcow2".into(),
        "/var/lib/vz/import/noble.qcow2".into(),
    );
    let mut o = Observed {
        nodes: vec![n],
        next_id: Some(100),
        ..Observed::default()
    };
    for (id, kind, content) in [
        ("local", "dir", &["iso", "vztmpl", "backup", "import"][..]),
        ("local-lvm", "lvmthin", &["images", "rootdir"][..]),
    ] {
        o.storage_facts.entry("pve".into()).or_default().insert(
            id.into(),
            StorageFacts {
                content: Some(content.iter().map(|c| c.to_string()).collect()),
                shared: false,
                kind: Some(kind.into()),
            },
        );
    }
    o
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn maybe(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKrQPep6apPoT9iKpB4v3TjyNKUw6ti+Ol5LCfCrhuaq a@x";

/// One random valid VM entry.
fn vm(r: &mut Rng, i: usize) -> String {
    let mut v = vec![format!("name: vm-{i}.lab")];
    if r.maybe() {
        v.push(format!("vmid: {}", 200 + i));
    }
    v.push(format!(
        "image: {}",
        r.pick(&["local:iso/jammy.img", "local:import/noble.qcow2"])
    ));
    v.push(format!(
        "memory: {}",
        r.pick(&["512", "1024", "2G", "8192"])
    ));
    v.push(format!("cores: {}", r.pick(&["1", "2", "8"])));
    if r.maybe() {
        v.push(format!(
            "cpu: '{}'",
            r.pick(&[
                "host",
                "x86-64-v2-AES",
                "x86-64-v2-AES,flags=+aes",
                "custom-mymodel",
                "kvm64,flags=+pcid;-spec-ctrl"
            ])
        ));
    }
    v.push(format!("bridge: {}", r.pick(&["vmbr0", "vmbr1"])));
    if r.maybe() {
        v.push(format!("vlan: {}", r.pick(&["1", "42", "4094"])));
    }
    match r.next() % 3 {
        0 => v.push(format!(
            "ip: 10.{}.0.5/{}, gateway: 10.{}.0.1",
            i % 250,
            r.pick(&["8", "16", "24"]),
            i % 250
        )),
        1 => v.push("ip: dhcp".into()),
        _ => {}
    }
    if r.maybe() {
        v.push(format!("ip6: {}", r.pick(&["auto", "dhcp", "fd00::5/64"])));
    }
    if r.maybe() {
        v.push(format!(
            "nameserver: [{}]",
            r.pick(&["1.1.1.1", "ns1.example.com", "2001:db8::53"])
        ));
    }
    if r.maybe() {
        v.push("searchdomain: lab.example.com".into());
    }
    if r.maybe() {
        v.push(format!("user: {}", r.pick(&["ubuntu", "admin", "root"])));
    }
    if r.maybe() {
        v.push(format!(
            "password: '{}'",
            r.pick(&["0", "-x", "s3cret with spaces", "$6$already"])
        ));
    }
    if r.maybe() {
        v.push(format!("ssh_keys: ['{KEY}']"));
    }
    if r.maybe() {
        v.push(format!("disk: {}", r.pick(&["4G", "20G", "100G"])));
    }
    if r.maybe() {
        v.push("tags: [web, Prod]".into());
    }
    if r.maybe() {
        v.push("description: 'a VM, with \"quotes\" and ;semicolons'".into());
    }
    if r.maybe() {
        v.push("onboot: true".into());
    }
    if r.maybe() {
        v.push("state: stopped".into());
    }
    format!("  - {{{}}}\n", v.join(", "))
}

#[test]
fn every_line_planned_for_random_valid_configs_passes_the_rule_table() {
    let fx = fixture();
    let observed = observed();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut lines, mut configs) = (0, 0);
    let mut rejected = Vec::new();
    for round in 0..120 {
        let mut yaml = String::from("proxmox: {host: pve}\nvms:\n");
        for i in 0..(1 + r.next() % 4) as usize {
            yaml.push_str(&vm(&mut r, round * 10 + i));
        }
        let desired = pvefleet_config::parse("r.yml", &yaml, &|_| Err("no files".into()))
            .unwrap_or_else(|e| panic!("round {round} is not valid:\n{yaml}\n{}", e.render(false)));
        configs += 1;
        let p = plan(PlanInput {
            desired: &desired,
            observed: &observed,
            reboot: false,
            only: &[],
            adopt: false,
            allow_data_loss: false,
        });
        for v in &p.vms {
            assert!(
                v.problem.is_none(),
                "round {round}: {:?}\n{yaml}",
                v.problem
            );
            for s in &v.steps {
                let command = s
                    .resolve(|src| match src {
                        InputSource::Upload(_) => {
                            Some("/tmp/pvefleet-run-pve/sshkeys-0.pub".into())
                        }
                        InputSource::ImportedVolume => Some("local-lvm:vm-100-disk-0".into()),
                    })
                    .expect("inputs");
                let argv = command.argv();
                if argv.first().map(String::as_str) != Some("qm")
                    || !matches!(argv.get(1).map(String::as_str), Some("create"))
                {
                    continue;
                }
                lines += 1;
                if let Err(why) = rules::judge(&fx, &argv[1..]) {
                    rejected.push(format!("{}: {why}", argv.join(" ")));
                }
            }
        }
    }
    println!(
        "{configs} configs, {lines} qm create lines, {} rejected",
        rejected.len()
    );
    assert!(lines > 200, "only {lines} lines");
    assert!(rejected.is_empty(), "{}", rejected.join("\n"));
}
