//! Tests of the firmware and lifecycle keys: what each decodes to, and the
//! kind and place of each error.

use super::*;
use crate::error::ErrorKind;
use pvefleet_model::lifecycle::{Bios, HaState, Hotplug, MachineChoice, Startup};

fn one_vm(vm: &str) -> String {
    format!("proxmox: {{host: pve}}\nvms:\n  - {{name: a, image: local:iso/x.img, {vm}}}\n")
}

fn spec(vm: &str) -> crate::spec::VmSpec {
    let d = parse("t.yml", &one_vm(vm), &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)));
    d.vms.into_iter().next().expect("one VM")
}

/// The one error of a VM: (kind, message, column).
fn only(vm: &str) -> (ErrorKind, String, u32) {
    let errors = match parse("t.yml", &one_vm(vm), &|_| Err("no files".into())) {
        Ok(_) => panic!("accepted: {vm}"),
        Err(r) => r.errors,
    };
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    (e.kind, e.message.clone(), e.span.map_or(0, |s| s.col))
}

#[test]
fn defaults_leave_firmware_and_lifecycle_alone() {
    let s = spec("memory: 2048");
    assert_eq!(s.firmware.bios, Bios::SeaBios);
    assert_eq!(s.firmware.machine(), None);
    assert!(!s.firmware.tpm && !s.lifecycle.protection);
    assert_eq!(s.lifecycle.agent, None);
    assert_eq!(
        (
            s.lifecycle.pool.clone(),
            s.lifecycle.balloon,
            s.lifecycle.numa
        ),
        (None, None, None)
    );
}

#[test]
fn decodes_every_key() {
    let s = spec(
        "bios: ovmf, secure_boot: true, tpm: yes, machine: pc-q35-8.1, pool: prod/web, \
         startup: {order: 2, down: 60}, protection: true, ha: {state: stopped, group: g1}, \
         agent: {enabled: false, type: isa}, balloon: 512, numa: true, hotplug: [usb, memory, usb], \
         state: stopped",
    );
    assert_eq!(s.firmware.bios, Bios::Ovmf);
    assert!(s.firmware.secure_boot && s.firmware.tpm);
    assert_eq!(s.firmware.machine, MachineChoice::Type("pc-q35-8.1".into()));
    assert_eq!(
        spec("machine: i440fx").firmware.machine,
        MachineChoice::Type("pc".into())
    );
    assert_eq!(s.lifecycle.pool.as_deref(), Some("prod/web"));
    assert_eq!(
        s.lifecycle.startup,
        Some(Startup {
            order: Some(2),
            up: None,
            down: Some(60)
        })
    );
    let ha = s.lifecycle.ha.clone().expect("ha");
    assert_eq!(
        (ha.state, ha.group.as_deref()),
        (HaState::Stopped, Some("g1"))
    );
    assert_eq!(
        s.lifecycle.agent.as_ref().map(|a| a.value()).as_deref(),
        Some("enabled=0,type=isa")
    );
    assert_eq!(s.lifecycle.balloon, Some(512));
    assert_eq!(
        s.lifecycle.hotplug,
        Some(Hotplug::Features(vec!["memory".into(), "usb".into()]))
    );
    assert_eq!(spec("hotplug: false").lifecycle.hotplug, Some(Hotplug::Off));
    assert_eq!(spec("bios: ovmf").firmware.machine(), Some("q35"));
}

#[test]
fn errors_have_their_kind_and_place() {
    let cases: &[(&str, ErrorKind, &str)] = &[
        ("machine: virt", ErrorKind::Format, "machine: 'virt'"),
        ("bios: uefi", ErrorKind::UnknownValue, "bios: 'uefi'"),
        (
            "bios: ovmf, secure_boot: true, machine: i440fx",
            ErrorKind::Conflict,
            "secure_boot needs q35",
        ),
        (
            "secure_boot: true",
            ErrorKind::Conflict,
            "needs 'bios: ovmf'",
        ),
        (
            "memory: 1024, balloon: 2048",
            ErrorKind::Range,
            "more than the VM's memory",
        ),
        (
            "hotplug: [floppy]",
            ErrorKind::Format,
            "'floppy' is not a hot-plug feature",
        ),
        ("hotplug: []", ErrorKind::Missing, "empty list"),
        ("hotplug: true", ErrorKind::Type, "hotplug: expected"),
        (
            "hotplug: [memory]",
            ErrorKind::Conflict,
            "needs 'numa: true'",
        ),
        ("pool: 'a b'", ErrorKind::Format, "not a Proxmox pool id"),
        ("startup: {}", ErrorKind::Missing, "at least one of"),
        ("startup: {order: -1}", ErrorKind::Range, "startup.order"),
        ("startup: {delay: 1}", ErrorKind::UnknownKey, "'delay'"),
        ("ha: {state: up}", ErrorKind::UnknownValue, "ha.state"),
        ("ha: {group: 1x}", ErrorKind::Format, "ha.group"),
        (
            "ha: {state: stopped}",
            ErrorKind::Conflict,
            "state: running",
        ),
        (
            "agent: {type: serial}",
            ErrorKind::UnknownValue,
            "agent.type",
        ),
        ("agent: true", ErrorKind::Type, "agent: expected a mapping"),
        ("tpm: maybe", ErrorKind::Type, "tpm: expected a boolean"),
    ];
    for (vm, kind, text) in cases {
        let (k, message, col) = only(vm);
        assert_eq!(k, *kind, "{vm}: {message}");
        assert!(message.contains(text), "{vm}: {message}");
        assert!(col > 1, "{vm}: located");
    }
}
