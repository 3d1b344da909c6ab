//! Tests of the validation pass: what is accepted, and for what is not, the
//! kind, message and place of each error.

use super::*;
use crate::error::{ErrorKind, Span};
use crate::spec::DiskSource;

const HOST: &str = "proxmox: {host: pve}\n";

fn parse_ok(text: &str) -> Desired {
    parse("t.yml", text, &|_| Err("no files".into()))
        .unwrap_or_else(|r| panic!("{}", r.render(false)))
}

/// Every error of `text`, read with `load` for `ssh_keys_file`.
fn errors_with(text: &str, load: FileLoader<'_>) -> Vec<ConfigError> {
    match parse("t.yml", text, load) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(r) => r.errors,
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    errors_with(text, &|_| Err("no such file".into()))
}

/// The one error of `text`, as (kind, message, line:col).
fn only(text: &str) -> (ErrorKind, String, (u32, u32)) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    let span = e.span.expect("located");
    (e.kind, e.message.clone(), (span.line, span.col))
}

/// A file with one VM whose mapping body is `vm`.
fn one_vm(vm: &str) -> String {
    format!("{HOST}vms:\n  - {{name: a, image: local:iso/x.img, {vm}}}\n")
}

#[test]
fn ssh_user_is_left_to_ssh_unless_set() {
    let vms = "vms:\n  - {name: a, image: local:iso/x.img}\n";
    let d = parse_ok(&format!("proxmox:\n  host: pve\n{vms}"));
    assert_eq!(d.nodes[0].user, None);
    let d = parse_ok(&format!("proxmox:\n  host: pve\n  user: admin\n{vms}"));
    assert_eq!(d.nodes[0].user.as_deref(), Some("admin"));
}

#[test]
fn null_on_a_vm_unsets_a_default() {
    let d = parse_ok("proxmox: {host: pve}\ndefaults: {clone: 9000}\nvms:\n  - {name: a, clone: ~, image: local:iso/x.img}\n");
    assert!(matches!(d.vms[0].source, DiskSource::Image(_)));
}

#[test]
fn kind_syntax() {
    let (kind, message, at) = only("proxmox: [1,2\nvms: []\n");
    assert_eq!(kind, ErrorKind::Syntax);
    assert!(message.starts_with("YAML syntax: "), "{message}");
    assert_eq!(at.0, 2);
}

#[test]
fn kind_unknown_key() {
    let (kind, message, at) = only(&one_vm("memroy: 2048"));
    assert_eq!(kind, ErrorKind::UnknownKey);
    assert_eq!(
        message,
        "unknown key 'memroy' in a VM (did you mean 'memory'?)"
    );
    assert_eq!(at, (3, 39));
}

#[test]
fn kind_misplaced() {
    let text =
        format!("{HOST}defaults: {{vmid: 100}}\nvms:\n  - {{name: a, image: local:iso/x.img}}\n");
    let (kind, message, at) = only(&text);
    assert_eq!(kind, ErrorKind::Misplaced);
    assert_eq!(message, "'vmid' cannot be set in defaults");
    assert_eq!(at, (2, 12));
}

#[test]
fn kind_type() {
    let (kind, message, _) = only(&one_vm("memory: [1]"));
    assert_eq!(kind, ErrorKind::Type);
    assert_eq!(
        message,
        "memory: expected an integer (MiB) or a size like 2G, found a list"
    );
    let (kind, _, _) = only(&one_vm("onboot: maybe"));
    assert_eq!(kind, ErrorKind::Type);
}

#[test]
fn kind_range() {
    let (kind, message, _) = only(&one_vm("vlan: 0"));
    assert_eq!(kind, ErrorKind::Range);
    assert_eq!(
        message,
        "vlan: 0 is out of range (Proxmox accepts 1 to 4094)"
    );
    let (kind, message, _) = only(&one_vm("mac: '01:00:00:00:00:01'"));
    assert_eq!(kind, ErrorKind::Range);
    assert_eq!(message, "mac: '01:00:00:00:00:01' is a multicast address");
    let (kind, _, _) = only(&one_vm("ip: 10.0.0.255/24"));
    assert_eq!(kind, ErrorKind::Range);
}

