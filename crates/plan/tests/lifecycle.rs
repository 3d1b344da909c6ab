//! Firmware and lifecycle keys: what a create sends, which changes are
//! cold, EFI vars / TPM state changes and `--allow-data-loss`, pool moves,
//! HA resources, and what destroy does with protection and HA.

mod common;

use common::*;
use pvefleet_plan::lifecycle_observed::HaResource;
use pvefleet_plan::observed::{Observed, VmConfig};
use pvefleet_plan::{
    destroy_plan, plan, read_plan, Action, DestroyInput, PlanInput, PlanProblem, Read, VmPlan,
};
use std::collections::BTreeSet;

/// The plan of a one-VM file, with or without `--allow-data-loss`.
fn one(d: &pvefleet_config::Desired, o: &Observed, allow_data_loss: bool) -> VmPlan {
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

/// `web` with `extra` against VM 200 with `cfg`, on a host with `pools`.
fn update_of(extra: &str, cfg: VmConfig, edit: impl Fn(&mut Observed)) -> (VmPlan, VmPlan) {
    let d = host(&[&web(extra)]);
    let mut o = observed(vec![web_node(cfg)]);
    edit(&mut o);
    (one(&d, &o, false), one(&d, &o, true))
}

fn with(pairs: &[(&str, &str)]) -> VmConfig {
    let mut c = web_config();
    for (k, v) in pairs {
        c.current.insert(k.to_string(), v.to_string());
    }
    c
}

fn option<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

fn pools(o: &mut Observed, names: &[&str]) {
    o.lifecycle.pools = Some(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
}

#[test]
fn a_uefi_vm_is_created_with_its_efi_vars_tpm_and_q35() {
    let d = host(&[&web(
        "bios: ovmf, secure_boot: true, tpm: true, pool: prod, ha: {group: g1}",
    )]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    pools(&mut o, &["prod"]);
    let v = one(&d, &o, false);
    assert_eq!(v.action, Action::Create);
    let create = argv(&v.steps[0]);
    assert_eq!(option(&create, "--bios"), Some("ovmf"));
    assert_eq!(option(&create, "--machine"), Some("q35"));
    assert_eq!(
        option(&create, "--efidisk0"),
        Some("local-lvm:1,efitype=4m,pre-enrolled-keys=1")
    );
    assert_eq!(
        option(&create, "--tpmstate0"),
        Some("local-lvm:1,version=v2.0")
    );
    assert_eq!(option(&create, "--pool"), Some("prod"));
    assert!(v.steps[0].command.allocates());
    let last = argv(v.steps.last().expect("steps"));
    assert_eq!(
        last,
        words(&[
            "ha-manager",
            "add",
            "vm:200",
            "--state",
            "started",
            "--group",
            "g1"
        ])
    );
    // SeaBIOS sends none of it.
    let plain = one(&host(&[&web("")]), &o, false);
    let create = argv(&plain.steps[0]);
    for flag in ["--bios", "--machine", "--efidisk0", "--tpmstate0", "--pool"] {
        assert_eq!(option(&create, flag), None, "{flag}");
    }
    assert_eq!(option(&create, "--agent"), Some("enabled=1"));
}

#[test]
fn a_clone_gets_its_pool_after_the_clone_and_its_efi_vars_in_the_set() {
    let d = host(&[&format!(
        "{{name: web, vmid: 200, image: {IMG}, disk_from: linked-clone, bios: ovmf, pool: prod}}"
    )]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    pools(&mut o, &["prod"]);
    let v = one(&d, &o, false);
    assert_eq!(v.action, Action::Create, "{v:#?}");
    let all = argvs(&v.steps);
    let set = all
        .iter()
        .find(|a| a[..2] == ["qm", "set"])
        .expect("a qm set after the clone");
    assert_eq!(
        option(set, "--efidisk0"),
        Some("local-lvm:1,efitype=4m,pre-enrolled-keys=0")
    );
    assert!(all.iter().all(|a| option(a, "--pool").is_none()));
    assert!(all.contains(&words(&["pvesh", "set", "/pools/prod", "--vms", "200"])));
}

#[test]
fn a_missing_pool_is_a_problem_naming_pveum() {
    let d = host(&[&web("pool: prod")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    pools(&mut o, &["dev"]);
    let v = one(&d, &o, false);
    assert_eq!(
        v.problem,
        Some(PlanProblem::MissingPool {
            pool: "prod".into()
        })
    );
    assert!(v
        .problem
        .iter()
        .any(|p| p.to_string().contains("pveum pool add prod")));
    assert_eq!(
        v.problem.as_ref().map(PlanProblem::code),
        Some("missing_pool")
    );
}

#[test]
fn switching_to_ovmf_adds_the_efi_vars_and_is_cold() {
    let (v, _) = update_of("bios: ovmf", web_config(), |_| {});
    assert_eq!(v.action, Action::Update);
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--bios",
            "ovmf",
            "--machine",
            "q35",
            "--efidisk0",
            "local-lvm:1,efitype=4m,pre-enrolled-keys=0"
        ])]
    );
    assert_eq!(v.reboot_pending, ["bios", "efidisk0", "machine"]);
}

#[test]
fn dropping_or_remaking_efi_vars_or_tpm_state_needs_allow_data_loss() {
    let efi = "local-lvm:vm-200-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M";
    let uefi = with(&[
        ("bios", "ovmf"),
        ("machine", "q35"),
        ("efidisk0", efi),
        ("tpmstate0", "local-lvm:vm-200-disk-2,size=4M,version=v2.0"),
    ]);
    // Unchanged: nothing to do.
    let (same, _) = update_of(
        "bios: ovmf, secure_boot: true, tpm: true",
        uefi.clone(),
        |_| {},
    );
    assert_eq!(same.action, Action::None, "{same:#?}");
    // Back to SeaBIOS without TPM.
    let (refused, allowed) = update_of("", uefi.clone(), |_| {});
    assert_eq!(refused.action, Action::Error);
    assert_eq!(
        refused.problem.as_ref().map(PlanProblem::code),
        Some("data_loss")
    );
    assert!(refused.steps.is_empty());
    assert_eq!(
        argvs(&allowed.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--bios",
            "seabios",
            "--delete",
            "efidisk0,tpmstate0"
        ])]
    );
    // Secure Boot off: a new EFI vars volume, the old one detached first.
    let (refused, allowed) = update_of("bios: ovmf, tpm: true", uefi, |_| {});
    assert!(refused
        .problem
        .iter()
        .any(|p| p.to_string().contains("--allow-data-loss")));
    assert_eq!(
        argvs(&allowed.steps),
        [
            words(&["qm", "set", "200", "--delete", "efidisk0"]),
            words(&[
                "qm",
                "set",
                "200",
                "--efidisk0",
                "local-lvm:1,efitype=4m,pre-enrolled-keys=0"
            ]),
        ]
    );
}

