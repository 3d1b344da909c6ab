//! Updating a managed VM: drifted keys in one `qm set`, net0, SSH keys,
//! disk growth, power state, reboots, and what blocks an update.

mod common;

use common::*;
use pvefleet_plan::observed::VmConfig;
use pvefleet_plan::{
    Action, Change, Check, InputSource, PlanNote, PlanProblem, StepInput, StorageLock, VmPlan,
};

/// The plan of `web` with `extra` keys against VM 200 with `cfg`.
fn update(extra: &str, cfg: VmConfig) -> VmPlan {
    let d = host(&[&web(extra)]);
    only_vm(&d, &observed(vec![web_node(cfg)])).1
}

/// [`web_config`] with `key` set to `value`.
fn web_with(key: &str, value: &str) -> VmConfig {
    let mut c = web_config();
    c.current.insert(key.into(), value.into());
    c
}

fn change(key: &str, from: Option<&str>, to: Option<&str>) -> Change {
    Change {
        key: key.into(),
        from: from.map(str::to_string),
        to: to.map(str::to_string),
    }
}

/// `key` as Proxmox stores it in `sshkeys`: URL-encoded, newline-ended.
fn encoded(key: &str) -> String {
    let mut s = key.replace(' ', "%20").replace('@', "%40");
    s.push_str("%0A");
    s
}

#[test]
fn a_vm_that_matches_the_file_has_action_none_and_no_steps() {
    let d = host(&[&web("")]);
    let (p, v) = only_vm(&d, &observed(vec![web_node(web_config())]));
    assert_eq!(v.action, Action::None);
    assert!(v.steps.is_empty() && v.changes.is_empty() && v.notes.is_empty());
    assert!(v.reboot_pending.is_empty());
    assert_eq!(v.storage_lock, None);
    assert!(v.running && !v.starts);
    assert!(p.is_converged() && !p.has_problems());
}

#[test]
fn a_memory_change_is_one_qm_set_pending_a_reboot_when_running() {
    let v = update("", web_with("memory", "1024"));
    assert_eq!(v.action, Action::Update);
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--memory", "2048"])]
    );
    assert_eq!(v.steps[0].check, Check::Exit);
    assert!(v.steps[0].inputs.is_empty());
    assert_eq!(v.changes, [change("memory", Some("1024"), Some("2048"))]);
    assert_eq!(v.reboot_pending, ["memory"]);
    // A qm set without a new volume allocates nothing.
    assert_eq!(v.storage_lock, None);
}

#[test]
fn several_drifted_keys_go_in_one_qm_set() {
    let v = update(
        "cores: 2, tags: [web], description: Front, onboot: true, searchdomain: lan",
        web_with("memory", "1024"),
    );
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--memory",
            "2048",
            "--cores",
            "2",
            "--searchdomain",
            "lan",
            "--tags",
            "pvefleet;web",
            "--description",
            "Front\nmanaged-by: pvefleet",
            "--onboot",
            "1",
        ])]
    );
    let keys: Vec<&str> = v.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "memory",
            "cores",
            "searchdomain",
            "tags",
            "description",
            "onboot"
        ]
    );
    assert_eq!(v.changes[1], change("cores", Some("1"), Some("2")));
    // Hardware and cloud-init keys wait for a reboot; tags, description
    // and onboot apply at once.
    assert_eq!(v.reboot_pending, ["cores", "memory", "searchdomain"]);
}

#[test]
fn a_net0_change_keeps_the_mac_proxmox_generated() {
    let v = update("bridge: vmbr1, vlan: 20", web_config());
    let want = format!("virtio={MAC},bridge=vmbr1,tag=20");
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--net0", &want])]
    );
    let have = format!("virtio={MAC},bridge=vmbr0");
    assert_eq!(v.changes, [change("net0", Some(&have), Some(&want))]);
    // net0 is hot-pluggable.
    assert!(v.reboot_pending.is_empty());
}

#[test]
fn a_net0_change_to_a_bridge_the_node_lacks_is_missing_bridge() {
    let v = update("bridge: vmbr7", web_config());
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::MissingBridge {
            bridge: "vmbr7".into(),
            node: "pve1".into(),
            available: vec!["vmbr0".into(), "vmbr1".into()]
        })
    );
}