#[test]
fn kind_format() {
    let (kind, message, _) = only(&one_vm("ip: 10.0.0.5"));
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(
        message,
        "ip: '10.0.0.5' is not an IPv4 address in CIDR notation"
    );
    let (kind, message, _) = only(&one_vm("tags: [ok, -bad]"));
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(message, "tags: '-bad' is not a valid Proxmox tag");
}

#[test]
fn kind_unknown_value() {
    let (kind, message, _) = only(&one_vm("state: runing"));
    assert_eq!(kind, ErrorKind::UnknownValue);
    assert_eq!(
        message,
        "state: 'runing' is not a known state (did you mean 'running'?)"
    );
    let text = "proxmox: {host: pve, node: pve1}\nvms:\n  - {name: a, image: local:iso/x.img, node: pve2}\n";
    let (kind, _, _) = only(text);
    assert_eq!(kind, ErrorKind::UnknownValue);
}

#[test]
fn kind_missing() {
    let (kind, message, at) = only(&format!("{HOST}vms:\n  - {{image: local:iso/x.img}}\n"));
    assert_eq!(kind, ErrorKind::Missing);
    assert_eq!(message, "VM without 'name'");
    assert_eq!(at, (3, 5));
    let (kind, message, _) = only("vms: []\n");
    assert_eq!(kind, ErrorKind::Missing);
    assert_eq!(
        message,
        "no connection: neither 'proxmox' nor 'nodes' is set"
    );
    let (kind, _, _) = only(&one_vm("gateway: 10.0.0.1"));
    assert_eq!(kind, ErrorKind::Missing);
}

#[test]
fn kind_conflict() {
    let (kind, message, _) = only(&one_vm("clone: 9000"));
    assert_eq!(kind, ErrorKind::Conflict);
    assert_eq!(message, "both 'image' and 'clone' are set");
    let (kind, message, _) = only(&one_vm("ip: dhcp, gateway: 10.0.0.1"));
    assert_eq!(kind, ErrorKind::Conflict);
    assert_eq!(message, "gateway: set together with ip: dhcp");
}

#[test]
fn kind_duplicate() {
    let text = format!(
        "{HOST}vms:\n  - {{name: a, image: local:iso/x.img}}\n  - {{name: a, image: local:iso/x.img}}\n"
    );
    let (kind, message, at) = only(&text);
    assert_eq!(kind, ErrorKind::Duplicate);
    assert_eq!(message, "duplicate name 'a'");
    assert_eq!(at, (4, 12));
}

#[test]
fn kind_file() {
    let (kind, message, _) = only(&one_vm("ssh_keys_file: k.pub"));
    assert_eq!(kind, ErrorKind::File);
    assert_eq!(message, "ssh_keys_file: cannot read 'k.pub': no such file");
    let errors = errors_with(&one_vm("ssh_keys_file: k.pub"), &|_| {
        Ok("not a key\n".into())
    });
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::File);
}

#[test]
fn every_error_of_a_file_has_its_kind() {
    let text = format!(
        "{HOST}colour: red\nvms:\n  - {{name: a_b, image: x, vlan: 9999, state: off, cores: '2'}}\n"
    );
    let kinds: Vec<(ErrorKind, Option<Span>)> = errors(&text)
        .into_iter()
        .map(|e| (e.kind, e.span))
        .collect();
    let only_kinds: Vec<ErrorKind> = kinds.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        only_kinds,
        [
            ErrorKind::UnknownKey,
            ErrorKind::Format,
            ErrorKind::Format,
            ErrorKind::Range,
            ErrorKind::UnknownValue,
            ErrorKind::Type,
        ]
    );
}

