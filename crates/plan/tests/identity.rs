//! Which VM id a VM gets, and what stands in its way: guests pvefleet does
//! not manage, containers, templates, names already taken.

mod common;

use common::*;
use pvefleet_plan::{Action, PlanProblem};

#[test]
fn ids_are_allocated_from_next_id_skipping_cluster_guests_and_file_vmids() {
    let d = host(&[
        &format!("{{name: a, image: {IMG}}}"),
        &format!("{{name: b, vmid: 101, image: {IMG}}}"),
        &format!("{{name: c, image: {IMG}}}"),
    ]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    // 100 is held by a guest on another node, 103 by a container.
    o.cluster_vms.push(foreign(100, "pve2", "other"));
    let mut ct = foreign(103, "pve2", "ct");
    ct.kind = pvefleet_model::GuestKind::Lxc;
    o.cluster_vms.push(ct);
    let p = plan_of(&d, &o);
    let got: Vec<(&str, u32, bool)> = p
        .vms
        .iter()
        .map(|v| (v.name.as_str(), v.vmid.expect("id").get(), v.vmid_allocated))
        .collect();
    assert_eq!(got, [("a", 102, true), ("b", 101, false), ("c", 104, true)]);
    assert!(p.vms.iter().all(|v| v.action == Action::Create));
    // The allocated id is the one the steps use.
    assert_eq!(argv(&p.vms[0].steps[0])[..3], ["qm", "create", "102"]);
}

#[test]
fn allocation_starts_at_100_when_next_id_is_unknown_or_lower() {
    let d = host(&[&format!("{{name: a, image: {IMG}}}")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    o.next_id = None;
    assert_eq!(plan_of(&d, &o).vms[0].vmid, Some(id(100)));
    o.next_id = Some(7);
    assert_eq!(plan_of(&d, &o).vms[0].vmid, Some(id(100)));
    o.next_id = Some(4711);
    assert_eq!(plan_of(&d, &o).vms[0].vmid, Some(id(4711)));
}

#[test]
fn no_id_left_below_the_largest_vm_id_is_no_free_vmid() {
    let d = host(&[
        &format!("{{name: a, image: {IMG}}}"),
        &format!("{{name: b, image: {IMG}}}"),
    ]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    o.next_id = Some(999_999_998);
    o.cluster_vms.push(foreign(999_999_999, "pve1", "last"));
    let p = plan_of(&d, &o);
    assert_eq!(p.vms[0].vmid, Some(id(999_999_998)));
    assert_eq!(p.vms[0].action, Action::Create);
    assert_eq!(p.vms[1].action, Action::Error);
    assert!(p.vms[1].steps.is_empty());
    assert_eq!(p.vms[1].problem, Some(PlanProblem::NoFreeVmid));
    assert!(p.vms[1].vmid_allocated);
}

#[test]
fn a_vmid_held_by_an_unmanaged_vm_is_a_conflict_with_no_steps() {
    let d = host(&[&web("disk: 20G")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(foreign(200, "pve1", "legacy"));
    let (p, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Conflict);
    assert!(v.steps.is_empty() && v.changes.is_empty());
    assert_eq!(v.storage_lock, None);
    assert_eq!(
        v.problem,
        Some(PlanProblem::ForeignVm {
            kind: "VM",
            vmid: id(200),
            node: "pve1".into()
        })
    );
    assert_eq!(v.problem.as_ref().map(|p| p.code()), Some("foreign_vm"));
    assert!(p.has_problems() && !p.is_converged());
}

#[test]
fn a_vmid_held_by_a_container_is_a_foreign_container_even_with_our_tag() {
    let d = cluster(&["pve1", "pve2"], &[&web("node: pve1")]);
    let mut o = observed(vec![node("pve1", "8.4.1"), node("pve2", "8.4.1")]);
    let mut ct = vm(200, "pve2", "web");
    ct.kind = pvefleet_model::GuestKind::Lxc;
    o.cluster_vms.push(ct);
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Conflict);
    assert_eq!(v.node, "pve2");
    assert_eq!(
        v.problem,
        Some(PlanProblem::ForeignVm {
            kind: "container",
            vmid: id(200),
            node: "pve2".into()
        })
    );
}

#[test]
fn a_vmid_held_by_a_managed_template_is_template_id() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    let mut t = vm(200, "pve1", "web");
    t.template = true;
    put(&mut n, t, web_config());
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Conflict);
    assert!(v.steps.is_empty());
    assert_eq!(v.problem, Some(PlanProblem::TemplateId { vmid: id(200) }));
}

#[test]
fn an_unmanaged_vm_with_the_name_of_a_vm_without_vmid_is_foreign_name() {
    let d = host(&[&format!("{{name: web, image: {IMG}}}")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    o.cluster_vms.push(foreign(105, "pve1", "web"));
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Conflict);
    assert!(v.steps.is_empty());
    assert_eq!((v.vmid, v.node.as_str()), (Some(id(105)), "pve1"));
    assert!(!v.vmid_allocated);
    assert_eq!(
        v.problem,
        Some(PlanProblem::ForeignName {
            name: "web".into(),
            vmid: id(105)
        })
    );
}

#[test]
fn a_vm_without_vmid_is_found_by_name_among_managed_vms_and_updated() {
    let d = host(&[&format!("{{name: web, image: {IMG}, memory: 4096}}")]);
    let mut n = web_node(web_config());
    // An unmanaged namesake elsewhere does not count once ours is found.
    n.vms.insert(0, foreign(150, "pve1", "other"));
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Update);
    assert_eq!(v.vmid, Some(id(200)));
    assert!(!v.vmid_allocated);
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--memory", "4096"])]
    );
}

#[test]
fn two_managed_vms_with_the_files_name_are_a_problem_naming_both() {
    let d = host(&[&format!("{{name: web, image: {IMG}}}")]);
    let mut n = node("pve1", "8.4.1");
    put(&mut n, vm(205, "pve1", "web"), web_config());
    put(&mut n, vm(201, "pve1", "web"), web_config());
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::DuplicateName {
            name: "web".into(),
            vmids: vec![id(201), id(205)]
        })
    );
    let text = v.problem.map(|p| p.to_string()).unwrap_or_default();
    assert!(text.contains("201, 205"), "{text}");
}

