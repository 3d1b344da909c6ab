//! The lines of the sweep: every option of `qm create` and `qm set` from
//! `qm-schema.json`, given values that should pass and values mutated to
//! fail (wrong type, out of range, bad enum, malformed property strings,
//! unknown, duplicate and empty keys, CIDR prefixes, CPU models and flags,
//! boot orders, MACs, DNS names, sizes...). The generator does not decide
//! what a host says; the rule table does.

use crate::rules::{format, schema};
use serde_json::Value;
use std::collections::BTreeSet;

/// The VM `qm create` lines make (it does not exist) and the one `qm set`
/// lines change.
pub const NEW: &str = "150";
/// See [`NEW`].
pub const BASE: &str = "100";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Values for a named validator format.
fn validator_values(name: &str) -> Vec<String> {
    s(match name {
        "ipv4" => &[
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "010.0.0.1",
            "10.0.0",
            "10.0.0.1.2",
            "a.b.c.d",
            "",
            "1.2.3.04",
        ],
        "ipv6" => &[
            "::",
            "::1",
            "2001:db8::1",
            "fe80::1:2:3:4:5",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "::ffff:10.0.0.1",
            "2001:db8::g",
            "1::2:3:4:5:6:7",
            "1:2:3:4:5:6:7::",
            ":1:2",
            "2001:db8:::1",
            "fe80::1%eth0",
            "",
            "12345::1",
            "1:2:3:4:5:6:10.0.0.1",
        ],
        "pve-ipv4-config" => &[
            "dhcp",
            "manual",
            "10.0.0.5/24",
            "10.0.0.5/8",
            "10.0.0.5/7",
            "10.0.0.5/0",
            "10.0.0.5/32",
            "10.0.0.5/33",
            "10.0.0.5",
            "10.0.0.5/",
            "10.0.0.5/08",
            "010.0.0.5/24",
            "DHCP",
            "auto",
            "10.0.0.5/24/1",
            "2001:db8::5/64",
        ],
        "pve-ipv6-config" => &[
            "auto",
            "dhcp",
            "manual",
            "2001:db8::5/64",
            "2001:db8::5/8",
            "2001:db8::5/7",
            "2001:db8::5/128",
            "2001:db8::5/129",
            "2001:db8::5",
            "fe80::1/64",
            "10.0.0.5/24",
            "AUTO",
            "::/0",
            "::1/128",
        ],
        "dns-name" => &[
            "web",
            "web-01",
            "web-01.example.com",
            "a",
            "1",
            "a.b.c",
            "-web",
            "web-",
            "web_01",
            "a..b",
            ".a",
            "a.",
            "",
            " web",
            "we b",
            "xn--bcher-kva.example",
            "UPPER.Case",
            "0",
            "a-b-c.d-e",
        ],
        "address" => &[
            "10.0.0.1",
            "dns.example.com",
            "2001:db8::1",
            "0",
            "00",
            "0.0.0.0",
            "dns_1.example.com",
            "10.0.0.300",
            "-bad",
            "",
            "10.0.0.1/24",
        ],
        "mac-addr" => &[
            "BC:24:11:00:00:01",
            "bc:24:11:00:00:01",
            "02:00:00:00:00:01",
            "01:00:5E:00:00:01",
            "03:00:00:00:00:01",
            "BC:24:11:00:00",
            "BC-24-11-00-00-01",
            "BC:24:11:00:00:0G",
            "BC:24:11:00:00:01:02",
            "",
            "bc2411000001",
            "FE:FF:FF:FF:FF:FF",
        ],
        "pve-tag" => &[
            "web", "Web", "db+1", "a.b", "_x", "x-y", "-bad", "a!b", "", ".x", "+x", "9",
        ],
        "pve-vmid" => &["100", "999999999", "99", "1000000000", "0100", "abc"],
        "pve-node" => &["pve", "pve-1", "-pve", "pve_1", ""],
        "pve-storage-id" => &[
            "local-lvm",
            "local",
            "ab",
            "a",
            "9lvm",
            "lvm-",
            "Local_LVM.1",
            "a b",
            "",
            "nostore",
        ],
        "pve-bridge-id" => &[
            "vmbr0", "vmbr_1", "br.10", "vmbr/0", "vmbr 0", "", "vmbr9", "-x",
        ],
        "pve-configid" => &[
            "cores",
            "net0",
            "memory",
            "nosuchkey",
            "a!b",
            "9x",
            "a",
            "cdrom",
            "Cores",
            "boot",
        ],
        "urlencoded" => &["abc", "a%20b", "a b", "a+b", "a=b", "", "x~y*(z)'!"],
        "disk-size" => &[
            "1G", "1.5G", "10", "1K", "1KiB", "1GB", "1g", "-1G", "1.G", "", "1TiB", "0", "4M",
        ],
        "pve-startup-order" => &[
            "order=1",
            "2",
            "up=30",
            "down=60",
            "order=1,up=30,down=60",
            "0",
            "",
            "order=x",
            "up=",
            "order=1,,up=2",
            ",",
            "order=-1",
            "1,2",
            "up=1,fast=2",
        ],
        "pve-poolid" => &["pool1", "a/b/c", "a/b/c/d", "a b", ""],
        "pve-volume-id" => &[
            "local:snippets/hook.sh",
            "l:snippets/x.sh",
            "local",
            "local:",
            ":x",
            "nostore:snippets/x.sh",
            "local-lvm:vm-100-disk-0",
        ],
        "pve-volume-id-or-qm-path" => &[
            "local-lvm:1",
            "local-lvm:0.5",
            "local:1",
            "vmdir:2",
            "nostore:1",
            "32",
            "none",
            "cdrom",
            "local-lvm:cloudinit",
            "local:iso/jammy.img",
            "local-lvm:vm-100-disk-0",
            "local-lvm:vm-150-disk-9",
            "/dev/disk/by-id/pvefleet-missing",
            "",
            "local-lvm:",
        ],
        "pve-volume-id-or-absolute-path" => &[
            "/var/lib/vz/template/iso/jammy.img",
            "local:import/noble.qcow2",
            "local:iso/jammy.img",
            "relative.img",
            "/var/lib/vz/template/iso/missing.img",
            "",
        ],
        "pve-qm-bootdev" => &[
            "scsi0",
            "ide2",
            "net0",
            "net31",
            "net32",
            "usb13",
            "hostpci15",
            "efidisk0",
            "tpmstate0",
            "floppy",
            "",
        ],
        "pve-qm-bootdisk" => &[
            "scsi0", "virtio15", "sata5", "ide3", "efidisk0", "scsi31", "net0", "", "unused0",
        ],
        "pve-cpuset" => &[
            "0", "0,2-3,5", "3-1", "1,,2", "1,2,", " 1 - 2", "1 -2", "a", "", "0-3, 5", ",1",
        ],
        "pve-hotplug-features" => &[
            "0",
            "1",
            "network,disk,usb",
            "network,floppy",
            "cpu;memory",
            "cloudinit",
            "",
            "disk usb",
            "2",
            "Network",
        ],
        "pve-phys-bits" => &[
            "host", "8", "64", "7", "65", "46", "Host", "0x20", "100", "",
        ],
        other => panic!("no values for validator {other}"),
    })
}

