//! Adoption: a VM the file names that exists without pvefleet's tag is a
//! conflict, whose message names `apply --adopt`; with `adopt` it is taken
//! over by one `qm set` carrying the marker and the file's drift. Containers,
//! templates and ambiguous names are never adopted.

mod common;

use common::*;
use pvefleet_plan::observed::VmConfig;
use pvefleet_plan::{read_plan, Action, PlanProblem};

/// [`web_config`] as an admin would have it: no tag, no description, and
/// 1024 MiB instead of the file's 2048.
fn hand_made() -> VmConfig {
    let mut c = web_config();
    c.current.remove("tags");
    c.current.remove("description");
    c.current.insert("memory".into(), "1024".into());
    c
}

/// Node pve1 with VM 200 `web` made by hand (no pvefleet tag).
fn hand_node() -> pvefleet_plan::NodeState {
    let mut n = node("pve1", "8.4.1");
    put(&mut n, foreign(200, "pve1", "web"), hand_made());
    n
}

#[test]
fn without_adopt_an_unmanaged_vm_is_a_conflict_that_names_the_fix() {
    let d = host(&[&web("")]);
    let (p, v) = only_vm(&d, &observed(vec![hand_node()]));
    assert_eq!(v.action, Action::Conflict);
    assert!(v.steps.is_empty());
    let problem = v.problem.expect("a problem");
    assert_eq!(problem.code(), "foreign_vm");
    let text = problem.to_string();
    assert!(text.contains("pvefleet apply --adopt"), "{text}");
    assert!(text.contains("pvefleet import"), "{text}");
    assert!(p.has_problems());
}

#[test]
fn with_adopt_one_qm_set_puts_the_marker_and_the_drift() {
    let d = host(&[&web("")]);
    let p = plan_adopting(&d, &observed(vec![hand_node()]));
    let v = &p.vms[0];
    assert_eq!(v.action, Action::Adopt);
    assert_eq!(v.action.name(), "adopt");
    assert_eq!(v.problem, None);
    assert_eq!(v.vmid, Some(id(200)));
    assert_eq!(
        argvs(&v.steps),
        [vec![
            "qm",
            "set",
            "200",
            "--memory",
            "2048",
            "--tags",
            "pvefleet",
            "--description",
            "managed-by: pvefleet",
        ]]
    );
    let keys: Vec<&str> = v.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["memory", "tags", "description"]);
    // Memory waits for a reboot of the running VM, as for any update.
    assert_eq!(v.reboot_pending, ["memory"]);
    assert!(!p.is_converged() && !p.has_problems());
}

#[test]
fn adopting_keeps_the_users_tags_and_description() {
    let d = host(&[&web("tags: [legacy], description: the old web server")]);
    let mut c = hand_made();
    c.current.insert("memory".into(), "2048".into());
    c.current.insert("tags".into(), "legacy".into());
    c.current
        .insert("description".into(), "the old web server".into());
    let mut n = node("pve1", "8.4.1");
    let mut g = foreign(200, "pve1", "web");
    g.tags = vec!["legacy".into()];
    put(&mut n, g, c);
    let p = plan_adopting(&d, &observed(vec![n]));
    let v = &p.vms[0];
    assert_eq!(v.action, Action::Adopt);
    assert_eq!(
        argvs(&v.steps),
        [vec![
            "qm",
            "set",
            "200",
            "--tags",
            "legacy;pvefleet",
            "--description",
            "the old web server\nmanaged-by: pvefleet",
        ]]
    );
    assert!(v.reboot_pending.is_empty());
}

#[test]
fn a_vm_without_vmid_is_adopted_by_its_name() {
    let d = host(&[&format!("{{name: web, image: {IMG}, memory: 2048}}")]);
    let mut n = node("pve1", "8.4.1");
    put(&mut n, foreign(105, "pve1", "web"), hand_made());
    let o = observed(vec![n]);
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.problem.as_ref().map(|p| p.code()), Some("foreign_name"));
    assert!(v
        .problem
        .as_ref()
        .is_some_and(|p| p.to_string().contains("pvefleet apply --adopt")));
    let p = plan_adopting(&d, &o);
    let v = &p.vms[0];
    assert_eq!((v.action, v.vmid), (Action::Adopt, Some(id(105))));
    assert!(!v.vmid_allocated && !v.claim_name);
    assert_eq!(argv(&v.steps[0])[..3], ["qm", "set", "105"]);
}

#[test]
fn a_name_two_unmanaged_vms_carry_is_not_adopted() {
    let d = host(&[&format!("{{name: web, image: {IMG}}}")]);
    let mut n = node("pve1", "8.4.1");
    put(&mut n, foreign(105, "pve1", "web"), hand_made());
    put(&mut n, foreign(106, "pve1", "web"), hand_made());
    let p = plan_adopting(&d, &observed(vec![n]));
    assert_eq!(p.vms[0].action, Action::Conflict);
    assert!(p.vms[0].steps.is_empty());
}

#[test]
fn containers_and_templates_are_never_adopted() {
    let d = host(&[&web("")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    let mut ct = foreign(200, "pve1", "web");
    ct.kind = pvefleet_model::GuestKind::Lxc;
    o.cluster_vms.push(ct);
    let v = &plan_adopting(&d, &o).vms[0];
    assert_eq!(v.action, Action::Conflict);
    assert!(v.steps.is_empty());
    assert!(matches!(
        v.problem,
        Some(PlanProblem::ForeignVm {
            kind: "container",
            ..
        })
    ));
    assert!(!v
        .problem
        .as_ref()
        .is_some_and(|p| p.to_string().contains("--adopt")));

    let mut n = node("pve1", "8.4.1");
    put(&mut n, template(200, "pve1", "web"), hand_made());
    let v = &plan_adopting(&d, &observed(vec![n])).vms[0];
    assert_eq!(v.action, Action::Conflict);
    assert!(v.steps.is_empty());
    assert!(matches!(
        v.problem,
        Some(PlanProblem::ForeignVm {
            kind: "template",
            ..
        })
    ));
}

#[test]
fn an_adopted_vm_whose_config_was_not_read_is_not_changed() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(foreign(200, "pve1", "web"));
    let v = &plan_adopting(&d, &observed(vec![n])).vms[0];
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::ConfigUnreadable { vmid: id(200) })
    );
}

#[test]
fn a_managed_vm_is_updated_as_before_when_adopting() {
    let d = host(&[&web("cores: 2")]);
    let p = plan_adopting(&d, &observed(vec![web_node(web_config())]));
    assert_eq!(p.vms[0].action, Action::Update);
    assert_eq!(
        argvs(&p.vms[0].steps),
        [vec!["qm", "set", "200", "--cores", "2"]]
    );
}

#[test]
fn the_configs_of_adoptable_vms_are_read_only_when_adopting() {
    let d = host(&[&web(""), &format!("{{name: db, image: {IMG}}}")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(foreign(200, "pve1", "web"));
    n.vms.push(foreign(300, "pve1", "db"));
    let mut ct = foreign(400, "pve1", "other");
    ct.template = true;
    n.vms.push(ct);
    let o = observed(vec![n]);
    let mut reads = read_plan(&d);
    assert!(reads.configs_of(&o).is_empty());
    reads.adopt = true;
    assert_eq!(
        reads.configs_of(&o),
        [("pve1".to_string(), id(200)), ("pve1".to_string(), id(300))]
    );
}
