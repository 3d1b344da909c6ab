//! `schema`: the JSON Schema (draft-07) of the configuration language, for
//! editors (yaml-language-server) and other tools.
//!
//! The keys come from `pvefleet_config::keys`, so a key added there without
//! a schema here fails the tests; types, ranges and shapes follow
//! docs/config.md and the validators. The schema catches what one file's
//! structure shows (types, ranges, formats, unknown keys, `image` with
//! `clone`); `pvefleet check` remains the judge of what needs the whole file
//! (duplicates, gateways inside subnets, configured nodes, key files).
//! The checked-in copy is docs/config.schema.json.

use crate::ExitStatus;
use pvefleet_config::keys;
use serde_json::{json, Map, Value};

/// Prints the schema, as docs/config.schema.json holds it.
pub fn run() -> ExitStatus {
    let text = serde_json::to_string_pretty(&config_schema()).unwrap_or_default();
    println!("{text}");
    ExitStatus::Ok
}

const DNS_NAME: &str =
    "^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$";
const NODE_NAME: &str = "^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$";
const UNIX_USER: &str = "^[a-z_][a-z0-9_-]{0,31}$";
pub(super) const STORAGE_ID: &str = "^[a-z][a-z0-9._-]*[a-z0-9]$";
pub(super) const SIZE: &str = "^\\s*([0-9]+(\\.[0-9]*)?|\\.[0-9]+)[KMGTkmgt]$";
const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const TAG: &str = "^[A-Za-z0-9_][A-Za-z0-9_+.-]*$";
const SSH_KEY: &str = "^\\s*(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\\.com|sk-ecdsa-sha2-nistp256@openssh\\.com)[ \\t]+[A-Za-z0-9+/=]{16,}([ \\t][^\\n]*)?$";
const VMID_MAX: u64 = 999_999_999;

pub(super) fn ipv4() -> String {
    format!("({OCTET}\\.){{3}}{OCTET}")
}

/// A boolean as the language reads one (also 0/1, yes/no, on/off).
pub(super) fn boolean(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            {"type": "boolean"},
            {"enum": [0, 1]},
            {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])$"},
        ],
    })
}

/// A string matching `pattern`.
pub(super) fn pattern(description: &str, pattern: &str) -> Value {
    json!({"type": "string", "pattern": pattern, "description": description})
}

/// An integer in `min..=max`.
pub(super) fn int(description: &str, min: u64, max: u64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max, "description": description})
}

/// One string, or a list of strings each matching `item`.
fn list(description: &str, item: Value) -> Value {
    json!({
        "description": description,
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": item},
            {"type": "null"},
        ],
    })
}