#[test]
fn changed_ssh_keys_are_uploaded_and_given_as_a_step_input() {
    let v = update(
        &format!("ssh_keys: ['{KEY_B}']"),
        web_with("sshkeys", &encoded(KEY_A)),
    );
    let d = host(&[&web(&format!("ssh_keys: ['{KEY_B}']"))]);
    let p = plan_of(
        &d,
        &observed(vec![web_node(web_with("sshkeys", &encoded(KEY_A)))]),
    );
    assert_eq!(v.action, Action::Update);
    assert_eq!(argvs(&v.steps), [words(&["qm", "set", "200"])]);
    assert_eq!(
        v.steps[0].inputs,
        [StepInput {
            option: "sshkeys",
            source: InputSource::Upload(0)
        }]
    );
    assert_eq!(v.uploads, [0]);
    assert_eq!(p.uploads[0].content, format!("{KEY_B}\n"));
    assert_eq!(
        v.changes,
        [change("sshkeys", Some("<other keys>"), Some("1 key(s)"))]
    );
    assert_eq!(v.reboot_pending, ["sshkeys"]);
}

#[test]
fn removed_ssh_keys_are_deleted() {
    let v = update("", web_with("sshkeys", &encoded(KEY_A)));
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--delete", "sshkeys"])]
    );
    assert!(v.steps[0].inputs.is_empty() && v.uploads.is_empty());
    assert_eq!(
        v.changes,
        [change("sshkeys", Some("<other keys>"), Some("<none>"))]
    );
}

/// Removing keys changes the cloud-init drive just as replacing them does,
/// and that drive is only regenerated at start; but only keys set through
/// options or inputs count as cold, not `--delete`d ones.
#[test]
fn removed_ssh_keys_wait_for_a_reboot_like_changed_ones() {
    let v = update("", web_with("sshkeys", &encoded(KEY_A)));
    assert_eq!(v.reboot_pending, ["sshkeys"]);
}

#[test]
fn a_larger_disk_is_one_resize_recorded_as_a_change() {
    let v = update("disk: 20G", web_config());
    assert_eq!(v.action, Action::Update);
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "disk", "resize", "200", "scsi0", "20G"])]
    );
    assert_eq!(v.steps[0].check, Check::QuietStderr);
    assert_eq!(v.changes, [change("scsi0 size", Some("10G"), Some("20G"))]);
    assert!(v.reboot_pending.is_empty());
    // A resize takes the storage's allocation lock.
    assert_eq!(
        v.storage_lock,
        Some(StorageLock::Local {
            node: "pve1".into(),
            storage: "local-lvm".into()
        })
    );
}

#[test]
fn the_boot_disk_grows_not_the_cdrom_before_it_and_legacy_before_pve_7_3() {
    let mut cfg = web_config();
    cfg.current.remove("scsi0");
    cfg.current
        .insert("virtio0".into(), "local-lvm:vm-200-disk-0,size=10G".into());
    cfg.current
        .insert("ide0".into(), "local:iso/rescue.iso,media=cdrom".into());
    cfg.current
        .insert("boot".into(), "order=ide0;net0;virtio0".into());
    let d = host(&[&web("disk: 12G")]);
    let mut n = node("pve1", "7.2-3");
    put(&mut n, vm(200, "pve1", "web"), cfg);
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "resize", "200", "virtio0", "12G"])]
    );
}

#[test]
fn a_smaller_disk_is_a_note_and_no_step() {
    let v = update("disk: 5G", web_config());
    assert_eq!(v.action, Action::None);
    assert!(v.steps.is_empty() && v.changes.is_empty());
    assert_eq!(
        v.notes,
        [PlanNote::DiskLarger {
            have: "10G".into(),
            want: "5G".into()
        }]
    );
    assert_eq!(v.notes[0].code(), "disk_larger");
}

#[test]
fn state_stopped_shuts_a_running_vm_down_after_its_changes() {
    let v = update("state: stopped", web_with("memory", "1024"));
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "set", "200", "--memory", "2048"]),
            words(&[
                "qm",
                "shutdown",
                "200",
                "--timeout",
                "120",
                "--forceStop",
                "1"
            ]),
        ]
    );
    // Everything applies at the next start.
    assert!(v.reboot_pending.is_empty());
    assert!(!v.running && !v.starts);
}

#[test]
fn state_running_starts_a_stopped_vm_with_nothing_pending() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    let mut guest = vm(200, "pve1", "web");
    guest.status = Some(pvefleet_model::VmStatus::Stopped);
    put(&mut n, guest, web_with("memory", "1024"));
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "set", "200", "--memory", "2048"]),
            words(&["qm", "start", "200"]),
        ]
    );
    assert!(v.reboot_pending.is_empty());
    assert!(v.starts);
}

#[test]
fn reboot_restarts_a_running_vm_with_cold_changes_only() {
    let d = host(&[&web("")]);
    let cold = observed(vec![web_node(web_with("memory", "1024"))]);
    let p = plan_with(&d, &cold, true, &[]);
    assert_eq!(
        argvs(&p.vms[0].steps),
        [
            words(&["qm", "set", "200", "--memory", "2048"]),
            words(&["qm", "reboot", "200"]),
        ]
    );
    assert!(p.vms[0].reboot_pending.is_empty());
    // A tag change applies at once: no reboot.
    let hot = observed(vec![web_node(web_with("tags", "pvefleet;old"))]);
    let p = plan_with(&d, &hot, true, &[]);
    assert_eq!(
        argvs(&p.vms[0].steps),
        [words(&["qm", "set", "200", "--tags", "pvefleet"])]
    );
}

