//! `disks:` and `networks:`: what is accepted (slots, defaults, the first
//! NIC as net0) and, for what is not, the kind and place of each error.

use pvefleet_config::{parse, ConfigError, Desired, ErrorKind};
use pvefleet_model::NicModel;

const HOST: &str = "proxmox: {host: pve}\n";

fn parse_ok(text: &str) -> Desired {
    parse("t.yml", text, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)))
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse("t.yml", text, &|_| Err("no files".into())) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(r) => r.errors,
    }
}

/// The one error of `text`, as (kind, message, line:col).
fn only(text: &str) -> (ErrorKind, String, (u32, u32)) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    let span = e.span.expect("located");
    (e.kind, e.message.clone(), (span.line, span.col))
}

/// A file with one VM (line 3) whose mapping body is `vm`.
fn one_vm(vm: &str) -> String {
    format!("{HOST}vms:\n  - {{name: a, image: local:iso/x.img, {vm}}}\n")
}

/// The column of the last `marker` in `vm` once [`one_vm`] wrote it.
fn col(vm: &str, marker: &str) -> u32 {
    let prefix = "  - {name: a, image: local:iso/x.img, ".len();
    let at = vm.rfind(marker).expect("marker");
    u32::try_from(prefix + at + 1).expect("small")
}

#[test]
fn disks_get_the_next_free_scsi_slot_and_the_vms_storage() {
    let d = parse_ok(&one_vm(
        "storage: fast, disks: [{size: 10G}, {size: 2G, slot: scsi2}, {size: 512M, storage: slow, discard: on}, {size: 3}]",
    ));
    let disks = &d.vms[0].disks;
    let slots: Vec<&str> = disks.iter().map(|d| d.slot.as_str()).collect();
    assert_eq!(slots, ["scsi1", "scsi2", "scsi3", "scsi4"]);
    assert_eq!(disks[0].storage, "fast");
    assert_eq!(disks[2].storage, "slow");
    assert_eq!(disks[2].size, 512 << 20);
    assert_eq!(disks[2].discard, Some(true));
    assert_eq!(disks[0].discard, None);
    assert_eq!(disks[3].size, 3 << 30);
}

#[test]
fn networks_first_entry_is_net0() {
    let d = parse_ok(&one_vm(
        "networks: [{bridge: vmbr1, vlan: 5, mac: 'bc:24:11:00:00:01', ip: 10.0.0.5/24, gateway: 10.0.0.1}, {bridge: vmbr2, model: e1000, firewall: true, mtu: 9000}]",
    ));
    let vm = &d.vms[0];
    assert_eq!(vm.bridge, "vmbr1");
    assert_eq!(vm.vlan, Some(5));
    assert_eq!(vm.mac.as_deref(), Some("BC:24:11:00:00:01"));
    assert!(vm.ip.is_some());
    assert_eq!(vm.networks.len(), 2);
    assert_eq!(vm.networks[1].model, NicModel::E1000);
    assert_eq!(vm.networks[1].firewall, Some(true));
    assert_eq!(vm.networks[1].mtu, Some(9000));
    assert_eq!(vm.networks[0].model, NicModel::Virtio);
}

#[test]
fn both_forms_on_one_vm_is_a_conflict_at_networks() {
    let (kind, message, at) = only(&one_vm("ip: 10.0.0.5/24, networks: [{bridge: vmbr0}]"));
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(message.contains("'ip' at 3:"), "{message}");
    assert_eq!(at, (3, 56));
}

#[test]
fn a_vms_own_form_wins_over_the_other_form_in_defaults() {
    let text = format!(
        "{HOST}defaults: {{image: local:iso/x.img, bridge: vmbr7, vlan: 3}}\nvms:\n  - {{name: a, networks: [{{bridge: vmbr1}}]}}\n"
    );
    let d = parse_ok(&text);
    assert_eq!(d.vms[0].bridge, "vmbr1");
    assert_eq!(d.vms[0].vlan, None);
    let text = format!(
        "{HOST}defaults: {{image: local:iso/x.img, networks: [{{bridge: vmbr1}}, {{bridge: vmbr2}}]}}\nvms:\n  - {{name: a, bridge: vmbr5}}\n"
    );
    let d = parse_ok(&text);
    assert_eq!(d.vms[0].bridge, "vmbr5");
    assert!(d.vms[0].networks.is_empty());
}