/// The schema of VM key `key`; `None` for a key this table lacks.
fn vm_key(key: &str) -> Option<Value> {
    let ip4 = ipv4();
    let v = match key {
        "vmid" => int(
            "Proxmox VM id; without it one is allocated and the VM is found again by name",
            100,
            VMID_MAX,
        ),
        "name" => pattern("DNS name of the VM, also its hostname", DNS_NAME),
        "node" => pattern(
            "node name (in a cluster: one of `nodes`), or `auto`: the node with the most free memory",
            NODE_NAME,
        ),
        "memory" => json!({
            "description": "memory in MiB, or a size such as 4G (16 MiB to 4 TiB); default 1024",
            "anyOf": [
                {"type": "integer", "minimum": 16, "maximum": 4_194_304},
                {"type": "string", "pattern": SIZE},
            ],
        }),
        "cores" => int("cores per socket; default 1", 1, 4096),
        "sockets" => int("CPU sockets; default 1", 1, 4096),
        "cpu" => pattern(
            "CPU type, e.g. host or x86-64-v2-AES",
            "^[A-Za-z0-9._+-]+$",
        ),
        "bridge" => pattern(
            "bridge of net0; default vmbr0",
            "^[A-Za-z][A-Za-z0-9_.-]{0,14}$",
        ),
        "vlan" => int("VLAN tag of net0", 1, 4094),
        "mac" => pattern(
            "unicast MAC address of net0; default: Proxmox picks one",
            "^[0-9A-Fa-f][02468ACEace](:[0-9A-Fa-f]{2}){5}$",
        ),
        "ip" => pattern(
            "IPv4 address with prefix length (10.0.0.50/24), or dhcp",
            &format!("^(dhcp|{ip4}/([0-9]|[12][0-9]|3[0-2]))$"),
        ),
        "gateway" => pattern(
            "IPv4 gateway, inside the VM's subnet; not with ip: dhcp",
            &format!("^{ip4}$"),
        ),
        "ip6" => pattern(
            "IPv6 address with prefix length, dhcp or auto",
            "^(dhcp|auto|[0-9A-Fa-f:.]+/[0-9]{1,3})$",
        ),
        "gateway6" => pattern("IPv6 gateway", "^[0-9A-Fa-f:.]+$"),
        "nameserver" => list(
            "DNS server addresses",
            json!({"type": "string", "pattern": "^[0-9A-Fa-f:.]+$"}),
        ),
        "searchdomain" => pattern("DNS search domain", DNS_NAME),
        "user" => pattern("cloud-init user", UNIX_USER),
        "ssh_keys" => list(
            "OpenSSH public keys for the cloud-init user",
            json!({"type": "string", "pattern": SSH_KEY}),
        ),
        "ssh_keys_file" => json!({
            "type": "string",
            "description": "file of public keys, relative to the configuration file (or ~/)",
        }),
        "password" => json!({
            "type": "string",
            "description": "cloud-init password (discouraged; never printed)",
        }),
        "image" | "template" => json!({
            "description": "cloud image: a volume id (local:iso/x.img, local:import/x.qcow2), an absolute path on the host, or {url, checksum, storage, filename} to have Proxmox download it; `template` is another name for `image`",
            "anyOf": [
                {"type": "string", "pattern": "^(/[^,]*|[a-z][a-z0-9._-]*[a-z0-9]:[^,/][^,]*)$"},
                {
                    "type": "object",
                    "description": "an image Proxmox downloads once per node (once for a shared storage) and checks against its SHA-256",
                    "additionalProperties": false,
                    "required": ["url", "checksum", "storage"],
                    "properties": {
                        "url": {"type": "string", "pattern": "^https?://[^/?#\\s]+", "description": "http:// or https:// address of the image"},
                        "checksum": {"type": "string", "pattern": "^sha256:[0-9a-fA-F]{64}$", "description": "sha256:<64 hex digits>"},
                        "storage": {"type": "string", "pattern": STORAGE_ID, "description": "file storage it is downloaded to (content iso, or import for .qcow2/.raw/.vmdk on PVE 8.4+)"},
                        "filename": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]*\\.([Ii][Mm][Gg]|[Ii][Ss][Oo]|qcow2|raw|vmdk)$", "maxLength": 255, "description": "file name on the storage; default the URL's last segment"},
                    },
                },
            ],
        }),
        "clone" => json!({
            "description": "id or name of a Proxmox template VM to clone instead of importing an image",
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": VMID_MAX},
                {"type": "string", "pattern": DNS_NAME},
            ],
        }),
        "storage" => pattern("storage for the disks; default local-lvm", STORAGE_ID),
        "disk" => json!({
            "description": "system disk size such as 20G (a bare number is GiB); disks only grow",
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 1_048_576},
                {"type": "string", "pattern": SIZE},
            ],
        }),
        "disk_from" => json!({
            "description": "import (copy the image into each VM), or linked-clone / full-clone of an image-cache template",
            "enum": ["import", "linked-clone", "full-clone"],
        }),
        _ => return vm_key_more(key),
    };
    Some(v)
}

