//! Every property string in the `qemu-config` fixtures parses with its codec
//! and prints back byte for byte.

use std::path::Path;

use pvefleet_model::{Boot, Drive, IpConfig, Net};

/// The key without its index: `scsi0` → `scsi`, `net12` → `net`.
fn family(key: &str) -> &str {
    key.trim_end_matches(|c: char| c.is_ascii_digit())
}

#[test]
fn qemu_config_fixtures_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pvesh");
    let mut checked = 0;
    let entries = std::fs::read_dir(&dir).expect("fixtures/pvesh exists");
    for entry in entries {
        let path = entry.expect("readable entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("qemu-config--") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let Some(config) = json.as_object() else {
            continue;
        };
        for (key, value) in config {
            let Some(value) = value.as_str() else {
                continue;
            };
            let printed = match family(key) {
                "net" => Net::parse(value).map(|v| v.to_string()),
                "scsi" | "virtio" | "sata" | "ide" => Drive::parse(value).map(|v| v.to_string()),
                "ipconfig" => IpConfig::parse(value).map(|v| v.to_string()),
                "boot" => Boot::parse(value).map(|v| v.to_string()),
                _ => continue,
            };
            assert_eq!(printed.as_deref(), Ok(value), "{name}: {key}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} values checked");
}
