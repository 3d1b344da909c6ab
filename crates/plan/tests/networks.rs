//! NICs (`networks:`): entry N is netN with ipconfigN, created with the VM,
//! changed in place keeping what an admin set, removed when the file drops
//! one pvefleet made; bridges checked on the node.

mod common;

use common::*;
use pvefleet_plan::observed::VmConfig;
use pvefleet_plan::{Action, Change, PlanProblem, VmPlan};

const NET1: &str = "virtio=BC:24:11:00:00:11,bridge=vmbr1,firewall=1,tag=20";

/// [`web_config`] with net1 (an admin turned its firewall on) and
/// ipconfig1, made by pvefleet.
fn with_nic() -> VmConfig {
    let mut c = web_config();
    c.current.insert("net1".into(), NET1.into());
    c.current
        .insert("ipconfig1".into(), "ip=10.1.0.5/24".into());
    c.current.insert(
        "description".into(),
        "managed-by: pvefleet\npvefleet-nics: net1".into(),
    );
    c
}

const TWO: &str = "networks: [{bridge: vmbr0}, {bridge: vmbr1, vlan: 20, ip: 10.1.0.5/24}]";

fn update(extra: &str, cfg: VmConfig) -> VmPlan {
    let d = host(&[&web(extra)]);
    only_vm(&d, &observed(vec![web_node(cfg)])).1
}

fn change(key: &str, from: Option<&str>, to: Option<&str>) -> Change {
    Change {
        key: key.into(),
        from: from.map(str::to_string),
        to: to.map(str::to_string),
    }
}

#[test]
fn every_nic_is_created_with_its_ipconfig() {
    let d = host(&[&web(
        "networks: [{bridge: vmbr0, ip: 10.0.0.5/24, gateway: 10.0.0.1, firewall: true}, {bridge: vmbr1, vlan: 20, mac: 'bc:24:11:00:00:11', model: e1000, mtu: 1400, ip6: auto}, {bridge: vmbr0}]",
    )]);
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(v.action, Action::Create);
    let create = argv(&v.steps[0]);
    let opt = |k: &str| {
        let i = create.iter().position(|a| a == k).expect(k);
        create[i + 1].clone()
    };
    assert_eq!(opt("--net0"), "virtio,bridge=vmbr0,firewall=1");
    assert_eq!(opt("--ipconfig0"), "ip=10.0.0.5/24,gw=10.0.0.1");
    assert_eq!(
        opt("--net1"),
        "e1000=BC:24:11:00:00:11,bridge=vmbr1,mtu=1400,tag=20"
    );
    assert_eq!(opt("--ipconfig1"), "ip6=auto");
    assert_eq!(opt("--net2"), "virtio,bridge=vmbr0");
    assert!(!create.contains(&"--ipconfig2".to_string()));
    assert_eq!(
        opt("--description"),
        "managed-by: pvefleet\npvefleet-nics: net1 net2"
    );
}

#[test]
fn a_vm_whose_nics_match_changes_nothing() {
    let v = update(TWO, with_nic());
    assert_eq!(v.action, Action::None, "{v:#?}");
}

#[test]
fn a_vlan_change_touches_only_that_nic_and_keeps_the_admins_items() {
    let v = update(
        "networks: [{bridge: vmbr0}, {bridge: vmbr1, vlan: 30, ip: 10.1.0.5/24}]",
        with_nic(),
    );
    let want = "virtio=BC:24:11:00:00:11,bridge=vmbr1,firewall=1,tag=30";
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--net1", want])]
    );
    assert_eq!(v.changes, [change("net1", Some(NET1), Some(want))]);
    // NICs are hot-plugged by default.
    assert!(v.reboot_pending.is_empty());
}

#[test]
fn an_ipconfig_change_waits_for_the_next_boot() {
    let v = update(
        "networks: [{bridge: vmbr0}, {bridge: vmbr1, vlan: 20, ip: dhcp}]",
        with_nic(),
    );
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--ipconfig1", "ip=dhcp"])]
    );
    assert_eq!(v.reboot_pending, ["ipconfig1"]);
}

#[test]
fn a_new_nic_is_added_and_recorded() {
    let v = update(
        "networks: [{bridge: vmbr0}, {bridge: vmbr1, vlan: 20, ip: 10.1.0.5/24}, {bridge: vmbr1}]",
        with_nic(),
    );
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--description",
            "managed-by: pvefleet\npvefleet-nics: net1 net2",
            "--net2",
            "virtio,bridge=vmbr1"
        ])]
    );
    assert_eq!(
        v.changes,
        [change("net2", None, Some("virtio,bridge=vmbr1"))]
    );
}

#[test]
fn a_removed_nic_is_deleted_with_its_ipconfig() {
    // Back to the short form: net0 alone.
    let v = update("", with_nic());
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--description",
            "managed-by: pvefleet",
            "--delete",
            "net1,ipconfig1"
        ])]
    );
    assert_eq!(v.problem, None);
    assert_eq!(v.changes, [change("net1", Some(NET1), None)]);
}

#[test]
fn a_nic_pvefleet_did_not_make_is_left_alone() {
    let mut cfg = web_config();
    cfg.current.insert("net1".into(), NET1.into());
    let v = update("", cfg);
    assert_eq!(v.action, Action::None, "{v:#?}");
}

#[test]
fn every_nics_bridge_must_exist_on_the_node() {
    let d = host(&[&web("networks: [{bridge: vmbr0}, {bridge: vmbr9}]")]);
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(
        v.problem,
        Some(PlanProblem::MissingBridge {
            bridge: "vmbr9".into(),
            node: "pve1".into(),
            available: vec!["vmbr0".into(), "vmbr1".into()],
        })
    );
    let v = update("networks: [{bridge: vmbr0}, {bridge: vmbr9}]", with_nic());
    assert_eq!(v.problem.map(|p| p.code()), Some("missing_bridge"));
}

#[test]
fn networks_first_entry_is_net0_with_its_firewall_and_mtu() {
    let v = update(
        "networks: [{bridge: vmbr0, firewall: true, mtu: 1400}]",
        web_config(),
    );
    let want = format!("virtio={MAC},bridge=vmbr0,firewall=1,mtu=1400");
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--net0", &want])]
    );
}

#[test]
fn a_nic_moved_to_another_bridge_without_its_mac_is_a_shift_not_a_move() {
    // net1 is on vmbr1; the file's entry 1 names vmbr0, as when the NIC
    // before it was removed from `networks`.
    let v = update(
        "networks: [{bridge: vmbr0}, {bridge: vmbr0, ip: 10.1.0.5/24}]",
        with_nic(),
    );
    assert_eq!(
        v.problem,
        Some(PlanProblem::NicShifted {
            key: "net1".into(),
            from: "vmbr1".into(),
            to: "vmbr0".into(),
            mac: "BC:24:11:00:00:11".into(),
        }),
        "{v:#?}"
    );
    assert!(v.steps.is_empty());
    // Naming the MAC says it is this NIC that moves.
    let moved = update(
        "networks: [{bridge: vmbr0}, {bridge: vmbr0, mac: 'BC:24:11:00:00:11', vlan: 20, ip: 10.1.0.5/24}]",
        with_nic(),
    );
    assert_eq!(moved.problem, None, "{moved:#?}");
    assert_eq!(moved.action, Action::Update);
}