/// The schema of the VM keys of tags, description and power, custom
/// cloud-init, `wait`, more disks and NICs, then firmware and lifecycle ([`super::schema_lifecycle`]).
fn vm_key_more(key: &str) -> Option<Value> {
    let v = match key {
        "tags" => list(
            "Proxmox tags; pvefleet is always added",
            json!({"type": "string", "pattern": TAG}),
        ),
        "description" => json!({
            "type": "string",
            "maxLength": 8000,
            "description": "free text; pvefleet appends its marker line",
        }),
        "onboot" => boolean("start with the host; default false"),
        "state" => json!({
            "description": "power state; default running",
            "enum": ["running", "stopped"],
        }),
        "user_data" => json!({
            "description": "custom cloud-init data written as a snippet: a mapping (a #cloud-config file) or the file's text, starting with a cloud-init header such as #cloud-config or #!",
            "anyOf": [
                {"type": "object"},
                {"type": "string", "pattern": "^(#cloud-config|#!|#include|#cloud-boothook|#part-handler|## template: jinja|Content-Type: multipart/)"},
            ],
        }),
        "user_data_file" => json!({
            "type": "string",
            "description": "file of cloud-init data (at most 1 MiB), relative to the configuration file (or ~/); not with user_data",
        }),
        "user_data_mode" => json!({
            "description": "vendor (default: merged with the user-data Proxmox generates) or user (replaces it; then user, ssh_keys and password are refused)",
            "enum": ["vendor", "user"],
        }),
        "snippets_storage" => pattern(
            "storage the user_data snippet is written to; needs the snippets content type; default local",
            STORAGE_ID,
        ),
        "wait" => json!({
            "description": "what apply waits for once the VM runs: ip (the guest agent reports the address; default), cloud-init (and cloud-init finished), none",
            "enum": ["ip", "cloud-init", "none"],
        }),
        "disks" => super::schema_hardware::disks(),
        "networks" => super::schema_hardware::networks(),
        _ => return super::schema_lifecycle::vm_key(key),
    };
    Some(v)
}

/// `value` or null: a null on a VM unsets what `defaults` set.
pub(super) fn nullable(mut v: Value) -> Value {
    let description = v
        .as_object_mut()
        .and_then(|o| o.remove("description"))
        .unwrap_or(Value::Null);
    json!({"description": description, "anyOf": [v, {"type": "null"}]})
}

/// The properties of a VM (or of `defaults`, without `skip`).
fn vm_properties(skip: &[&str]) -> Map<String, Value> {
    keys::VM
        .iter()
        .filter(|k| !skip.contains(k))
        .map(|k| {
            let schema = vm_key(k).unwrap_or_else(|| json!({}));
            // `name` is required: a null is no name.
            let schema = if *k == "name" {
                schema
            } else {
                nullable(schema)
            };
            (k.to_string(), schema)
        })
        .collect()
}

/// Keys set to something other than null.
pub(super) fn both_set(a: &str, b: &str) -> Value {
    json!({"not": {
        "required": [a, b],
        "properties": {a: {"not": {"type": "null"}}, b: {"not": {"type": "null"}}},
    }})
}

/// The connection keys of `proxmox:` (with `node`) or of a cluster node.
fn connection(node: bool) -> Value {
    let mut props = Map::new();
    let known: &[&str] = if node { keys::PROXMOX } else { keys::NODE };
    for k in known {
        let v = match *k {
            "host" => pattern(
                "SSH destination (host, address or ~/.ssh/config alias), or local on the node itself",
                "^[^\\s-]\\S*$",
            ),
            "user" => pattern(
                "SSH user; default: what ssh picks. qm must run as root: for another user, set become: sudo",
                UNIX_USER,
            ),
            "port" => int("SSH port", 1, 65535),
            "become" => json!({
                "enum": ["sudo", "none"],
                "description": "sudo: run every Proxmox command through sudo -n (needs the sudoers rule of docs/real-host.md); default none",
            }),
            "node" => pattern("Proxmox node name; default: what the host reports", NODE_NAME),
            _ => json!({}),
        };
        props.insert(k.to_string(), v);
    }
    let description = if node {
        "one Proxmox host"
    } else {
        "how to reach one node of the cluster"
    };
    json!({
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "required": ["host"],
        "properties": props,
    })
}