/// Values for a list format: single items, joined ones, empty ones.
fn list_values(item: &str) -> Vec<String> {
    let items = validator_values(item);
    let good: Vec<&String> = items.iter().take(3).collect();
    let mut v = items.clone();
    v.push(format!("{},{}", good[0], good[1]));
    v.push(format!("{};{} {}", good[0], good[1], good[2]));
    v.push(format!("{},,{}", good[0], good[1]));
    v.push(format!("{};", good[0]));
    v.push(format!("{},{}", good[0], items[items.len() - 1]));
    v
}

/// Example values for a pattern, by the key it belongs to.
fn pattern_values(key: &str) -> Vec<String> {
    s(match key {
        "bootdisk" => &[
            "scsi0", "virtio3", "ide0", "sata1", "efidisk0", "scsi", "net0",
        ],
        k if k.starts_with("parallel") => &[
            "/dev/parport0",
            "/dev/usb/lp1",
            "/dev/parport",
            "/dev/ttyS0",
            "/dev/parport0junk",
            "junk/dev/usb/lp0",
        ],
        k if k.starts_with("serial") => &[
            "socket",
            "/dev/ttyS0",
            "tty",
            "/dev/",
            "socket2",
            "/dev/a,b",
        ],
        "startdate" => &[
            "now",
            "2024-01-31",
            "2024-1-1T1:2:3",
            "2024-01-31T12:00",
            "yesterday",
            "24-01-01",
        ],
        "vmgenid" => &[
            "1",
            "0",
            "2b8a5c1e-4f0e-4c4e-9d0b-1f4a9f6c2e11",
            "2b8a5c1e-4f0e-4c4e-9d0b",
            "2",
            "xyz",
        ],
        "type" => &[
            "q35",
            "pc",
            "pc-q35-8.1",
            "pc-i440fx-9.0+pve1",
            "virt",
            "pc-9",
            "q36",
            "pc-q35-8.1.pxe",
            "virt-9.0",
        ],
        "legacy" => &["c", "cdn", "acdn", "x", "cdnaa", ""],
        "device-id" | "vendor-id" | "sub-device-id" | "sub-vendor-id" => {
            &["0x1234", "0xABCD", "1234", "0x12345", "0xzzzz"]
        }
        "host" => &[
            "0000:01:00.0",
            "01:00.0",
            "01:00",
            "01:00.0;02:00.0",
            "1:00.0",
            "spice",
            "046d:c52b",
            "1-2.3",
            "0x046d:0xc52b",
            "SPICE",
        ],
        "mdev" => &["nvidia-63", "a/b", "a.b", "a:b"],
        "romfile" => &["vbios.bin", "a;b", "a,b"],
        "wwn" => &[
            "0x5000c500a1b2c3d4",
            "5000c500a1b2c3d4",
            "0x5000c500a1b2c3",
            "0x5000c500a1b2c3d4ff",
        ],
        "cpus" | "hostnodes" => &["0", "0-3", "0-1;4-5", "0;", "a", "0-"],
        "family" | "manufacturer" | "product" | "serial" | "sku" | "version" => {
            &["QUJD", "QUJDRA==", "QUJDRA===", "a b", "x/y+z="]
        }
        "uuid" => &[
            "2b8a5c1e-4f0e-4c4e-9d0b-1f4a9f6c2e11",
            "2b8a5c1e",
            "not-a-uuid",
        ],
        "flags" => &[
            "+aes",
            "-aes",
            "+aes;-pcid",
            "aes",
            "+aes;",
            "+avx2",
            "+md-clear;+nested-virt",
            "",
            "+Aes",
        ],
        "hv-vendor-id" => &["proxmox", "ab1", "thirteenchars", "a-b"],
        "name" => &["shm", "a-b", "a_b", ""],
        "trunks" => &["10", "10;20", "10-20;30", "10,20", "a", "10;"],
        "vendor" => &["ATA", "LONGVENDOR", "ACME CO", "a!b"],
        other => panic!("no values for the pattern of {other}"),
    })
}