#[test]
fn lifecycle_keys_drift_in_one_set_and_only_some_are_cold() {
    let (v, _) = update_of(
        "startup: {order: 1}, protection: true, agent: {fstrim_cloned_disks: true}, balloon: 1024, numa: true, hotplug: [disk]",
        web_config(),
        |_| {},
    );
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "qm",
            "set",
            "200",
            "--startup",
            "order=1",
            "--protection",
            "1",
            "--agent",
            "enabled=1,fstrim_cloned_disks=1",
            "--balloon",
            "1024",
            "--numa",
            "1",
            "--hotplug",
            "disk"
        ])]
    );
    // The balloon stays on and only fstrim_cloned_disks of the agent
    // changes: both apply at once; numa waits for the reboot.
    assert_eq!(v.reboot_pending, ["numa"]);
    let (v, _) = update_of(
        "agent: {type: isa}, balloon: 0",
        with(&[("balloon", "1024")]),
        |_| {},
    );
    assert_eq!(v.reboot_pending, ["agent", "balloon"]);
    // As Proxmox spells them back: no drift.
    let (v, _) = update_of(
        "startup: {order: 1, up: 5}, protection: true, hotplug: [disk, network, usb]",
        with(&[
            ("startup", "up=5,order=1"),
            ("protection", "1"),
            ("hotplug", "1"),
        ]),
        |_| {},
    );
    assert_eq!(v.action, Action::None, "{v:#?}");
}

#[test]
fn a_pool_change_moves_the_vm_out_then_in() {
    let (v, _) = update_of("pool: dev", web_config(), |o| {
        pools(o, &["prod", "dev"]);
        o.lifecycle.vm_pools.insert(id(200), "prod".into());
    });
    assert_eq!(
        argvs(&v.steps),
        [
            words(&[
                "pvesh",
                "set",
                "/pools/prod",
                "--vms",
                "200",
                "--delete",
                "1"
            ]),
            words(&["pvesh", "set", "/pools/dev", "--vms", "200"]),
        ]
    );
    // Without `pool`, the membership is left alone.
    let (v, _) = update_of("", web_config(), |o| {
        o.lifecycle.vm_pools.insert(id(200), "prod".into());
    });
    assert_eq!(v.action, Action::None);
}