#[test]
fn bad_disk_entries_are_reported_at_their_value() {
    let cases: &[(&str, ErrorKind, &str)] = &[
        (
            "disks: [{size: 10G, slot: scsi0}]",
            ErrorKind::Format,
            "scsi0",
        ),
        (
            "disks: [{size: 10G, slot: ide2}]",
            ErrorKind::Format,
            "ide2",
        ),
        ("disks: [{size: 1500K}]", ErrorKind::Range, "1500K"),
        ("disks: [{size: ten}]", ErrorKind::Format, "ten"),
        (
            "disks: [{size: 1G, cache: fast}]",
            ErrorKind::UnknownValue,
            "fast",
        ),
        ("disks: [{size: 1G, ssd: maybe}]", ErrorKind::Type, "maybe"),
        (
            "disks: [{size: 1G, iops: 3}]",
            ErrorKind::UnknownKey,
            "iops",
        ),
        (
            "disks: [{storage: local-lvm}]",
            ErrorKind::Missing,
            "{storage",
        ),
        ("disks: 10G", ErrorKind::Type, "10G"),
        (
            "disks: [{size: 1G, slot: sata1}, {size: 1G, slot: sata1}]",
            ErrorKind::Duplicate,
            "sata1}]",
        ),
    ];
    for (vm, kind, marker) in cases {
        let (k, message, at) = only(&one_vm(vm));
        assert_eq!((k, at), (*kind, (3, col(vm, marker))), "{vm}: {message}");
    }
}

#[test]
fn bad_nic_entries_are_reported_at_their_value() {
    let cases: &[(&str, ErrorKind, &str)] = &[
        ("networks: [{vlan: 3}]", ErrorKind::Missing, "{vlan"),
        (
            "networks: [{bridge: vmbr0, vlan: 0}]",
            ErrorKind::Range,
            "0}",
        ),
        (
            "networks: [{bridge: vmbr0, model: e2000}]",
            ErrorKind::UnknownValue,
            "e2000",
        ),
        (
            "networks: [{bridge: vmbr0, mtu: 70000}]",
            ErrorKind::Range,
            "70000",
        ),
        (
            "networks: [{bridge: vmbr0, mac: 'ff:ff:ff:ff:ff:ff'}]",
            ErrorKind::Range,
            "'ff",
        ),
        (
            "networks: [{bridge: vmbr0, ip: dhcp, gateway: 10.0.0.1}]",
            ErrorKind::Conflict,
            "10.0",
        ),
        (
            "networks: [{bridge: vmbr0, vlan: 3, speed: 10}]",
            ErrorKind::UnknownKey,
            "speed",
        ),
    ];
    for (vm, kind, marker) in cases {
        let (k, message, at) = only(&one_vm(vm));
        assert_eq!((k, at), (*kind, (3, col(vm, marker))), "{vm}: {message}");
    }
}

#[test]
fn an_address_on_any_nic_must_be_unique_in_the_fleet() {
    let text = format!(
        "{HOST}defaults: {{image: local:iso/x.img}}\nvms:\n  - {{name: a, networks: [{{bridge: vmbr0}}, {{bridge: vmbr1, ip: 10.0.0.5/24, mac: 'bc:24:11:00:00:01'}}]}}\n  - {{name: b, ip: 10.0.0.5/24, mac: 'BC:24:11:00:00:01'}}\n"
    );
    let e = errors(&text);
    let kinds: Vec<(ErrorKind, u32)> = e
        .iter()
        .map(|e| (e.kind, e.span.map_or(0, |s| s.line)))
        .collect();
    assert_eq!(
        kinds,
        [(ErrorKind::Duplicate, 5), (ErrorKind::Duplicate, 5)],
        "{e:#?}"
    );
}
