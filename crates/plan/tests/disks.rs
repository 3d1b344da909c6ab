//! Data disks (`disks:`): created with the VM, grown, options changed on
//! the same volume, added, removed only with `--allow-data-loss`, never
//! shrunk; disks pvefleet did not make are left alone.

mod common;

use common::*;
use pvefleet_config::Desired;
use pvefleet_plan::observed::{Observed, VmConfig};
use pvefleet_plan::{plan, Action, Change, PlanInput, PlanNote, PlanProblem, VmPlan};

const DISK1: &str = "local-lvm:vm-200-disk-1,discard=on,size=10G";

/// [`web_config`] with a data disk on scsi1 that pvefleet made.
fn with_disk() -> VmConfig {
    let mut c = web_config();
    c.current.insert("scsi1".into(), DISK1.into());
    c.current.insert(
        "description".into(),
        "managed-by: pvefleet\npvefleet-disks: scsi1".into(),
    );
    c
}

fn plan_one(d: &Desired, o: &Observed, allow_data_loss: bool) -> VmPlan {
    let p = plan(PlanInput {
        desired: d,
        observed: o,
        reboot: false,
        only: &[],
        adopt: false,
        allow_data_loss,
    });
    assert_eq!(p.vms.len(), 1, "{p:#?}");
    p.vms[0].clone()
}

/// The plan of `web` with `disks` against VM 200 with `cfg`.
fn update(disks: &str, cfg: VmConfig, allow_data_loss: bool) -> VmPlan {
    let d = host(&[&web(&format!("disks: {disks}"))]);
    plan_one(&d, &observed(vec![web_node(cfg)]), allow_data_loss)
}

fn change(key: &str, from: Option<&str>, to: Option<&str>) -> Change {
    Change {
        key: key.into(),
        from: from.map(str::to_string),
        to: to.map(str::to_string),
    }
}

#[test]
fn data_disks_are_allocated_by_the_create_in_gib_with_their_options() {
    let d = host(&[&web(
        "disks: [{size: 10G, discard: true}, {size: 512M, storage: fast, ssd: true, backup: false, cache: none}, {size: 1G, slot: virtio2, iothread: yes}]",
    )]);
    let mut n = node("pve1", "8.4.1");
    n.storages.insert("fast".into(), Vec::new());
    let v = plan_one(&d, &observed(vec![n]), false);
    assert_eq!(v.action, Action::Create);
    let create = argv(&v.steps[0]);
    let opt = |k: &str| {
        let i = create.iter().position(|a| a == k).expect(k);
        create[i + 1].clone()
    };
    assert_eq!(opt("--scsi1"), "local-lvm:10,discard=on");
    assert_eq!(opt("--scsi2"), "fast:0.5,cache=none,ssd=1,backup=0");
    assert_eq!(opt("--virtio2"), "local-lvm:1,iothread=1");
    assert_eq!(
        opt("--description"),
        "managed-by: pvefleet\npvefleet-disks: scsi1 scsi2 virtio2"
    );
    assert!(v.steps[0].command.allocates());
}

#[test]
fn a_vm_whose_disks_match_changes_nothing() {
    let v = update("[{size: 10G, discard: true}]", with_disk(), false);
    assert_eq!(v.action, Action::None, "{v:#?}");
    assert!(v.steps.is_empty() && v.changes.is_empty());
}

#[test]
fn a_grown_disk_is_resized_before_the_settings() {
    let v = update(
        "[{size: 15G, discard: true, ssd: true}]",
        with_disk(),
        false,
    );
    let resize = words(&["qm", "disk", "resize", "200", "scsi1", "15G"]);
    assert_eq!(argv(&v.steps[0]), resize);
    assert_eq!(
        argv(&v.steps[1]),
        words(&[
            "qm",
            "set",
            "200",
            "--scsi1",
            "local-lvm:vm-200-disk-1,discard=on,size=15G,ssd=1"
        ])
    );
    assert!(v
        .changes
        .contains(&change("scsi1 size", Some("10G"), Some("15G"))));
    // ssd waits for a reboot of the running VM (vmconfig_update_disk).
    assert_eq!(v.reboot_pending, ["scsi1"]);
}

#[test]
fn only_backup_changes_at_once_on_a_running_vm() {
    let v = update("[{size: 10G, backup: false}]", with_disk(), false);
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--scsi1",
            "local-lvm:vm-200-disk-1,backup=0,discard=on,size=10G"
        ])]
    );
    assert!(v.reboot_pending.is_empty());
    let v = update("[{size: 10G, discard: false}]", with_disk(), false);
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--scsi1",
            "local-lvm:vm-200-disk-1,size=10G"
        ])]
    );
    assert_eq!(v.reboot_pending, ["scsi1"]);
}

