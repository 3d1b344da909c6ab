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

/// A public key that decodes (ed25519).
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbR5ytPtnisDZ3HGgrkNcNoPSsTXpeaayU3SpbMGpar ops@example";

#[test]
fn valid_forms_proxmox_accepts_are_accepted_and_sent_as_written() {
    let text = format!(
        "{HOST}vms:\n  - {{name: a, image: local:iso/x.img, cpu: 'x86-64-v2-AES,flags=+aes', password: '0', nameserver: [dns.example.com, 10.0.0.1, '2001:db8::53']}}\n  - {{name: b, image: local:iso/x.img, cpu: custom-mymodel, password: '-x'}}\n  - {{name: c, image: local:iso/x.img, cpu: host, password: ' with spaces ', ip: 10.0.0.5/8, ip6: '2001:db8::5/8'}}\n"
    );
    let d = parse_ok(&text);
    assert_eq!(d.vms[0].cpu.as_deref(), Some("x86-64-v2-AES,flags=+aes"));
    assert_eq!(d.vms[0].password.as_deref(), Some("0"));
    assert_eq!(
        d.vms[0].nameserver,
        ["dns.example.com", "10.0.0.1", "2001:db8::53"]
    );
    assert_eq!(d.vms[1].cpu.as_deref(), Some("custom-mymodel"));
    assert_eq!(d.vms[1].password.as_deref(), Some("-x"));
    assert_eq!(d.vms[2].password.as_deref(), Some(" with spaces "));
    let d = parse_ok(&one_vm("nameserver: 'ns1.example.com; 10.0.0.53 ns2'"));
    assert_eq!(d.vms[0].nameserver, ["ns1.example.com", "10.0.0.53", "ns2"]);
}

#[test]
fn prefixes_shorter_than_proxmox_accepts_are_refused() {
    for (vm, message) in [
        (
            "ip: 10.0.0.5/7",
            "ip: the prefix /7 of '10.0.0.5/7' is refused by Proxmox (CIDRv4 accepts /8 to /32)",
        ),
        (
            "ip: 10.0.0.5/0",
            "ip: the prefix /0 of '10.0.0.5/0' is refused by Proxmox (CIDRv4 accepts /8 to /32)",
        ),
        (
            "ip6: '2001:db8::5/7'",
            "ip6: the prefix /7 of '2001:db8::5/7' is refused by Proxmox (CIDRv6 accepts /8 to /128)",
        ),
    ] {
        let (kind, got, _) = only(&one_vm(vm));
        assert_eq!(kind, ErrorKind::Range, "{vm}");
        assert_eq!(got, message);
    }
    // Inherited from defaults: reported at its line there.
    let text = format!(
        "{HOST}defaults: {{ip6: '2001:db8::5/0'}}\nvms:\n  - {{name: a, image: local:iso/x.img}}\n"
    );
    let (kind, _, at) = only(&text);
    assert_eq!((kind, at), (ErrorKind::Range, (2, 17)));
}

#[test]
fn cpu_is_checked_as_proxmox_checks_it() {
    let (kind, message, _) = only(&one_vm("cpu: notacpu"));
    assert_eq!(kind, ErrorKind::UnknownValue);
    assert_eq!(message, "cpu: 'notacpu' is not a built-in CPU model");
    let (kind, message, _) = only(&one_vm("cpu: Host"));
    assert_eq!(kind, ErrorKind::UnknownValue);
    assert_eq!(
        message,
        "cpu: 'Host' is not a built-in CPU model (did you mean 'host'?)"
    );
    let (kind, message, _) = only(&one_vm("cpu: 'host,flags=+avx2'"));
    assert_eq!(kind, ErrorKind::UnknownValue);
    assert_eq!(message, "cpu: the flag 'avx2' cannot be set on a VM");
    let (kind, _, _) = only(&one_vm("cpu: 'host,reported-model=kvm64'"));
    assert_eq!(kind, ErrorKind::Misplaced);
    let (kind, _, _) = only(&one_vm("cpu: 'host,flags=aes'"));
    assert_eq!(kind, ErrorKind::Format);
}