#[test]
fn ha_is_added_changed_and_removed() {
    let ha = |state: &str, group: Option<&str>| HaResource {
        state: state.into(),
        group: group.map(str::to_string),
    };
    let (v, _) = update_of("ha: {state: started, group: g2}", web_config(), |o| {
        o.lifecycle.ha_read = true;
        o.lifecycle.ha.insert(id(200), ha("started", Some("g1")));
    });
    assert_eq!(
        argvs(&v.steps),
        [words(&[
            "ha-manager",
            "set",
            "vm:200",
            "--state",
            "started",
            "--group",
            "g2"
        ])]
    );
    let (v, _) = update_of("ha: {state: started, group: g1}", web_config(), |o| {
        o.lifecycle.ha_read = true;
        o.lifecycle.ha.insert(id(200), ha("started", Some("g1")));
    });
    assert_eq!(v.action, Action::None);
    let (v, _) = update_of("", web_config(), |o| {
        o.lifecycle.ha.insert(id(200), ha("started", None));
    });
    assert_eq!(
        argvs(&v.steps),
        [words(&["ha-manager", "remove", "vm:200"])]
    );
}

#[test]
fn the_ha_resources_are_read_with_the_cluster() {
    let without = read_plan(&host(&[&web("")]));
    assert!(without.cluster_reads.contains(&Read::HaResources));
    assert_eq!(
        Read::HaResources.command("pve").argv(),
        words(&[
            "pvesh",
            "get",
            "/cluster/ha/resources",
            "--output-format",
            "json"
        ])
    );
}

#[test]
fn an_adopted_vm_keeps_its_ha_resource_when_the_file_has_no_ha() {
    let d = host(&[&web("")]);
    let mut n = node("pve1", "8.4.1");
    put(&mut n, foreign(200, "pve1", "web"), web_config());
    let mut o = observed(vec![n]);
    o.lifecycle.ha_read = true;
    o.lifecycle.ha.insert(
        id(200),
        HaResource {
            state: "started".into(),
            group: Some("g1".into()),
        },
    );
    let p = plan(PlanInput {
        desired: &d,
        observed: &o,
        reboot: false,
        only: &[],
        adopt: true,
        allow_data_loss: false,
    });
    let v = &p.vms[0];
    assert_eq!(v.action, Action::Adopt, "{v:#?}");
    assert!(
        argvs(&v.steps).iter().all(|a| a[0] != "ha-manager"),
        "{v:#?}"
    );
}

#[test]
fn destroy_refuses_a_protected_vm_and_removes_ha_first() {
    let d = host(&[&web("")]);
    let protected = observed(vec![web_node(with(&[("protection", "1")]))]);
    let p = destroy_plan(DestroyInput {
        desired: &d,
        observed: &protected,
        only: &[],
        include_cache: false,
    });
    assert_eq!(
        p.vms[0].problem,
        Some(PlanProblem::Protected { vmid: id(200) })
    );
    assert!(p.has_problems() && p.vms[0].steps.is_empty());
    let mut o = observed(vec![web_node(web_config())]);
    o.lifecycle.ha.insert(
        id(200),
        HaResource {
            state: "started".into(),
            group: None,
        },
    );
    let p = destroy_plan(DestroyInput {
        desired: &d,
        observed: &o,
        only: &[],
        include_cache: false,
    });
    let steps = argvs(&p.vms[0].steps);
    assert_eq!(steps[0], words(&["ha-manager", "remove", "vm:200"]));
    assert_eq!(
        steps.last().map(|a| &a[..3]),
        Some(&words(&["qm", "destroy", "200"])[..])
    );
}

#[test]
fn a_clone_of_a_template_with_efi_vars_does_not_allocate_them_again() {
    let d = host(&["{name: web, vmid: 200, clone: 9000, bios: ovmf, tpm: true}"]);
    let mut n = node("pve1", "8.4.1");
    let cfg = common::config(&[
        ("name", "base"),
        ("scsi0", "local-lvm:base-9000-disk-0,size=2G"),
        (
            "efidisk0",
            "local-lvm:base-9000-disk-1,efitype=4m,pre-enrolled-keys=0,size=4M",
        ),
        ("boot", "order=scsi0"),
        ("template", "1"),
    ]);
    put(&mut n, template(9000, "pve1", "base"), cfg);
    let v = one(&d, &observed(vec![n]), false);
    assert_eq!(v.action, Action::Create, "{v:#?}");
    let set = argv(&v.steps[1]);
    assert_eq!(set[..2], words(&["qm", "set"]));
    assert_eq!(option(&set, "--efidisk0"), None);
    assert_eq!(
        option(&set, "--tpmstate0"),
        Some("local-lvm:1,version=v2.0")
    );
    assert_eq!(option(&set, "--bios"), Some("ovmf"));
}

