//! Which node a VM lives on or goes to, and what about the node stops it.

mod common;

use common::*;
use pvefleet_plan::{Action, PlanProblem};

#[test]
fn a_single_host_file_naming_another_node_is_not_the_hosts_node() {
    let d = host(&[&web("node: other")]);
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::NotTheHostsNode {
            want: "other".into(),
            node: "pve1".into()
        })
    );
}

#[test]
fn a_single_host_that_was_not_observed_is_host_not_observed() {
    let d = host(&[&web("")]);
    let (_, v) = only_vm(&d, &observed(Vec::new()));
    assert_eq!(v.action, Action::Error);
    assert_eq!(v.problem, Some(PlanProblem::HostNotObserved));
}

#[test]
fn a_single_host_vm_goes_to_the_hosts_node_whatever_its_name() {
    let d = host(&[&web("")]);
    let (_, v) = only_vm(&d, &observed(vec![node("pve-real", "8.4.1")]));
    assert_eq!((v.node.as_str(), v.action), ("pve-real", Action::Create));
}

#[test]
fn a_cluster_vm_without_node_is_no_node() {
    // The file check requires `node:` in a cluster; the planner still
    // refuses a spec that comes without one.
    let mut d = cluster(&["pve1"], &[&web("node: pve1")]);
    d.vms[0].placement = pvefleet_model::spec::Placement::Host;
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(v.action, Action::Error);
    assert_eq!(v.problem, Some(PlanProblem::NoNode));
}

#[test]
fn auto_takes_the_most_free_memory_counting_earlier_vms_ties_to_the_first_name() {
    let d = cluster(
        &["pve1", "pve2"],
        &[
            &format!("{{name: a, node: auto, image: {IMG}, memory: 8G}}"),
            &format!("{{name: b, node: auto, image: {IMG}, memory: 1G}}"),
            &format!("{{name: c, node: auto, image: {IMG}, memory: 1G}}"),
        ],
    );
    // Both have 16 GiB: a ties to pve1 (8 left), b to pve2 (15 left), c to
    // pve2 again.
    let p = plan_of(
        &d,
        &observed(vec![node("pve1", "8.4.1"), node("pve2", "8.4.1")]),
    );
    let placed: Vec<&str> = p.vms.iter().map(|v| v.node.as_str()).collect();
    assert_eq!(placed, ["pve1", "pve2", "pve2"]);
}

#[test]
fn auto_with_a_clone_goes_to_the_templates_node() {
    let d = cluster(
        &["pve1", "pve2"],
        &["{name: a, vmid: 200, node: auto, clone: base}"],
    );
    let mut small = node("pve2", "8.4.1");
    small.free_memory = Some(1 << 30);
    small.vms.push(template(9000, "pve2", "base"));
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1"), small]));
    assert_eq!((v.node.as_str(), v.action), ("pve2", Action::Create));
    assert_eq!(argv(&v.steps[0])[..4], ["qm", "clone", "9000", "200"]);
}

#[test]
fn auto_with_no_node_holding_the_source_is_no_eligible_node() {
    let d = cluster(&["pve1", "pve2"], &["{name: a, node: auto, clone: base}"]);
    let (_, v) = only_vm(
        &d,
        &observed(vec![node("pve1", "8.4.1"), node("pve2", "8.4.1")]),
    );
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::NoEligibleNode {
            unmet: vec![
                "pve1: no template 'base'".into(),
                "pve2: no template 'base'".into()
            ]
        })
    );
}

#[test]
fn an_existing_vm_on_an_unreachable_node_is_node_unreachable() {
    let d = cluster(&["pve1", "pve2"], &[&web("node: pve2")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    o.unreachable.insert("pve2".into(), "timeout".into());
    o.cluster_vms.push(vm(200, "pve2", "web"));
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::NodeUnreachable {
            node: "pve2".into(),
            reason: "timeout".into()
        })
    );
}

#[test]
fn a_vm_on_another_node_than_the_file_says_is_wrong_node() {
    let d = cluster(&["pve1", "pve2"], &[&web("node: pve1")]);
    let mut n2 = node("pve2", "8.4.1");
    put(&mut n2, vm(200, "pve2", "web"), web_config());
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1"), n2]));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(v.node, "pve2");
    assert_eq!(
        v.problem,
        Some(PlanProblem::WrongNode {
            vmid: id(200),
            node: "pve2".into(),
            want: "pve1".into()
        })
    );
}

#[test]
fn an_existing_vm_with_node_auto_stays_where_it_is() {
    let d = cluster(&["pve1", "pve2"], &[&web("node: auto")]);
    let mut n2 = node("pve2", "8.4.1");
    put(&mut n2, vm(200, "pve2", "web"), web_config());
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1"), n2]));
    assert_eq!((v.node.as_str(), v.action), ("pve2", Action::None));
    assert_eq!(v.problem, None);
}

#[test]
fn a_node_of_the_file_that_was_not_observed_is_node_not_observed() {
    let d = cluster(&["pve1", "pve2"], &[&web("node: pve2")]);
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(v.action, Action::Error);
    assert_eq!(
        v.problem,
        Some(PlanProblem::NodeNotObserved {
            node: "pve2".into()
        })
    );
}
