//! `node: auto`: the node with the most free memory that has the image,
//! counting VMs placed earlier in the same plan.

use pvefleet_plan::observed::{NodeState, Observed, PveVersion, Volume};
use pvefleet_plan::{plan, Action, PlanInput, PlanProblem};

fn node(name: &str, free_gib: i64, has_image: bool) -> NodeState {
    let mut n = NodeState {
        name: name.into(),
        version: PveVersion::parse("8.4.1"),
        bridges: vec!["vmbr0".into()],
        free_memory: Some(free_gib << 30),
        ..NodeState::default()
    };
    let vols = if has_image {
        vec![Volume {
            volid: "local:iso/x.img".into(),
            content: Some("iso".into()),
            size: Some(1 << 30),
        }]
    } else {
        Vec::new()
    };
    n.storages.insert("local".into(), vols);
    n.image_paths.insert(
        "local:iso/x.img".into(),
        "/var/lib/vz/template/iso/x.img".into(),
    );
    n
}

/// The plan for a whole file, no reboots.
fn plan_of(desired: &pvefleet_config::Desired, observed: &Observed) -> pvefleet_plan::Plan {
    plan(PlanInput {
        desired,
        observed,
        reboot: false,
        only: &[],
        adopt: false,
        allow_data_loss: false,
    })
}