#[test]
fn a_hotplug_change_is_cold_only_with_memory_or_cpu() {
    let (v, _) = update_of("hotplug: [disk, network]", web_config(), |_| {});
    assert_eq!(v.action, Action::Update);
    assert!(v.reboot_pending.is_empty(), "{:?}", v.reboot_pending);
    let (v, _) = update_of(
        "numa: true, hotplug: [disk, memory]",
        with(&[("numa", "1")]),
        |_| {},
    );
    assert_eq!(v.reboot_pending, ["hotplug"]);
    let (v, _) = update_of("hotplug: [disk]", with(&[("hotplug", "disk,cpu")]), |_| {});
    assert_eq!(v.reboot_pending, ["hotplug"]);
}

#[test]
fn uefi_and_tpm_need_pve_7_1() {
    let o = observed(vec![node("pve1", "7.0-8")]);
    for (extra, what) in [("bios: ovmf", "bios: ovmf"), ("tpm: true", "tpm")] {
        let v = one(&host(&[&web(extra)]), &o, false);
        assert_eq!(
            v.problem,
            Some(PlanProblem::FirmwareNeedsVersion {
                what,
                node: "pve1".into(),
                version: "7.0.8".into(),
            }),
            "{extra}"
        );
    }
    let v = one(
        &host(&[&web("tpm: true")]),
        &observed(vec![node("pve1", "7.1-7")]),
        false,
    );
    assert_eq!(v.action, Action::Create);
    // An existing VM on 7.0 cannot get a TPM either.
    let mut n = node("pve1", "7.0-8");
    put(&mut n, vm(200, "pve1", "web"), web_config());
    let v = one(&host(&[&web("tpm: true")]), &observed(vec![n]), false);
    assert_eq!(
        v.problem.as_ref().map(PlanProblem::code),
        Some("firmware_needs_version")
    );
}

#[test]
fn a_protected_vm_loses_its_efi_vars_only_after_the_protection_is_lifted() {
    let uefi = with(&[
        ("bios", "ovmf"),
        ("machine", "q35"),
        ("protection", "1"),
        (
            "efidisk0",
            "local-lvm:vm-200-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M",
        ),
    ]);
    let (_, kept) = update_of("protection: true", uefi.clone(), |_| {});
    assert_eq!(
        kept.problem,
        Some(PlanProblem::ProtectedDrive {
            vmid: id(200),
            key: "efidisk0".into()
        })
    );
    let (_, lifted) = update_of("bios: ovmf, machine: q35", uefi, |_| {});
    assert_eq!(
        argvs(&lifted.steps),
        [
            words(&["qm", "set", "200", "--protection", "0"]),
            words(&["qm", "set", "200", "--delete", "efidisk0"]),
            words(&[
                "qm",
                "set",
                "200",
                "--efidisk0",
                "local-lvm:1,efitype=4m,pre-enrolled-keys=0"
            ]),
        ]
    );
    assert_eq!(lifted.reboot_pending, ["efidisk0"]);
}

#[test]
fn older_2m_efi_vars_are_kept_without_secure_boot() {
    let two_m = with(&[
        ("bios", "ovmf"),
        ("machine", "q35"),
        ("efidisk0", "local-lvm:vm-200-disk-1,size=4M"),
    ]);
    let (v, _) = update_of("bios: ovmf", two_m.clone(), |_| {});
    assert_eq!(v.action, Action::None, "{v:#?}");
    let (v, _) = update_of("bios: ovmf, secure_boot: true", two_m, |_| {});
    assert_eq!(v.problem.as_ref().map(PlanProblem::code), Some("data_loss"));
}

#[test]
fn ha_groups_are_refused_on_pve_9() {
    let o = observed(vec![node("pve1", "9.0.3")]);
    let v = one(&host(&[&web("ha: {group: g1}")]), &o, false);
    assert_eq!(
        v.problem.as_ref().map(PlanProblem::code),
        Some("ha_groups_migrated")
    );
    assert!(v
        .problem
        .iter()
        .any(|p| p.to_string().contains("ha-manager rules")));
    let v = one(&host(&[&web("ha: {state: started}")]), &o, false);
    assert_eq!(v.action, Action::Create);
}

#[test]
fn a_vm_whose_agent_is_off_is_not_waited_for() {
    let o = observed(vec![node("pve1", "8.4.1")]);
    let off = one(&host(&[&web("agent: {enabled: false}")]), &o, false);
    assert!(off.no_agent && off.running);
    assert_eq!(option(&argv(&off.steps[0]), "--agent"), Some("enabled=0"));
    let on = one(&host(&[&web("")]), &o, false);
    assert!(!on.no_agent);
}