#[test]
fn a_new_disk_is_allocated_by_qm_set_and_recorded() {
    let v = update(
        "[{size: 10G, discard: true}, {size: 5G}]",
        with_disk(),
        false,
    );
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--description",
            "managed-by: pvefleet\npvefleet-disks: scsi1 scsi2",
            "--scsi2",
            "local-lvm:5"
        ])]
    );
    // The record line is no change to show; the disk is.
    assert_eq!(v.changes, [change("scsi2", None, Some("local-lvm:5"))]);
    // Hot-plugged (the default hotplug has disk).
    assert!(v.reboot_pending.is_empty());
    let mut cold = with_disk();
    cold.current.insert("hotplug".into(), "network,usb".into());
    let v = update("[{size: 10G, discard: true}, {size: 5G}]", cold, false);
    assert_eq!(v.reboot_pending, ["scsi2"]);
}

#[test]
fn a_removed_disk_is_a_problem_without_allow_data_loss() {
    let v = update("[]", with_disk(), false);
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    let problem = v.problem.expect("a problem");
    assert_eq!(
        problem,
        PlanProblem::DiskRemoved {
            slot: "scsi1".into(),
            volume: "local-lvm:vm-200-disk-1".into()
        }
    );
    assert_eq!(problem.code(), "disk_removed");
    assert!(problem.to_string().contains("--allow-data-loss"));
}

#[test]
fn with_allow_data_loss_a_removed_disk_is_destroyed() {
    let v = update("[]", with_disk(), true);
    assert_eq!(v.action, Action::Update);
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "disk", "unlink", "200", "--idlist", "scsi1", "--force", "1"]),
            words(&["qm", "set", "200", "--description", "managed-by: pvefleet"]),
        ]
    );
    assert_eq!(
        v.notes,
        [PlanNote::DestroysVolume {
            slot: "scsi1".into(),
            volume: "local-lvm:vm-200-disk-1".into()
        }]
    );
    assert!(v.notes[0].to_string().starts_with("destroys volume"));
    assert_eq!(v.changes, [change("scsi1", Some(DISK1), None)]);
}

#[test]
fn a_smaller_disk_is_a_problem_even_with_allow_data_loss() {
    for allow in [false, true] {
        let v = update("[{size: 5G, discard: true}]", with_disk(), allow);
        assert_eq!(v.action, Action::Error);
        assert!(v.steps.is_empty());
        let problem = v.problem.expect("a problem");
        assert_eq!(problem.code(), "disk_shrink");
        assert!(problem.to_string().contains("remove the disk"), "{problem}");
    }
}

#[test]
fn a_disk_pvefleet_did_not_make_is_left_alone() {
    // An admin's scsi1, not in the record, not in the file.
    let mut cfg = web_config();
    cfg.current.insert("scsi1".into(), DISK1.into());
    let d = host(&[&web("")]);
    let v = plan_one(&d, &observed(vec![web_node(cfg)]), true);
    assert_eq!(v.action, Action::None, "{v:#?}");
}

#[test]
fn a_slot_holding_a_cdrom_is_taken() {
    let mut cfg = web_config();
    cfg.current
        .insert("sata1".into(), "local:iso/x.iso,media=cdrom".into());
    let v = update("[{size: 1G, slot: sata1}]", cfg, false);
    assert_eq!(v.problem.map(|p| p.code()), Some("disk_slot_taken"));
}

#[test]
fn older_hosts_get_the_legacy_spellings() {
    let mut n = node("pve1", "7.2.3");
    put(&mut n, vm(200, "pve1", "web"), with_disk());
    let d = host(&[&web("disks: []")]);
    let v = plan_one(&d, &observed(vec![n.clone()]), true);
    assert_eq!(
        argv(v.steps.first().expect("unlink")),
        words(&["qm", "unlink", "200", "--idlist", "scsi1", "--force", "1"])
    );
    let d = host(&[&web("disks: [{size: 20G, discard: true}]")]);
    let v = plan_one(&d, &observed(vec![n]), false);
    assert_eq!(
        argv(&v.steps[0]),
        words(&["qm", "resize", "200", "scsi1", "20G"])
    );
}