#[test]
fn auto_places_by_free_memory_and_image() {
    let yaml = "nodes:\n  pve1: {host: a}\n  pve2: {host: b}\n  pve3: {host: c}\n  pve4: {host: d}\ndefaults: {image: local:iso/x.img, node: auto, memory: 8G}\nvms:\n  - {name: a}\n  - {name: b}\n  - {name: c}\n  - {name: d}\n  - {name: e, node: pve1}\n";
    let desired = pvefleet_config::parse("t.yml", yaml, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    let observed = Observed {
        // pve4 has the most memory but not the image.
        nodes: vec![
            node("pve1", 10, true),
            node("pve2", 20, true),
            node("pve3", 15, true),
            node("pve4", 64, false),
        ],
        cluster_vms: Vec::new(),
        next_id: Some(100),
        ..Default::default()
    };
    let p = plan_of(&desired, &observed);
    let placed: Vec<(&str, &str)> = p
        .vms
        .iter()
        .map(|v| (v.name.as_str(), v.node.as_str()))
        .collect();
    // 20 -> a (12 left), 15 -> b (7 left), 12 -> c (4 left), then pve1's 10.
    assert_eq!(
        placed,
        [
            ("a", "pve2"),
            ("b", "pve3"),
            ("c", "pve2"),
            ("d", "pve1"),
            ("e", "pve1")
        ]
    );
    assert!(p.vms.iter().all(|v| v.action == Action::Create));
    // Allocated ids are distinct and skip nothing in use.
    let mut ids: Vec<u32> = p
        .vms
        .iter()
        .filter_map(|v| v.vmid.map(|i| i.get()))
        .collect();
    ids.dedup();
    assert_eq!(ids, [100, 101, 102, 103, 104]);
}

#[test]
fn auto_without_an_image_anywhere_is_a_plan_error() {
    let yaml = "nodes:\n  pve1: {host: a}\ndefaults: {image: local:iso/x.img}\nvms:\n  - {name: a, node: auto}\n";
    let desired = pvefleet_config::parse("t.yml", yaml, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    let observed = Observed {
        nodes: vec![node("pve1", 10, false)],
        cluster_vms: Vec::new(),
        next_id: None,
        ..Default::default()
    };
    let p = plan_of(&desired, &observed);
    assert_eq!(p.vms[0].action, Action::Error);
    assert_eq!(
        p.vms[0].problem,
        Some(PlanProblem::NoEligibleNode {
            unmet: vec!["pve1: no image local:iso/x.img".into()]
        })
    );
}

#[test]
fn an_unreachable_node_gets_nothing_planned() {
    let yaml = "nodes:\n  pve1: {host: a}\n  pve2: {host: b}\ndefaults: {image: local:iso/x.img}\nvms:\n  - {name: a, node: pve2}\n  - {name: b, node: auto}\n  - {name: c, vmid: 300, node: pve1}\n";
    let desired = pvefleet_config::parse("t.yml", yaml, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    let mut observed = Observed {
        nodes: vec![node("pve1", 10, true)],
        next_id: Some(100),
        ..Default::default()
    };
    observed
        .unreachable
        .insert("pve2".into(), "connection refused".into());
    // VM 300 lives on pve2, whatever the file says.
    let vm: pvefleet_plan::observed::ClusterVm = serde_json::from_value(serde_json::json!({
        "vmid": 300, "node": "pve2", "kind": "qemu", "name": "c", "tags": ["pvefleet"],
        "template": false, "status": "running", "lock": null
    }))
    .expect("vm");
    observed.cluster_vms.push(vm);
    let p = plan_of(&desired, &observed);
    let a = &p.vms[0];
    assert_eq!(a.action, Action::Error);
    assert!(a.steps.is_empty());
    assert_eq!(
        a.problem,
        Some(PlanProblem::NodeUnreachable {
            node: "pve2".into(),
            reason: "connection refused".into()
        })
    );
    assert_eq!(
        (p.vms[1].node.as_str(), p.vms[1].action),
        ("pve1", Action::Create)
    );
    assert_eq!(p.vms[2].action, Action::Error, "{:?}", p.vms[2]);
    assert!(p.vms[2].steps.is_empty());
}

/// Describes `storage` on `node` with `content` (comma-separated).
fn fact(o: &mut Observed, node: &str, storage: &str, content: &str) {
    o.storage_facts.entry(node.into()).or_default().insert(
        storage.into(),
        pvefleet_plan::observed::StorageFacts {
            content: Some(content.split(',').map(str::to_string).collect()),
            shared: false,
            kind: Some("dir".into()),
        },
    );
}

#[test]
fn auto_skips_nodes_without_the_bridge_or_a_storage_for_disks() {
    let yaml = "nodes:\n  pve1: {host: a}\n  pve2: {host: b}\n  pve3: {host: c}\n  pve4: {host: d}\ndefaults: {image: local:iso/x.img, node: auto, bridge: vmbr1, storage: fast}\nvms:\n  - {name: a}\n";
    let desired = pvefleet_config::parse("t.yml", yaml, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    let mut nodes = vec![
        node("pve1", 4, true),
        node("pve2", 64, true),
        node("pve3", 48, true),
        node("pve4", 32, true),
    ];
    for n in &mut nodes {
        n.bridges.push("vmbr1".into());
    }
    // pve2 has the most memory but lacks the bridge.
    nodes[1].bridges.retain(|b| b != "vmbr1");
    let mut observed = Observed {
        nodes,
        next_id: Some(100),
        ..Default::default()
    };
    fact(&mut observed, "pve1", "fast", "images,rootdir");
    fact(&mut observed, "pve2", "fast", "images,rootdir");
    // pve3's `fast` holds no VM disks; pve4 has no `fast` at all.
    fact(&mut observed, "pve3", "fast", "iso,backup");
    fact(&mut observed, "pve4", "local", "iso,vztmpl,backup");
    let p = plan_of(&desired, &observed);
    assert_eq!(
        (p.vms[0].node.as_str(), p.vms[0].action),
        ("pve1", Action::Create)
    );
}

#[test]
fn auto_with_no_eligible_node_says_what_each_node_lacks() {
    let yaml = "nodes:\n  pve1: {host: a}\n  pve2: {host: b}\n  pve3: {host: c}\ndefaults: {image: local:iso/x.img, node: auto, storage: local}\nvms:\n  - {name: a}\n";
    let desired = pvefleet_config::parse("t.yml", yaml, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    let mut nodes = vec![
        node("pve1", 8, true),
        node("pve2", 8, false),
        node("pve3", 8, true),
    ];
    nodes[2].bridges.clear();
    let mut observed = Observed {
        nodes,
        next_id: Some(100),
        ..Default::default()
    };
    for n in ["pve1", "pve2", "pve3"] {
        fact(&mut observed, n, "local", "iso,vztmpl,backup");
    }
    fact(&mut observed, "pve2", "local", "iso,images");
    let p = plan_of(&desired, &observed);
    let v = &p.vms[0];
    assert_eq!(v.action, Action::Error);
    assert_eq!(
        v.problem,
        Some(PlanProblem::NoEligibleNode {
            unmet: vec![
                "pve1: storage 'local' does not hold VM disks (no 'images' content)".into(),
                "pve2: no image local:iso/x.img".into(),
                "pve3: no bridge 'vmbr0', storage 'local' does not hold VM disks (no 'images' content)".into(),
            ]
        })
    );
    let msg = v
        .problem
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        msg.starts_with("node: auto found no node that has what the VM needs (pve1: "),
        "{msg}"
    );
}
