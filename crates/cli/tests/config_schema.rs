//! The JSON Schema of the configuration language: `pvefleet schema` is the
//! checked-in docs/config.schema.json, every example names it in its first
//! line and is valid against it, and it refuses the structural mistakes of
//! tests/invalid (wrong types, ranges, formats, unknown keys).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn printed_schema() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pvefleet"))
        .arg("schema")
        .output()
        .expect("run pvefleet schema");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf8")
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&printed_schema()).expect("schema is JSON");
    jsonschema::draft7::new(&schema).expect("a valid draft-07 schema")
}

/// The YAML file as JSON, as an editor's language server sees it.
fn as_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_saphyr::from_str::<Value>(&text).map_err(|e| e.to_string())
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_checked_in_schema_is_what_pvefleet_schema_prints() {
    let file = std::fs::read_to_string(repo().join("docs/config.schema.json"))
        .expect("docs/config.schema.json");
    assert!(
        file == printed_schema(),
        "docs/config.schema.json is stale: run `cargo run -q --bin pvefleet -- schema > docs/config.schema.json`"
    );
}

#[test]
fn every_example_names_the_schema_first_and_is_valid() {
    let v = validator();
    let files = yml_files(&repo().join("examples"));
    assert!(files.len() >= 4);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../docs/config.schema.json"),
            "{}: the first line names the schema",
            f.display()
        );
        let doc = as_json(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
    }
}

/// The invalid configs whose mistake shows in the file's structure.
const REFUSED: &[&str] = &[
    "bad-disk-size",
    "become-unknown",
    "bad-image-ref",
    "bad-port",
    "bad-ssh-key",
    "cores-zero",
    "default-from-defaults",
    "gateway-with-dhcp",
    "image-and-clone",
    "invalid-cidr",
    "invalid-mac",
    "invalid-tag",
    "memory-low",
    "missing-name",
    "multicast-mac",
    "no-connection",
    "no-disk-source",
    "non-dns-name",
    "state-unknown",
    "image-url-bad-checksum",
    "image-url-missing-storage",
    "wait-unknown",
    "unknown-top-key",
    "unknown-vm-key",
    "vlan-range",
    "vmid-in-defaults",
    "vmid-range",
    "wrong-type-memory",
    "networks-and-short-keys",
    "networks-bad-vlan",
    "networks-missing-bridge",
    "disks-bad-slot",
    "disks-missing-size",
    "disks-unknown-key",
    "cpu-duplicate-property",
    "cpu-empty-value",
    "cpu-flag-not-vm-specific",
    "cpu-flag-without-sign",
    "cpu-no-model",
    "cpu-phys-bits-range",
    "cpu-reported-model",
    "cpu-unknown-property",
    "description-over-proxmox-limit",
    "nameserver-bad-dns-name",
    "nul-in-unknown-key",
    "ssh-key-bad-base64",
    "ssh-key-certificate",
    "ssh-key-second-of-two",
    "ssh-key-unknown-type",
    "user-data-and-file",
    "user-data-mode-user-with-ssh-keys",
    "user-data-without-header",
    "machine-unknown",
    "hotplug-unknown-feature",
    "pool-nested-too-deep",
    "ha-state-unknown",
    "startup-unknown-key",
];

/// Mistakes only `pvefleet check` sees: across VMs, inside subnets, about
/// configured nodes or files, or in the YAML itself.
const BEYOND_A_SCHEMA: &[&str] = &[
    "duplicate-ip",
    "duplicate-name",
    "duplicate-vmid",
    "duplicate-yaml-key",
    "gateway-outside",
    "node-unknown",
    "unreadable-keys-file",
    "yaml-syntax",
    // Rules of Proxmox's formats, limits of the transport and of the parser.
    "alias-bomb",
    "cpu-custom-without-name",
    "cpu-near-model",
    "cpu-unknown-model",
    "cpu-wrong-case",
    "deep-nesting",
    "image-path-too-long",
    "ip-prefix-0",
    "ip-prefix-7",
    "ip-prefix-in-defaults",
    "ip6-prefix-0-in-defaults",
    "ip6-prefix-7",
    "name-label-too-long",
    "name-too-long",
    "nameserver-bad-ipv4",
    "nameserver-label-too-long",
    "nameserver-zero",
    "nul-in-description",
    "nul-in-host",
    "password-block-scalar",
    "password-control-char",
    "password-empty",
    "password-nul",
    "searchdomain-label-too-long",
    "ssh-key-dsa",
    "ssh-key-rsa-too-short",
    "ssh-key-truncated",
    "ssh-key-type-mismatch",
    "ssh-keys-file-bad-line",
    "ssh-keys-file-dev-zero",
    "tags-too-long",
    "networks-duplicate-ip",
    "disks-size-not-mib",
    "disks-duplicate-slot",
    "disks-ssd-on-virtio",
    "disks-iothread-on-scsi",
    "user-data-octal",
    // Rules between keys, which may come from `defaults:`.
    "secure-boot-without-ovmf",
    "secure-boot-on-i440fx",
    "balloon-over-memory",
    "memory-hotplug-without-numa",
    "ha-state-against-power",
];

#[test]
fn the_schema_refuses_the_structural_mistakes_of_tests_invalid() {
    let v = validator();
    let files = yml_files(&repo().join("tests/invalid"));
    for f in &files {
        let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert!(
            REFUSED.contains(&name) || BEYOND_A_SCHEMA.contains(&name),
            "{name}: say whether the schema should refuse it"
        );
        if !REFUSED.contains(&name) {
            continue;
        }
        let doc = as_json(f).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!v.is_valid(&doc), "{name}: the schema accepts it");
    }
    // The wrong type the issue names, pointed at its key.
    let doc = as_json(&repo().join("tests/invalid/wrong-type-memory.yml")).expect("yaml");
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| e.instance_path().to_string())
        .collect();
    assert!(
        errors.iter().any(|p| p == "/vms/0/memory"),
        "wrong-type-memory: {errors:?}"
    );
}

#[test]
fn a_null_on_a_vm_unsets_a_default_without_conflict() {
    let v = validator();
    let doc: Value = serde_json::json!({
        "proxmox": {"host": "pve1"},
        "defaults": {"clone": 9000, "memory": "2G"},
        "vms": [{"name": "a", "clone": null, "image": "local:iso/x.img", "memory": 2048}],
    });
    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