#[test]
fn pending_changes_of_the_config_count_as_reboot_pending() {
    let mut cfg = web_config();
    cfg.pending.insert("cores".into(), "2".into());
    cfg.pending_delete.insert("cpu".into());
    let d = host(&[&web("cores: 2")]);
    let o = observed(vec![web_node(cfg.clone())]);
    // The pending value is what the VM will have: no drift, but a reboot
    // is still owed.
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::None);
    assert!(v.steps.is_empty() && v.changes.is_empty());
    assert_eq!(v.reboot_pending, ["cores", "cpu"]);
    let p = plan_with(&d, &o, true, &[]);
    assert_eq!(p.vms[0].action, Action::Update);
    assert_eq!(argvs(&p.vms[0].steps), [words(&["qm", "reboot", "200"])]);
    // A stopped VM owes nothing.
    let mut n = node("pve1", "8.4.1");
    let mut guest = vm(200, "pve1", "web");
    guest.status = Some(pvefleet_model::VmStatus::Stopped);
    put(&mut n, guest, cfg);
    let d = host(&[&web("cores: 2, state: stopped")]);
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert!(v.reboot_pending.is_empty() && v.steps.is_empty());
}

#[test]
fn a_locked_vm_is_locked_and_gets_no_steps() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    let mut guest = vm(200, "pve1", "web");
    guest.lock = Some("backup".into());
    put(&mut n, guest, web_with("memory", "1024"));
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::Locked {
            vmid: id(200),
            lock: "backup".into()
        })
    );
}

#[test]
fn a_vm_whose_config_was_not_read_is_config_unreadable() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(vm(200, "pve1", "web"));
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Error);
    assert_eq!(
        v.problem,
        Some(PlanProblem::ConfigUnreadable { vmid: id(200) })
    );
}

#[test]
fn memory_in_current_form_and_implicit_defaults_are_no_drift() {
    let v = update("", web_with("memory", "current=2048"));
    assert_eq!((v.action, v.changes.len()), (Action::None, 0), "{v:#?}");
    // Proxmox leaves memory 512, one core, one socket and onboot 0 out.
    let d = host(&[&format!(
        "{{name: web, vmid: 200, image: {IMG}, memory: 512}}"
    )]);
    let mut cfg = web_config();
    for k in ["memory", "cores", "sockets"] {
        cfg.current.remove(k);
    }
    let (_, v) = only_vm(&d, &observed(vec![web_node(cfg)]));
    assert_eq!((v.action, v.changes.len()), (Action::None, 0), "{v:#?}");
}

#[test]
fn tags_description_nameserver_mac_and_keys_are_compared_as_proxmox_spells_them() {
    let d = host(&[&web(&format!(
        "tags: [web, db], description: Front, nameserver: [1.1.1.1, 9.9.9.9], ssh_keys: ['{KEY_A}']"
    ))]);
    let mut cfg = web_config();
    for (k, v) in [
        ("tags", "Web,pvefleet db"),
        ("description", "Front\nmanaged-by: pvefleet\n"),
        ("nameserver", "1.1.1.1,9.9.9.9"),
        ("net0", "virtio=bc:24:11:aa:bb:cc,bridge=vmbr0"),
        ("sshkeys", &encoded(KEY_A)),
        ("onboot", "0"),
    ] {
        cfg.current.insert(k.into(), v.into());
    }
    let (_, v) = only_vm(&d, &observed(vec![web_node(cfg)]));
    assert_eq!(v.action, Action::None, "{:#?}", v.changes);
    assert!(v.steps.is_empty());
}

/// `same_net` compares net0 order-insensitively, but the MAC to keep is
/// read as the value of the first item whatever its key: a net0 listed as
/// `bridge=vmbr0,virtio=MAC` plans `--net0 virtio=vmbr0,bridge=vmbr0`.
#[test]
fn the_mac_is_kept_whatever_the_order_of_net0_keys() {
    let v = update("", web_with("net0", &format!("bridge=vmbr0,virtio={MAC}")));
    assert_eq!(v.action, Action::None, "{:#?}", v.changes);
    let v = update(
        "vlan: 20",
        web_with("net0", &format!("bridge=vmbr0,virtio={MAC}")),
    );
    let want = format!("virtio={MAC},bridge=vmbr0,tag=20");
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--net0", &want])]
    );
}