#[test]
fn a_file_vmid_whose_name_another_managed_vm_carries_is_a_problem_too() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    put(&mut n, vm(333, "pve1", "web"), web_config());
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(
        v.problem,
        Some(PlanProblem::DuplicateName {
            name: "web".into(),
            vmids: vec![id(200), id(333)]
        })
    );
}

#[test]
fn destroy_removes_every_managed_vm_of_a_duplicated_name() {
    let d = host(&[&format!("{{name: web, image: {IMG}}}")]);
    let mut n = node("pve1", "8.4.1");
    put(&mut n, vm(205, "pve1", "web"), web_config());
    put(&mut n, vm(201, "pve1", "web"), web_config());
    let o = observed(vec![n]);
    let p = pvefleet_plan::destroy_plan(pvefleet_plan::DestroyInput {
        desired: &d,
        observed: &o,
        only: &[],
        include_cache: false,
    });
    let ids: Vec<u32> = p
        .vms
        .iter()
        .filter_map(|v| v.vmid.map(|x| x.get()))
        .collect();
    assert_eq!(ids, [201, 205]);
    assert!(p.vms.iter().all(|v| v.action == Action::Destroy));
    assert_eq!(argvs(&p.vms[0].steps)[1][..3], ["qm", "destroy", "201"]);
}

/// VM 200 as an interrupted create leaves it: `lock: create`, no name, no
/// tags.
fn unfinished() -> pvefleet_plan::ClusterVm {
    let mut v = foreign(200, "pve1", "x");
    v.name = None;
    v.tags = Vec::new();
    v.lock = Some("create".into());
    v
}