#[test]
fn password_rules_never_show_the_password() {
    let (kind, message, _) = only(&one_vm("password: ''"));
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(
        message,
        "password: an empty cloud-init password is not allowed; remove the key"
    );
    let text = one_vm("password: \"hunter2\\n\"");
    let (kind, message, _) = only(&text);
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(
        message,
        "password: contains the control character U+000A, which no login prompt can take"
    );
    for text in [
        text,
        one_vm("password: \"hunter2\\0\""),
        one_vm(&format!("password: '{}'", "hunter2".repeat(1000))),
        format!("{HOST}defaults: {{password: hunter2}}\nvms:\n  - {{name: a_b, image: local:iso/x.img}}\n"),
    ] {
        let report = parse("t.yml", &text, &|_| Err("none".into())).expect_err("refused");
        let rendered = report.render(false);
        assert!(!rendered.contains("hunter2"), "{rendered}");
    }
}

#[test]
fn dns_names_keep_to_the_lengths_dns_allows() {
    let label = "a".repeat(64);
    let (kind, message, _) = only(&format!(
        "{HOST}vms:\n  - {{name: {label}, image: local:iso/x.img}}\n"
    ));
    assert_eq!(kind, ErrorKind::Range);
    assert_eq!(
        message,
        format!("name: the label '{label}' is 64 characters long; a DNS label has at most 63")
    );
    let long = vec!["a".repeat(63); 4].join(".");
    let (kind, message, _) = errors(&format!(
        "{HOST}vms:\n  - {{name: {long}, image: local:iso/x.img}}\n"
    ))
    .into_iter()
    .map(|e| (e.kind, e.message, ()))
    .next()
    .expect("an error");
    assert_eq!(kind, ErrorKind::Range);
    assert!(
        message.starts_with("name: '")
            && message.ends_with("(255 bytes) is longer than the 253 characters of a DNS name"),
        "{message}"
    );
    let (kind, _, _) = only(&one_vm(&format!("searchdomain: {label}.com")));
    assert_eq!(kind, ErrorKind::Range);
    let (kind, _, _) = only(&one_vm(&format!("nameserver: [{label}.example.com]")));
    assert_eq!(kind, ErrorKind::Range);
    let (kind, message, _) = only(&one_vm("nameserver: ['10.0.0.300']"));
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(
        message,
        "nameserver: '10.0.0.300' is not a valid IPv4 address"
    );
    let (kind, _, _) = only(&one_vm("nameserver: ['0']"));
    assert_eq!(kind, ErrorKind::Format);
    let (kind, _, _) = only(&one_vm("nameserver: [dns_1.example.com]"));
    assert_eq!(kind, ErrorKind::Format);
}

