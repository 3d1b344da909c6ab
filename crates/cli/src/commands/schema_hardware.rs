//! The JSON Schema of `disks:` and `networks:` (docs/config.md), part of
//! [`super::schema::config_schema`].

use super::schema::{boolean, int, ipv4, pattern, SIZE, STORAGE_ID};
use serde_json::{json, Value};

/// `disks:`: data disks beside the system disk.
pub(super) fn disks() -> Value {
    json!({
        "description": "data disks beside the system disk (scsi0), created with the VM; sizes only grow, and removing one destroys it (needs --allow-data-loss)",
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["size"],
            "properties": {
                "size": {
                    "description": "size such as 10G or 512M (a bare number is GiB), a whole number of MiB",
                    "anyOf": [
                        {"type": "integer", "minimum": 1, "maximum": 1_048_576},
                        {"type": "string", "pattern": SIZE},
                    ],
                },
                "storage": pattern("storage of the disk; default: the VM's storage", STORAGE_ID),
                "slot": pattern(
                    "drive slot: scsi1-scsi30, virtio0-virtio15 or sata0-sata5; default: the next free scsiN from scsi1",
                    "^(scsi([1-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|sata[0-5])$",
                ),
                "discard": boolean("discard=on: trim requests reach the storage"),
                "ssd": boolean("present the disk as an SSD"),
                "iothread": boolean("a dedicated I/O thread"),
                "cache": {
                    "description": "cache mode",
                    "enum": ["none", "writethrough", "writeback", "unsafe", "directsync"],
                },
                "backup": boolean("include in backups (Proxmox's default: yes)"),
            },
        },
    })
}

/// `networks:`: the NICs, entry N being netN and ipconfigN.
pub(super) fn networks() -> Value {
    let ip4 = ipv4();
    json!({
        "description": "the NICs: entry N is netN with ipconfigN; not together with bridge/vlan/mac/ip/gateway/ip6/gateway6 (the short form of networks[0])",
        "type": ["array", "null"],
        "maxItems": 32,
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["bridge"],
            "properties": {
                "bridge": pattern("bridge; must exist on the node", "^[A-Za-z][A-Za-z0-9_.-]{0,14}$"),
                "vlan": int("VLAN tag", 1, 4094),
                "mac": pattern(
                    "unicast MAC address; default: Proxmox picks one",
                    "^[0-9A-Fa-f][02468ACEace](:[0-9A-Fa-f]{2}){5}$",
                ),
                "model": {
                    "description": "NIC model; default virtio",
                    "enum": ["e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3"],
                },
                "firewall": boolean("Proxmox firewall on this NIC"),
                "mtu": int("MTU (1: the bridge's)", 1, 65520),
                "ip": pattern(
                    "IPv4 address with prefix length, or dhcp",
                    &format!("^(dhcp|{ip4}/([0-9]|[12][0-9]|3[0-2]))$"),
                ),
                "gateway": pattern("IPv4 gateway, inside the NIC's subnet", &format!("^{ip4}$")),
                "ip6": pattern(
                    "IPv6 address with prefix length, dhcp or auto",
                    "^(dhcp|auto|[0-9A-Fa-f:.]+/[0-9]{1,3})$",
                ),
                "gateway6": pattern("IPv6 gateway", "^[0-9A-Fa-f:.]+$"),
            },
        },
    })
}

/// `networks` and a short network key on the same level are refused.
pub(super) fn network_conflicts() -> Vec<Value> {
    ["bridge", "vlan", "mac", "ip", "gateway", "ip6", "gateway6"]
        .iter()
        .map(|k| super::schema::both_set("networks", k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::schema::nullable;

    #[test]
    fn nullable_lists() {
        let d = nullable(disks());
        assert_eq!(d["anyOf"][0]["items"]["required"], json!(["size"]));
        let n = networks();
        assert_eq!(n["items"]["required"], json!(["bridge"]));
        assert_eq!(network_conflicts().len(), 7);
    }
}