/// The JSON Schema of a configuration file.
pub fn config_schema() -> Value {
    let source = json!({"anyOf": [
        {"required": ["image"]}, {"required": ["template"]}, {"required": ["clone"]}
    ]});
    let mut conflicts = json!([
        both_set("image", "clone"),
        both_set("template", "clone"),
        both_set("image", "template"),
        both_set("user_data", "user_data_file"),
        {
            "if": {"required": ["user_data_mode"], "properties": {"user_data_mode": {"const": "user"}}},
            "then": {"not": {"anyOf": [
                {"required": ["user"], "properties": {"user": {"type": "string"}}},
                {"required": ["ssh_keys"], "properties": {"ssh_keys": {"type": ["string", "array"]}}},
                {"required": ["ssh_keys_file"], "properties": {"ssh_keys_file": {"type": "string"}}},
                {"required": ["password"], "properties": {"password": {"type": "string"}}},
            ]}},
        },
        {
            "if": {"required": ["ip"], "properties": {"ip": {"const": "dhcp"}}},
            "then": {"not": {"required": ["gateway"], "properties": {"gateway": {"type": "string"}}}},
        },
    ]);
    if let Some(list) = conflicts.as_array_mut() {
        list.extend(super::schema_hardware::network_conflicts());
    }
    let mut top = Map::new();
    for k in keys::TOP {
        let v = match *k {
            "proxmox" => json!({"$ref": "#/definitions/proxmox"}),
            "nodes" => json!({
                "description": "a cluster: one entry per node, by its Proxmox node name",
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": NODE_NAME},
                "additionalProperties": {"$ref": "#/definitions/node"},
            }),
            "defaults" => json!({"$ref": "#/definitions/defaults"}),
            "vms" => json!({
                "description": "the VMs, one entry each",
                "type": ["array", "null"],
                "items": {"$ref": "#/definitions/vm"},
            }),
            _ => json!({}),
        };
        top.insert(k.to_string(), v);
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://example.invalid/pvefleet/config.schema.json",
        "title": "pvefleet configuration",
        "description": "A fleet of Proxmox VE VMs (docs/config.md). `pvefleet check` validates what a schema cannot: duplicates, gateways inside subnets, configured nodes, key files.",
        "type": "object",
        "additionalProperties": false,
        "required": ["vms"],
        "oneOf": [{"required": ["proxmox"]}, {"required": ["nodes"]}],
        "properties": top,
        "if": {
            "required": ["defaults"],
            "properties": {"defaults": {"type": "object", "anyOf": [
                {"required": ["image"]}, {"required": ["template"]}, {"required": ["clone"]}
            ]}},
        },
        "else": {"properties": {"vms": {"items": source}}},
        "definitions": {
            "proxmox": connection(true),
            "node": connection(false),
            "defaults": {
                "description": "VM keys every VM inherits (not vmid, name or mac); a VM's own value wins",
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": vm_properties(keys::VM_ONLY),
                "allOf": conflicts.clone(),
            },
            "vm": {
                "description": "one VM; exactly one of image/template/clone, here or in defaults",
                "type": "object",
                "additionalProperties": false,
                "required": ["name"],
                "properties": vm_properties(&[]),
                "allOf": conflicts,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_language_has_a_schema() {
        for k in keys::VM {
            assert!(vm_key(k).is_some(), "VM key {k} has no schema");
        }
        let s = config_schema();
        let vm = &s["definitions"]["vm"]["properties"];
        assert_eq!(vm.as_object().map(|o| o.len()), Some(keys::VM.len()));
        for k in keys::PROXMOX {
            assert!(s["definitions"]["proxmox"]["properties"][k].is_object());
        }
        for k in keys::TOP {
            assert!(s["properties"][k].is_object());
        }
    }
}