#[test]
fn no_value_may_hold_a_nul_byte() {
    let (kind, message, at) = only(&one_vm("description: \"a\\0b\""));
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(
        message,
        "description: 'a\\0b' contains a NUL byte, which no command line can carry"
    );
    assert_eq!(at, (3, 52));
    // Also where no rule reads the value, and only once where one does.
    let (kind, _, _) = only(&format!(
        "{HOST}vms:\n  - {{name: \"a\\0\", image: local:iso/x.img}}\n"
    ));
    assert_eq!(kind, ErrorKind::Format);
    let errors = errors(&one_vm("colour: \"\\0\""));
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn a_value_too_long_for_a_command_line_is_refused_by_its_start() {
    let long = "x".repeat(70_000);
    let (kind, message, _) = only(&one_vm(&format!("description: {long}")));
    assert_eq!(kind, ErrorKind::Range);
    assert_eq!(
        message,
        format!(
            "description: '{}…' (70000 bytes) is longer than the limit of 65536 bytes",
            "x".repeat(80)
        )
    );
    let (kind, message, _) = only(&one_vm(&format!("description: {}", "y".repeat(9000))));
    assert_eq!(kind, ErrorKind::Range);
    assert!(
        message.ends_with("(9000 bytes) is longer than 8000 bytes"),
        "{message}"
    );
    let (kind, message, _) = only(&format!(
        "{HOST}vms:\n  - {{name: a, image: /{}}}\n",
        "p".repeat(5000)
    ));
    assert_eq!(kind, ErrorKind::Range);
    assert!(message.starts_with("image: '/ppp"), "{message}");
    assert!(message.contains("(5001 bytes)"), "{message}");
    let tags: Vec<String> = (0..1000).map(|i| format!("tag{i}")).collect();
    let (kind, _, _) = only(&one_vm(&format!("tags: [{}]", tags.join(", "))));
    assert_eq!(kind, ErrorKind::Range);
}

#[test]
fn ssh_keys_are_decoded_and_a_bad_one_is_named() {
    let d = parse_ok(&one_vm(&format!("ssh_keys: ['{KEY}']")));
    assert_eq!(d.vms[0].ssh_keys, [KEY]);
    let swapped = KEY.replacen("ssh-ed25519", "ssh-rsa", 1);
    let (kind, message, _) = only(&one_vm(&format!("ssh_keys: ['{KEY}', '{swapped}']")));
    assert_eq!(kind, ErrorKind::Format);
    assert_eq!(
        message,
        "ssh_keys: key 2: the key data is of type 'ssh-ed25519', but the line says 'ssh-rsa'"
    );
    let file = format!("# ops\n{KEY}\n\nssh-ed25519 AAAA!!!!\n");
    let errors = errors_with(&one_vm("ssh_keys_file: k.pub"), &|_| Ok(file.clone()));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].kind, ErrorKind::File);
    assert_eq!(
        errors[0].message,
        "ssh_keys_file: k.pub:4: the key data is not valid base64"
    );
    let huge = "x".repeat(crate::limits::MAX_KEYS_FILE_BYTES + 1);
    let errors = errors_with(&one_vm("ssh_keys_file: k.pub"), &|_| Ok(huge.clone()));
    assert_eq!(errors[0].kind, ErrorKind::File);
    assert_eq!(
        errors[0].message,
        "ssh_keys_file: cannot read 'k.pub': larger than 1 MiB, the limit for an ssh_keys_file"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_unread() {
    let text = format!("{HOST}#{}\n", "x".repeat(crate::limits::MAX_CONFIG_BYTES));
    let report = parse("t.yml", &text, &|_| Err("none".into())).expect_err("refused");
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].kind, ErrorKind::Range);
    assert_eq!(report.errors[0].span, None);
    assert_eq!(
        report.errors[0].message,
        "the file is larger than 4 MiB, the limit for a configuration file"
    );
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused_in_our_words() {
    let deep = format!("{HOST}vms: {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let (kind, message, _) = only(&deep);
    assert_eq!(kind, ErrorKind::Range);
    assert_eq!(
        message,
        "the file nests deeper than 32 levels of mappings and lists"
    );
    let mut block = format!("{HOST}vms:\n");
    for depth in 1..100 {
        block.push_str(&format!("{}- \n", "  ".repeat(depth)));
    }
    let (kind, message, _) = only(&block);
    assert_eq!(kind, ErrorKind::Range, "{message}");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in "abcdefghi".chars().zip("bcdefghij".chars()) {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let (kind, message, _) = only(&bomb);
    assert_eq!(kind, ErrorKind::Range, "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The time to parse and report a VM with `n` unknown keys.
fn time_unknown_keys(n: usize) -> std::time::Duration {
    let mut text = format!("{HOST}vms:\n  - name: a\n    image: local:iso/x.img\n");
    for i in 0..n {
        text.push_str(&format!("    zz{i}: 1\n"));
    }
    (0..2)
        .map(|_| {
            let started = std::time::Instant::now();
            let report = parse("t.yml", &text, &|_| Err("none".into())).expect_err("unknown keys");
            assert_eq!(report.errors.len(), n);
            assert!(!report.render(false).is_empty());
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
fn unknown_keys_cost_linear_time() {
    let small = time_unknown_keys(2_000);
    let large = time_unknown_keys(20_000);
    // Linear work grows ten times; quadratic work would grow a hundred.
    assert!(
        large < small * 30,
        "2k keys: {small:?}, 20k keys: {large:?}"
    );
    #[cfg(not(debug_assertions))]
    assert!(time_unknown_keys(100_000) < std::time::Duration::from_secs(2));
}

#[test]
fn a_vm_on_an_unknown_node_is_told_a_few_node_names() {
    let nodes: String = (1..=12)
        .map(|i| format!("  pve{i}: {{host: h{i}}}\n"))
        .collect();
    let text =
        format!("nodes:\n{nodes}vms:\n  - {{name: a, image: local:iso/x.img, node: pve13}}\n");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].kind, ErrorKind::UnknownValue);
    assert_eq!(
        errors[0].help.as_deref(),
        Some("use one of: pve1, pve2, pve3, pve4, pve5, pve6, pve7, pve8, pve9, pve10, … (12 nodes), or 'auto'")
    );
}