#[test]
fn an_update_on_a_node_without_version_assumes_pve_8_0() {
    let d = host(&[&web("disk: 20G")]);
    let mut n = web_node(web_config());
    n.version = None;
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.problem, None);
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "disk", "resize", "200", "scsi0", "20G"])]
    );
}

/// The description pvefleet writes for `web` with `password`.
fn description_with_password(password: &str) -> String {
    let d = host(&[&web(&format!("password: '{password}'"))]);
    let hash = pvefleet_plan::options::password_hash(&d.vms[0]);
    pvefleet_plan::options::description(&d.vms[0], hash.as_deref())
}

#[test]
fn an_unchanged_password_is_not_drift() {
    let v = update(
        "password: hunter2",
        web_with("description", &description_with_password("hunter2")),
    );
    assert_eq!(v.action, Action::None, "{:#?}", v.changes);
}

#[test]
fn a_changed_password_is_planned_as_its_hash_and_shown_without_value() {
    let v = update(
        "password: new-secret",
        web_with("description", &description_with_password("old-secret")),
    );
    assert_eq!(v.action, Action::Update);
    assert_eq!(
        v.changes,
        [change("password", Some("(set)"), Some("(changed)"))],
        "the description's check line is not shown as a change of its own"
    );
    let a = argv(&v.steps[0]);
    let i = a
        .iter()
        .position(|w| w == "--cipassword")
        .expect("cipassword");
    assert!(a[i + 1].starts_with("$6$"), "{a:?}");
    assert!(!a.iter().any(|w| w.contains("new-secret")), "{a:?}");
    assert_eq!(v.reboot_pending, ["cipassword"]);
}

#[test]
fn a_password_set_for_the_first_time_and_one_removed() {
    let v = update("password: first", web_config());
    assert_eq!(
        v.changes,
        [change("password", Some("(none)"), Some("(changed)"))]
    );
    let v = update(
        "",
        web_with("description", &description_with_password("gone")),
    );
    assert_eq!(
        v.changes,
        [change("password", Some("(set)"), Some("(removed)"))]
    );
    assert!(argv(&v.steps[0])
        .windows(2)
        .any(|w| w[0] == "--delete" && w[1] == "cipassword"));
}

/// `web` (with `extra` keys) against VM 200, paused, with `cfg`, with or
/// without `--reboot`.
fn paused(extra: &str, cfg: VmConfig, reboot: bool) -> VmPlan {
    let d = host(&[&web(extra)]);
    let mut n = node("pve1", "8.4.1");
    let mut guest = vm(200, "pve1", "web");
    guest.status = Some(pvefleet_model::VmStatus::Paused);
    put(&mut n, guest, cfg);
    plan_with(&d, &observed(vec![n]), reboot, &[]).vms[0].clone()
}

#[test]
fn a_paused_vm_that_should_run_is_resumed_and_shown_as_paused() {
    let v = paused("", web_config(), false);
    assert_eq!(v.action, Action::Update);
    assert_eq!(argvs(&v.steps), [words(&["qm", "resume", "200"])]);
    assert_eq!(
        v.notes,
        [PlanNote::Paused {
            want: pvefleet_config::PowerState::Running
        }]
    );
    assert_eq!(v.notes[0].to_string(), "paused; 'qm resume' continues it");
    assert_eq!(v.notes[0].code(), "paused");
    // Not a start: no `qm start` (it would fail: QEMU is up), no boot wait.
    assert!(!v.starts);
}

#[test]
fn a_paused_vm_keeps_cold_changes_pending_until_a_reboot() {
    // QEMU is up: a memory change waits for a reboot as on a running VM.
    let v = paused("", web_with("memory", "1024"), false);
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "set", "200", "--memory", "2048"]),
            words(&["qm", "resume", "200"]),
        ]
    );
    assert_eq!(v.reboot_pending, ["memory"]);
    // With --reboot, the resumed VM is rebooted to take them.
    let v = paused("", web_with("memory", "1024"), true);
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "set", "200", "--memory", "2048"]),
            words(&["qm", "resume", "200"]),
            words(&["qm", "reboot", "200"]),
        ]
    );
    assert!(v.reboot_pending.is_empty());
}

#[test]
fn a_paused_vm_that_should_stop_is_stopped_not_shut_down() {
    let v = paused("state: stopped", web_config(), false);
    assert_eq!(argvs(&v.steps), [words(&["qm", "stop", "200"])]);
    assert_eq!(
        v.notes,
        [PlanNote::Paused {
            want: pvefleet_config::PowerState::Stopped
        }]
    );
    assert!(v.notes[0].to_string().contains("without a clean shutdown"));
}

#[test]
fn a_running_vm_is_not_resumed() {
    let v = update("", web_config());
    assert_eq!(v.action, Action::None);
    assert!(v.steps.is_empty() && v.notes.is_empty());
}