#[test]
fn a_leftover_nobody_holds_is_destroyed_and_made_again() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(unfinished());
    let mut o = observed(vec![n]);
    o.leftovers.insert(id(200));
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Create, "{:?}", v.problem);
    assert_eq!(
        argv(&v.steps[0]),
        words(&[
            "qm",
            "destroy",
            "200",
            "--purge",
            "1",
            "--destroy-unreferenced-disks",
            "1",
            "--skiplock",
            "1"
        ])
    );
    assert_eq!(argv(&v.steps[1])[..3], ["qm", "create", "200"]);
    assert_eq!(
        v.notes,
        [pvefleet_plan::PlanNote::Leftover {
            vmid: id(200),
            lock: "create".into()
        }]
    );
}

#[test]
fn an_unfinished_create_someone_may_still_run_is_left_alone() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(unfinished());
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert!(v.steps.is_empty());
    let problem = v.problem.expect("a problem");
    assert_eq!(problem.code(), "create_in_progress");
    assert!(problem
        .to_string()
        .contains("qm destroy 200 --skiplock 1 --purge 1"));
}

#[test]
fn a_managed_vm_without_a_system_disk_is_made_again() {
    let d = host(&[&web("")]);
    let bare = config(&[
        ("name", "web"),
        ("tags", "pvefleet"),
        ("description", "managed-by: pvefleet"),
    ]);
    let (_, v) = only_vm(&d, &observed(vec![web_node(bare)]));
    assert_eq!(v.action, Action::Create);
    assert_eq!(argv(&v.steps[0])[..3], ["qm", "destroy", "200"]);
    assert_eq!(argv(&v.steps[1])[..3], ["qm", "create", "200"]);
    assert_eq!(
        v.notes,
        [pvefleet_plan::PlanNote::Incomplete { vmid: id(200) }]
    );
}

#[test]
fn probes_are_asked_only_for_the_files_vms_that_look_unfinished() {
    let d = host(&[
        &web(""),
        &format!("{{name: other, vmid: 300, image: {IMG}}}"),
    ]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(unfinished());
    let mut stranger = unfinished();
    stranger.vmid = id(999);
    n.vms.push(stranger);
    n.vms.push(vm(300, "pve1", "other"));
    let o = observed(vec![n]);
    let reads = pvefleet_plan::read_plan(&d);
    assert_eq!(reads.probes_of(&o), [("pve1".to_string(), id(200))]);
}

#[test]
fn a_managed_vm_without_disk_made_moments_ago_is_left_to_the_run_making_it() {
    let d = host(&[&web("")]);
    let bare = config(&[
        ("name", "web"),
        ("tags", "pvefleet"),
        ("description", "managed-by: pvefleet"),
        ("meta", "creation-qemu=9.2.0,ctime=1000000"),
    ]);
    let mut o = observed(vec![web_node(bare)]);
    o.observed_at = Some(1_000_010);
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::None);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.notes,
        [pvefleet_plan::PlanNote::BeingMade {
            vmid: id(200),
            age_secs: 10
        }]
    );
    // A minute later it is a leftover, made again.
    o.observed_at = Some(1_000_061);
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Create);
}

#[test]
fn a_managed_vm_without_disk_whose_lock_is_held_is_being_made_however_old() {
    let d = host(&[&web("")]);
    let bare = config(&[
        ("name", "web"),
        ("tags", "pvefleet"),
        ("description", "managed-by: pvefleet"),
        ("meta", "creation-qemu=9.2.0,ctime=1000000"),
    ]);
    let mut o = observed(vec![web_node(bare)]);
    // Its flock is asked about, whoever's file named it.
    let reads = pvefleet_plan::read_plan(&d);
    assert_eq!(reads.probes_of(&o), [("pve1".to_string(), id(200))]);
    // Ten minutes later a run still holds its lock (a long import).
    o.observed_at = Some(1_000_600);
    o.busy.insert(id(200));
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::None, "{v:#?}");
    assert!(v.steps.is_empty());
    assert_eq!(
        v.notes,
        [pvefleet_plan::PlanNote::BeingMade {
            vmid: id(200),
            age_secs: 600
        }]
    );
}