#[test]
fn kind_codes_are_distinct_snake_case() {
    let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    for (i, code) in codes.iter().enumerate() {
        assert!(
            code.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'),
            "{code}"
        );
        assert!(!codes[i + 1..].contains(code), "{code} twice");
    }
    assert_eq!(ErrorKind::UnknownKey.code(), "unknown_key");
    assert_eq!(ErrorKind::UnknownKey.to_string(), "unknown_key");
}

#[test]
fn duplicate_vmid_on_one_line_points_at_the_second_vm() {
    // Both VMs on one line (flow style): the error must stand at the second
    // VM's vmid and the hint must name the first VM's line and column.
    let text = format!(
        "{HOST}vms: [{{vmid: 101, name: a, image: local:iso/x.img}}, {{vmid: 101, name: b, image: local:iso/x.img}}]\n"
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.message, "duplicate vmid 101");
    let span = e.span.expect("located");
    assert_eq!((span.line, span.col), (2, 60));
    assert_eq!(&text[span.offset..span.offset + span.len], "101");
    assert_eq!(e.help.as_deref(), Some("first used by the VM at 2:7"));
}

#[test]
fn duplicate_inherited_value_points_at_defaults() {
    let text = format!(
        "{HOST}defaults: {{ip: 10.0.0.5/24}}\nvms:\n  - {{name: a, image: local:iso/x.img}}\n  - {{name: b, image: local:iso/x.img}}\n"
    );
    let (kind, message, at) = only(&text);
    assert_eq!(kind, ErrorKind::Duplicate);
    assert_eq!(message, "duplicate static IP 10.0.0.5");
    assert_eq!(at, (2, 16));
}

#[test]
fn duplicate_hint_names_the_first_vm_even_after_invalid_ones() {
    let text = format!(
        "{HOST}vms:\n  - {{name: x, image: local:iso/x.img, memory: 1}}\n  - {{vmid: 101, name: a, image: local:iso/x.img}}\n  - {{vmid: 101, name: b, image: local:iso/x.img}}\n  - {{vmid: 101, name: c, image: local:iso/x.img}}\n"
    );
    let errors = errors(&text);
    let dups: Vec<_> = errors
        .iter()
        .filter(|e| e.kind == ErrorKind::Duplicate)
        .map(|e| (e.span.map(|s| s.line), e.help.clone()))
        .collect();
    let hint = Some("first used by the VM at 4:5".to_string());
    assert_eq!(dups, [(Some(5), hint.clone()), (Some(6), hint)]);
}

#[test]
fn span_map_records_each_vm_and_where_its_values_came_from() {
    let text = format!(
        "{HOST}defaults:\n  memory: 2048\n  image: local:iso/x.img\nvms:\n  - name: a\n    memory: 4096\n  - {{name: b, image: ~, clone: 9000}}\n"
    );
    let d = parse_ok(&text);
    let s = &d.spans;
    assert_eq!(s.len(), d.vms.len());
    let at = |span: Option<Span>| span.map(|s| (s.line, s.col));
    assert_eq!(at(s.vm(0)), Some((6, 5)));
    assert_eq!(at(s.vm(1)), Some((8, 5)));
    assert_eq!(s.vm(2), None);
    // Own value, then a value inherited from `defaults:`.
    assert_eq!(at(s.key(0, "memory")), Some((7, 13)));
    assert_eq!(at(s.key(1, "memory")), Some((3, 11)));
    assert_eq!(at(s.key(0, "image")), Some((4, 10)));
    // Unset by null on the VM, or never set: no span.
    assert_eq!(s.key(1, "image"), None);
    assert_eq!(s.key(0, "cores"), None);
    assert_eq!(at(s.key(1, "clone")), Some((8, 32)));
    let name = s.key(1, "name").expect("name");
    assert_eq!(&text[name.offset..name.offset + name.len], "b");
}