#[test]
fn a_data_disk_storage_must_hold_vm_disks() {
    let d = host(&[&web("disks: [{size: 1G, storage: local}]")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    default_storages(&mut o, "pve1");
    let v = plan_one(&d, &o, false);
    assert_eq!(v.problem.map(|p| p.code()), Some("storage_without_images"));
}

#[test]
fn a_clone_gets_its_disks_in_the_set_unless_the_template_has_the_slot() {
    let mut n = node("pve1", "8.4.1");
    let cfg = config(&[
        ("name", "base"),
        ("template", "1"),
        ("boot", "order=scsi0"),
        ("scsi0", "local-lvm:base-9000-disk-0,size=2G"),
        ("scsi1", "local-lvm:base-9000-disk-1,size=1G"),
    ]);
    put(&mut n, template(9000, "pve1", "base"), cfg);
    let o = observed(vec![n]);
    let d = host(&["{name: web, vmid: 200, clone: 9000, disks: [{size: 4G, slot: scsi2}]}"]);
    let v = plan_one(&d, &o, false);
    assert_eq!(v.action, Action::Create, "{v:#?}");
    let set = argv(&v.steps[1]);
    let i = set.iter().position(|a| a == "--scsi2").expect("scsi2");
    assert_eq!(set[i + 1], "local-lvm:4");
    let d = host(&["{name: web, vmid: 200, clone: 9000, disks: [{size: 4G}]}"]);
    let v = plan_one(&d, &o, false);
    assert_eq!(
        v.problem,
        Some(PlanProblem::DiskSlotTaken {
            slot: "scsi1".into(),
            value: "local-lvm:base-9000-disk-1,size=1G".into()
        })
    );
}

#[test]
fn node_auto_needs_every_data_disk_storage_and_every_bridge() {
    let d = cluster(
        &["pve1", "pve2", "pve3"],
        &[&format!(
            "{{name: web, node: auto, image: {IMG}, disks: [{{size: 1G, storage: data}}], networks: [{{bridge: vmbr0}}, {{bridge: vmbr2}}]}}"
        )],
    );
    let mut nodes = vec![
        node("pve1", "8.4.1"),
        node("pve2", "8.4.1"),
        node("pve3", "8.4.1"),
    ];
    nodes[0].free_memory = Some(64 << 30);
    nodes[1].free_memory = Some(32 << 30);
    nodes[2].free_memory = Some(8 << 30);
    // pve1 lacks vmbr2; pve2 lacks the `data` storage.
    nodes[1].bridges.push("vmbr2".into());
    nodes[2].bridges.push("vmbr2".into());
    let mut o = observed(nodes);
    for n in ["pve1", "pve2", "pve3"] {
        storage_fact(&mut o, n, "local-lvm", "lvmthin", "images");
    }
    storage_fact(&mut o, "pve1", "data", "dir", "images");
    storage_fact(&mut o, "pve3", "data", "dir", "images");
    let v = plan_one(&d, &o, false);
    assert_eq!(
        (v.node.as_str(), v.action),
        ("pve3", Action::Create),
        "{v:#?}"
    );
}

#[test]
fn a_disk_inserted_before_disks_matched_by_place_is_a_problem_not_a_grow() {
    // scsi1 is 10G; a new first entry would grow it and push it to scsi2.
    let v = update(
        "[{size: 200G}, {size: 10G, discard: true}]",
        with_disk(),
        false,
    );
    assert_eq!(
        v.problem,
        Some(PlanProblem::DisksShifted {
            added: vec!["scsi2".into()],
            changed: vec!["scsi1".into()],
        }),
        "{v:#?}"
    );
    assert!(v.steps.is_empty());
    // Named slots say which disk is which: the same change is fine.
    let pinned = update(
        "[{size: 200G, slot: scsi2}, {size: 10G, discard: true, slot: scsi1}]",
        with_disk(),
        false,
    );
    assert_eq!(pinned.problem, None, "{pinned:#?}");
    // And a new disk at the end changes no existing one.
    let appended = update(
        "[{size: 10G, discard: true}, {size: 200G}]",
        with_disk(),
        false,
    );
    assert_eq!(appended.problem, None, "{appended:#?}");
}

/// [`with_disk`] with `protection: 1`.
fn protected_disk() -> VmConfig {
    let mut c = with_disk();
    c.current.insert("protection".into(), "1".into());
    c
}

#[test]
fn a_protected_vm_keeps_its_disk_until_the_file_lifts_the_protection() {
    let d = host(&[&web("disks: [], protection: true")]);
    let kept = plan_one(&d, &observed(vec![web_node(protected_disk())]), true);
    assert_eq!(
        kept.problem,
        Some(PlanProblem::ProtectedDrive {
            vmid: id(200),
            key: "scsi1".into()
        }),
        "{kept:#?}"
    );
    assert!(kept.steps.is_empty());
    let lifted = update("[]", protected_disk(), true);
    assert_eq!(lifted.problem, None, "{lifted:#?}");
    let lines: Vec<String> = lifted.steps.iter().map(|s| argv(s).join(" ")).collect();
    let set = lines.iter().position(|l| l.contains("--protection 0"));
    let unlink = lines.iter().position(|l| l.contains("disk unlink"));
    assert!(set.is_some() && unlink > set, "{lines:#?}");
}

#[test]
fn a_removal_runs_before_the_set_that_drops_the_disk_from_the_record() {
    let v = update("[]", with_disk(), true);
    let lines: Vec<String> = v.steps.iter().map(|s| argv(s).join(" ")).collect();
    let unlink = lines.iter().position(|l| l.contains("disk unlink"));
    let set = lines.iter().position(|l| l.starts_with("qm set"));
    assert!(unlink.is_some() && set > unlink, "{lines:#?}");
}

#[test]
fn a_disk_on_another_storage_than_the_file_names_stays_with_a_note() {
    let v = update(
        "[{size: 10G, discard: true, storage: local}]",
        with_disk(),
        false,
    );
    assert_eq!(v.action, Action::None, "{v:#?}");
    assert!(v.steps.is_empty());
    assert!(
        v.notes.contains(&PlanNote::DiskStorageKept {
            slot: "scsi1".into(),
            have: "local-lvm".into(),
            want: "local".into(),
        }),
        "{:#?}",
        v.notes
    );
}
