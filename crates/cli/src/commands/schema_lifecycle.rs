//! The JSON Schema of the firmware, placement and lifecycle VM keys
//! (`bios` … `hotplug`), as `pvefleet_config`'s `validate/lifecycle.rs`
//! checks them. Rules between keys (`secure_boot` needs `bios: ovmf`,
//! `balloon` at most `memory`) stay with `pvefleet check`, since a key may
//! come from `defaults:`.

use super::schema::boolean;
use serde_json::{json, Value};

/// A non-negative integer.
fn count(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u32::MAX, "description": description})
}

/// A mapping of exactly `properties`.
fn object(description: &str, properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "properties": properties,
    })
}

/// The schema of a firmware or lifecycle VM key; `None` for another key.
pub(super) fn vm_key(key: &str) -> Option<Value> {
    let v = match key {
        "bios" => json!({
            "description": "firmware: seabios (default) or ovmf (UEFI, with an EFI vars disk on the VM's storage)",
            "enum": ["seabios", "ovmf"],
        }),
        "secure_boot" => {
            boolean("enrol the Secure Boot keys in the EFI vars (needs bios: ovmf); default false")
        }
        "machine" => json!({
            "type": "string",
            "maxLength": 40,
            "description": "QEMU machine type: q35, i440fx (pc), or a pinned version such as pc-q35-8.1; default q35 with ovmf, else Proxmox's",
            "pattern": "^(i440fx|pc|q35|pc(-i440fx)?-[0-9]+(\\.[0-9]+)+(\\+pve[0-9]+)?(\\.pxe)?|pc-q35-[0-9]+(\\.[0-9]+)+(\\+pve[0-9]+)?(\\.pxe)?)$",
        }),
        "tpm" => boolean("a TPM 2.0 state volume on the VM's storage; default false"),
        "pool" => json!({
            "type": "string",
            "description": "Proxmox resource pool (must exist: pveum pool add NAME)",
            "pattern": "^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$",
        }),
        "startup" => object(
            "start/shutdown order and delays (qm --startup)",
            json!({
                "order": count("start order; shutdown runs in reverse"),
                "up": count("seconds to wait after this VM started"),
                "down": count("seconds to wait for this VM to shut down"),
            }),
        ),
        "protection" => {
            boolean("Proxmox refuses to destroy the VM or remove its disks; default false")
        }
        "ha" => object(
            "an HA resource vm:VMID (ha-manager); removing the key removes it",
            json!({
                "state": {"enum": ["started", "stopped", "ignored", "disabled"], "description": "requested state; default started"},
                "group": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]+$", "description": "HA group"},
            }),
        ),
        "agent" => object(
            "QEMU guest agent options",
            json!({
                "enabled": boolean("default true"),
                "fstrim_cloned_disks": boolean("run fstrim after a disk move or migration"),
                "type": {"enum": ["virtio", "isa"]},
            }),
        ),
        "balloon" => json!({
            "type": "integer",
            "minimum": 0,
            "maximum": 4_194_304,
            "description": "balloon target in MiB, at most memory; 0 disables ballooning",
        }),
        "numa" => boolean("NUMA emulation"),
        "hotplug" => json!({
            "description": "hot-plug features, or false for none",
            "anyOf": [
                {"const": false},
                {"type": "array", "minItems": 1, "items": {"enum": ["network", "disk", "cpu", "memory", "usb", "cloudinit"]}},
                {"type": "string"},
            ],
        }),
        _ => return None,
    };
    Some(v)
}