/// Values for one property definition (a parameter or a property-string key).
pub fn values(key: &str, def: &Value) -> Vec<String> {
    let mut v: Vec<String> = match def["type"].as_str().unwrap_or("string") {
        "boolean" => s(&["1", "0", "yes", "No", "TRUE", "off", "maybe", "2", ""]),
        "integer" => {
            let mut v = s(&[
                "0",
                "1",
                "-1",
                "+5",
                "007",
                "1.5",
                "abc",
                "",
                "1e3",
                "99999999999999999999",
            ]);
            if let Some(m) = def["minimum"].as_f64() {
                v.push(format!("{}", m as i64));
                v.push(format!("{}", m as i64 - 1));
            }
            if let Some(m) = def["maximum"].as_f64() {
                v.push(format!("{}", m as i64));
                v.push(format!("{}", m as i64 + 1));
            }
            v
        }
        "number" => {
            let mut v = s(&[
                "0", "0.5", ".5", "5.", "1e2", "-0.5", "inf", "nan", "NaN", "1.2.3", "abc", "",
                "+1.5",
            ]);
            if let Some(m) = def["minimum"].as_f64() {
                v.push(format!("{m}"));
                v.push(format!("{}", m - 0.25));
            }
            if let Some(m) = def["maximum"].as_f64() {
                v.push(format!("{m}"));
                v.push(format!("{}", m + 0.25));
            }
            v
        }
        _ => {
            if let Some(e) = def["enum"].as_array() {
                let mut v: Vec<String> = e
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
                v.push(v[0].to_ascii_uppercase());
                v.push("bogus".into());
                v.push(String::new());
                v
            } else if def.get("pattern").is_some() {
                pattern_values(key)
            } else if let Some(f) = def["format"].as_str() {
                match format(f).and_then(|d| d["kind"].as_str()) {
                    Some("validator") => validator_values(f),
                    Some("list") => list_values(
                        format(f)
                            .and_then(|d| d["item_format"].as_str())
                            .unwrap_or(""),
                    ),
                    Some("property-string") => property_values(f),
                    _ => panic!("format {f}"),
                }
            } else {
                let mut v = s(&["text", "", "with space", "a,b", "x=y"]);
                if let Some(m) = def["maxLength"].as_u64() {
                    v.push("x".repeat(m as usize));
                    v.push("x".repeat(m as usize + 1));
                }
                v
            }
        }
    };
    let mut seen = BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// A valid-looking starting value of a property-string format, as
/// `(key, value)` items; the first item with no key is the default key.
fn base(fmt: &str) -> Vec<(&'static str, &'static str)> {
    match fmt {
        "qm-net" => vec![("", "virtio"), ("bridge", "vmbr0")],
        "qm-ide" | "qm-sata" | "qm-scsi" | "qm-virtio" | "qm-efidisk" | "qm-tpmstate" => {
            vec![("", "local-lvm:1")]
        }
        "qm-unused" => vec![("", "local-lvm:vm-100-disk-0")],
        "pve-qm-ide" => vec![("", "none")],
        "pve-qm-ipconfig" => vec![("ip", "10.0.0.5/24")],
        "pve-vm-cpu-conf" => vec![("", "host")],
        "qm-memory" => vec![("", "1024")],
        "qm-agent" => vec![("", "1")],
        "qm-vga" => vec![("", "std")],
        "pve-qm-boot" => vec![("order", "scsi0")],
        "pve-qm-hostpci" => vec![("", "0000:01:00.0")],
        "pve-qm-usb" => vec![("", "spice")],
        "pve-qm-numanode" => vec![("cpus", "0")],
        "pve-qm-rng" => vec![("", "/dev/urandom")],
        "pve-qm-smbios1" => vec![("uuid", "2b8a5c1e-4f0e-4c4e-9d0b-1f4a9f6c2e11")],
        "pve-qm-cicustom" => vec![("user", "local:snippets/user.yml")],
        "pve-qm-watchdog" => vec![("", "i6300esb")],
        "pve-qm-virtiofs" => vec![("", "share1")],
        "pve-qemu-machine-fmt" => vec![("", "q35")],
        "pve-qemu-sev-fmt" => vec![("", "std")],
        "pve-qemu-tdx-fmt" => vec![("", "tdx"), ("attestation", "1")],
        "qm-audio" => vec![("device", "ich9-intel-hda")],
        "qm-ivshmem" => vec![("size", "32")],
        "qm-spice_enhancements" => vec![("foldersharing", "1")],
        other => panic!("no base value for {other}"),
    }
}

fn render(items: &[(String, String)]) -> String {
    items
        .iter()
        .map(|(k, v)| {
            if k.is_empty() {
                v.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Values of a property-string option: the base, each key given each of its
/// values, and structural mutations.
pub fn property_values(fmt: &str) -> Vec<String> {
    property_values_by(fmt, usize::MAX)
}

/// [`property_values`] with at most `per_key` values for each key (the
/// first and the last: a valid one and a mutated one).
fn property_values_by(fmt: &str, per_key: usize) -> Vec<String> {
    let def = format(fmt).expect("format");
    let keys = def["keys"].as_object().expect("keys");
    let default_key = keys
        .iter()
        .find(|(_, d)| d["default_key"] == true)
        .map(|(k, _)| k.as_str());
    let b: Vec<(String, String)> = base(fmt)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut out = vec![render(&b)];
    for (k, kd) in keys {
        if let Some(target) = kd["alias"].as_str() {
            // The alias spelling, with a value its target takes.
            let tv = values(target, &keys[target]);
            let mut items = b.clone();
            items.push((k.clone(), tv[0].clone()));
            out.push(render(&items));
            continue;
        }
        let mut vs = values(k, kd);
        if vs.len() > per_key {
            let last = vs.pop().unwrap_or_default();
            vs.truncate(per_key.saturating_sub(1));
            vs.push(last);
        }
        for v in vs {
            let mut items: Vec<(String, String)> = b
                .iter()
                .filter(|(bk, _)| !(bk == k || (bk.is_empty() && Some(k.as_str()) == default_key)))
                .cloned()
                .collect();
            if Some(k.as_str()) == default_key {
                items.insert(0, (String::new(), v.clone()));
            }
            items.push((k.clone(), v));
            out.push(render(&items));
        }
    }
    let r = render(&b);
    let first_key = keys
        .keys()
        .find(|k| keys[*k].get("alias").is_none())
        .cloned()
        .unwrap_or_default();
    out.extend([
        format!("{r},bogus=1"),
        format!("{r},"),
        format!(",{r}"),
        format!("{r},,"),
        format!("{r},{first_key}="),
        format!("{r},=x"),
        format!("{r},extra"),
        format!("{r}, {first_key}=1"),
        format!("{r},{}=1", first_key.to_ascii_uppercase()),
        String::new(),
    ]);
    if let Some((k, v)) = b.iter().find(|(k, _)| !k.is_empty()) {
        out.push(format!("{r},{k}={v}"));
    }
    out
}

/// The numbered options to try of a family (`net0`, `net31`) and the one
/// past its end (`net32`): `set` lines avoid the slots the base VM uses.
fn family_keys(cmd: &str, fam: &str, min: u64, max: u64) -> (Vec<String>, String) {
    let first = if cmd == "set" && matches!(fam, "net" | "scsi" | "ide") {
        min + 1
    } else {
        min
    };
    let mut keys = vec![format!("{fam}{first}")];
    if max > first {
        keys.push(format!("{fam}{max}"));
    }
    (keys, format!("{fam}{}", max + 1))
}

/// One option's lines for `cmd`. The disk families other than `scsi` get
/// their full sweep on `create` only; `set` checks them with two values a
/// key, as their formats share most keys with `qm-scsi`.
fn option_lines(cmd: &str, key: &str, def: &Value, out: &mut Vec<Vec<String>>) {
    let vmid = if cmd == "create" { NEW } else { BASE };
    let brief = cmd == "set"
        && ["ide", "sata", "virtio", "cdrom"]
            .iter()
            .any(|f| key.trim_end_matches(|c: char| c.is_ascii_digit()) == *f);
    let vs = match def["format"].as_str() {
        Some(f) if brief => property_values_by(f, 2),
        _ => values(key, def),
    };
    for v in vs {
        out.push(vec![cmd.into(), vmid.into(), format!("--{key}"), v]);
    }
}

/// Every line of the sweep, as qm argv without the program name.
pub fn lines() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let families = schema()["families"].as_object().expect("families");
    for cmd in ["create", "set"] {
        let params = schema()["commands"][cmd]["parameters"]
            .as_object()
            .expect("params");
        let mut done = BTreeSet::new();
        for (fam, fd) in families {
            let (min, max) = (
                fd["min_index"].as_u64().unwrap_or(0),
                fd["max_index"].as_u64().unwrap_or(0),
            );
            let (keys, past) = family_keys(cmd, fam, min, max);
            for (i, k) in keys.iter().enumerate() {
                let Some(def) = params.get(k) else { continue };
                if i == 0
                    || !def.get("format").is_some_and(|f| {
                        format(f.as_str().unwrap_or(""))
                            .is_some_and(|d| d["kind"] == "property-string")
                    })
                {
                    option_lines(cmd, k, def, &mut out);
                } else {
                    // The last slot of a family: its base value only.
                    let f = def["format"].as_str().unwrap_or("");
                    let b: Vec<(String, String)> = base(f)
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    out.push(vec![
                        cmd.into(),
                        if cmd == "create" { NEW } else { BASE }.into(),
                        format!("--{k}"),
                        render(&b),
                    ]);
                }
            }
            out.push(vec![
                cmd.into(),
                if cmd == "create" { NEW } else { BASE }.into(),
                format!("--{past}"),
                "1".into(),
            ]);
            for i in min..=max + 1 {
                done.insert(format!("{fam}{i}"));
            }
        }
        for (k, def) in params {
            if done.contains(k) || k == "node" || k == "vmid" {
                continue;
            }
            option_lines(cmd, k, def, &mut out);
        }
    }
    out.extend(
        special()
            .into_iter()
            .map(|l| l.split(' ').map(str::to_string).collect()),
    );
    out
}

/// Lines about rules between options, the command line itself, and host
/// state, written out. `_` stands for a space inside one word.
fn special() -> Vec<String> {
    let lines: &[&str] = &[
        // getopt forms
        "create 150 --memory=512",
        "create 150 -memory 512",
        "create 150 -memory=512",
        "create 150 --MEMORY 512",
        "create 150 --mem 512",
        "create 150 --s 1",
        "create 150 --memory= --cores 1",
        "create 150 --memory",
        "create 150 --bogus 1",
        "create --start 150",
        "create 150 --start",
        "create 150 --onboot --cores 2",
        "create 150 151",
        "create",
        "create --vmid 150",
        "create 150 --vmid 151",
        "create 150 -- --name",
        "create 150 --tags a --tags b",
        "create 150 --name a --name b",
        "create 150 --node pve",
        "set 100",
        "set 100 --skiplock 1",
        "set 100 --digest abc",
        "set 100 --cores 2 --skiplock",
        // cipassword: interactive, its value optional
        "set 100 --cipassword secret",
        "set 100 --cipassword",
        "set 100 --cipassword 0",
        "set 100 --cipassword=0",
        "set 100 --cipassword=-x",
        "set 100 --cipassword -x",
        "set 100 --cipassword --cores 2",
        "create 150 --cipassword $5$abc$def",
        // sshkeys: a path on the host
        "set 100 --sshkeys /var/lib/vz/keys.pub",
        "set 100 --sshkeys /var/lib/vz/bad.pub",
        "set 100 --sshkeys /nonexistent/keys.pub",
        "set 100 --sshkeys ssh-ed25519",
        "create 150 --sshkeys /var/lib/vz/keys.pub",
        // archive, force, unique, pool, storage
        "create 150 --archive 0",
        "create 150 --archive -",
        "create 150 --archive local:backup/vzdump-qemu-100.vma.zst",
        "create 150 --archive 0 --force 1",
        "create 150 --force 1",
        "create 150 --unique 0",
        "create 150 --pool pool1",
        "create 150 --storage local-lvm",
        "create 150 --storage nostore",
        // balloon and memory
        "set 100 --balloon 1024",
        "set 100 --balloon 1025",
        "set 100 --balloon 0",
        "set 100 --memory 2048 --balloon 2048",
        "set 100 --memory 2048 --balloon 2049",
        "set 100 --memory current=512 --balloon 600",
        "set 100 --memory 0 --balloon 600",
        "create 150 --memory 512 --balloon 4096",
        // --delete and --revert
        "set 100 --delete cores",
        "set 100 --delete name",
        "set 100 --delete cdrom",
        "set 100 --delete nosuchkey",
        "set 100 --delete name --name x",
        "set 100 --delete name --revert name",
        "set 100 --revert name",
        "set 100 --revert nosuchkey",
        "set 100 --revert cores --cores 2",
        "set 100 --delete ide2 --cdrom none",
        "set 100 --delete scsi0 --boot order=scsi0",
        "set 100 --delete net0,name",
        "set 100 --delete net0 --delete name",
        "set 100 --force 1",
        "set 100 --force 1 --delete unused0",
        // boot orders on set: devices of the VM or the same call
        "set 100 --boot order=scsi0;ide2;net0",
        "set 100 --boot order=scsi1",
        "set 100 --boot order=scsi1 --scsi1 local-lvm:1",
        "set 100 --boot order=net1",
        "set 100 --boot order=ide0 --cdrom none",
        "set 100 --boot order=ide2 --cdrom none",
        "set 100 --boot order=efidisk0",
        "set 100 --boot order=scsi0,legacy=cdn",
        "set 100 --boot c --bootdisk scsi0",
        "set 100 --boot order=",
        // cdrom alias
        "create 150 --cdrom none",
        "create 150 --cdrom local:iso/jammy.img",
        "create 150 --cdrom local:iso/jammy.img,media=disk",
        "create 150 --cdrom local:iso/missing.img",
        "create 150 --cdrom local:iso/jammy.img --ide2 none",
        "set 100 --cdrom local:iso/jammy.img",
        // drives: files
        "create 150 --scsi0 local-lvm:0.5",
        "create 150 --scsi0 local:1",
        "create 150 --scsi0 vmdir:1",
        "create 150 --scsi0 vmdir:1,format=qcow2",
        "create 150 --scsi0 vmdir:1,format=vmdk",
        "create 150 --scsi0 vmdir:1,format=qed",
        "create 150 --scsi0 local-lvm:1,format=qcow2",
        "create 150 --scsi0 nostore:1",
        "create 150 --scsi0 32",
        "create 150 --scsi0 local-lvm:cloudinit",
        "create 150 --scsi0 local:cloudinit",
        "create 150 --scsi0 nostore:cloudinit",
        "create 150 --scsi0 local-lvm:cloudinit --ide2 local-lvm:cloudinit",
        "create 150 --scsi0 none",
        "create 150 --scsi0 cdrom",
        "create 150 --virtio0 none",
        "create 150 --virtio0 cdrom",
        "create 150 --scsi0 local:iso/jammy.img",
        "create 150 --scsi0 local:iso/jammy.img,media=cdrom",
        "create 150 --virtio0 local:iso/jammy.img,media=cdrom",
        "create 150 --scsi0 /var/lib/vz/template/iso/jammy.img",
        "create 150 --scsi0 /var/lib/vz/template/iso/jammy.img,media=disk",
        "create 150 --scsi0 /root/disk.img",
        "create 150 --scsi0 /dev/disk/by-id/pvefleet-missing",
        "create 150 --scsi0 local-lvm:vm-100-disk-0",
        "create 150 --scsi0 local-lvm:vm-150-disk-9",
        "create 150 --scsi0 local-lvm:vm-100-disk-0,format=raw",
        "create 150 --scsi0 local-lvm:vm-100-disk-0,format=qcow2",
        "create 150 --scsi0 local-lvm:vm-100-disk-0,media=cdrom",
        "create 150 --scsi0 local-lvm:1,media=cdrom",
        "create 150 --scsi0 local-lvm:100/vm-100-disk-0.raw",
        "create 150 --scsi0 local:vm-100-disk-0",
        "create 150 --scsi0 local:snippets/x.yml",
        "create 150 --scsi0 local:import/noble.qcow2",
        // drives: import-from
        "create 150 --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --scsi0 local-lvm:0.0,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --scsi0 local-lvm:1,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/missing.img",
        "create 150 --scsi0 local-lvm:0,import-from=local:iso/jammy.img",
        "create 150 --scsi0 local-lvm:0,import-from=local:import/noble.qcow2",
        "create 150 --scsi0 local-lvm:0,import-from=local:import/missing.qcow2",
        "create 150 --scsi0 local-lvm:0,import-from=local-lvm:vm-100-disk-0",
        "create 150 --scsi0 local-lvm:0,import-from=relative/path.img",
        "create 150 --scsi0 local:0,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --scsi0 vmdir:0,import-from=/var/lib/vz/template/iso/jammy.img,format=qcow2",
        "create 150 --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img,format=qcow2",
        "create 150 --scsi0 none,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --efidisk0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --efidisk0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img,efitype=4m",
        "create 150 --efidisk0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img,efitype=4m,pre-enrolled-keys=0",
        "create 150 --tpmstate0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img",
        "create 150 --tpmstate0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img,version=v2.0",
        // drives: parse_drive's rules between keys
        "create 150 --scsi0 local-lvm:1,bps=1,mbps=1",
        "create 150 --scsi0 local-lvm:1,bps_rd=1,mbps_rd=1",
        "create 150 --scsi0 local-lvm:1,mbps_max=5",
        "create 150 --scsi0 local-lvm:1,mbps_max=5,mbps=1",
        "create 150 --scsi0 local-lvm:1,mbps_max=5,bps=1",
        "create 150 --scsi0 local-lvm:1,mbps_max=5,mbps=0",
        "create 150 --scsi0 local-lvm:1,mbps_rd_max=5,mbps_rd=2",
        "create 150 --scsi0 local-lvm:1,mbps_wr_max=5",
        "create 150 --scsi0 local-lvm:1,bps_max_length=5",
        "create 150 --scsi0 local-lvm:1,bps_max_length=5,mbps_max=5,mbps=1",
        "create 150 --scsi0 local-lvm:1,bps_rd_length=5,mbps_rd_max=5,mbps_rd=1",
        "create 150 --scsi0 local-lvm:1,iops_max_length=5",
        "create 150 --scsi0 local-lvm:1,iops_max_length=5,iops_max=10",
        "create 150 --scsi0 local-lvm:1,iops_rd_max_length=5,iops_rd_max=10",
        "create 150 --scsi0 local-lvm:1,iops_wr_length=5",
        "create 150 --scsi0 local-lvm:1,mbps=1,mbps_rd=1",
        "create 150 --scsi0 local-lvm:1,mbps=1,mbps_wr=1",
        "create 150 --scsi0 local-lvm:1,bps=1,mbps_wr=1",
        "create 150 --scsi0 local-lvm:1,iops=1,iops_rd=1",
        "create 150 --scsi0 local-lvm:1,iops=1,iops_wr=1",
        "create 150 --scsi0 local-lvm:1,iops=0,iops_wr=1",
        "create 150 --ide0 none,media=cdrom,snapshot=1",
        "create 150 --ide0 none,media=cdrom,format=raw",
        "create 150 --ide0 none,media=cdrom,snapshot=0",
        "create 150 --virtio0 none,media=cdrom",
        "create 150 --scsi0 local-lvm:1,size=1X",
        "create 150 --scsi0 local-lvm:1,volume=local-lvm:2",
        "create 150 --scsi0 volume=local-lvm:2",
        "create 150 --scsi0 file=local-lvm:2,volume=local-lvm:2",
        "create 150 --scsi0 local-lvm:1,cyls=5",
        // cloud-init drives on set: one per VM (ide2 holds it)
        "set 100 --ide0 local-lvm:cloudinit",
        "set 100 --ide2 local-lvm:cloudinit",
        "set 100 --ide0 local-lvm:cloudinit --delete ide2",
        "set 100 --sata0 local:cloudinit",
        "set 100 --ide0 local:iso/jammy.img,media=cdrom",
        "set 100 --scsi1 local-lvm:vm-100-disk-0",
        // unused volumes
        "create 150 --unused0 local-lvm:vm-100-disk-0",
        "create 150 --unused0 local-lvm:vm-150-disk-9",
        "create 150 --unused0 local:iso/jammy.img",
        "create 150 --unused0 nostore:vm-1-disk-0",
        "create 150 --unused0 local-lvm:1",
        "create 150 --unused0 local-lvm:100/vm-100-disk-0.raw",
        "set 100 --unused5 local-lvm:vm-100-disk-7",
        // vga clipboard
        "create 150 --vga std,clipboard=vnc",
        "create 150 --vga clipboard=vnc",
        "create 150 --vga qxl2,clipboard=vnc",
        "create 150 --vga virtio-gl,clipboard=vnc",
        "create 150 --vga serial0,clipboard=vnc",
        "create 150 --vga none,clipboard=vnc",
        "set 100 --vga none,clipboard=vnc",
        // CPU models and flags
        "create 150 --cpu custom-mymodel",
        "create 150 --cpu custom-othermodel",
        "create 150 --cpu cputype=custom-mymodel,flags=+aes",
        "create 150 --cpu x86-64-v2-AES,flags=+aes",
        "create 150 --cpu Host",
        "create 150 --cpu EPYC-Rome,flags=+pcid;-md-clear;+nested-virt",
        "create 150 --cpu host,reported-model=kvm64",
        "create 150 --cpu flags=+aes",
        "create 150 --cpu 0",
        "create 150 --cpu kvm64,cputype=host",
        "create 150 --cpu host,flags=0",
        // ipconfig gateways
        "create 150 --ipconfig0 gw=10.0.0.1",
        "create 150 --ipconfig0 ip=dhcp,gw=10.0.0.1",
        "create 150 --ipconfig0 gw6=2001:db8::1",
        "create 150 --ipconfig0 ip6=auto,gw6=2001:db8::1",
        "create 150 --ipconfig0 ip=10.0.0.5/24,gw=2001:db8::1",
        // net: model and MAC spellings
        "create 150 --net0 virtio=BC:24:11:00:00:01,bridge=vmbr0",
        "create 150 --net0 e1000=bc:24:11:00:00:01",
        "create 150 --net0 virtio=01:00:5E:00:00:01",
        "create 150 --net0 model=virtio,macaddr=BC:24:11:00:00:01",
        "create 150 --net0 virtio,e1000=BC:24:11:00:00:01",
        "create 150 --net0 virtio=BC:24:11:00:00:01,macaddr=BC:24:11:00:00:02",
        "create 150 --net0 bridge=vmbr0",
        "create 150 --net0 virtio,bridge=vmbr9",
        "create 150 --net0 virtio,bridge=vmbr9 --start 1",
        // agent aliases
        "create 150 --agent enabled=1,freeze-fs-on-backup=0",
        "create 150 --agent 1,freeze-fs=1,freeze-fs-on-backup=0",
        "create 150 --agent enabled=1,guest-fsfreeze=1",
        "create 150 --agent 0,1",
        "create 150 --agent 1,0",
        // misc
        "create 150 --hookscript local:snippets/hook.sh",
        "create 150 --template 1 --scsi0 local-lvm:1",
        "create 150 --start 1",
        "create 150 --tags a;b --tags c",
        "create 150 --nameserver 1.1.1.1 --nameserver dns.example.com",
        "create 150 --memory 16",
        "create 150 --memory 15",
        "create 150 --memory current=2048",
        "create 150 --memory 2048,current=1024",
        "create 150 --description x --description y",
        "set 100 --name web --onboot 1 --tags prod",
        "set 100 --vmgenid 1",
        "set 100 --hookscript local:snippets/hook.sh",
    ];
    lines.iter().map(|l| l.to_string()).collect()
}
