//! `qm`: what a Proxmox node does for each command pvefleet (and the
//! original playbook) sends, per CONTRACT.md.

use crate::schema::{self, parse_property_string, Failure, Invocation};
use crate::state::{now_ms, Root, State, Vm, Volume};
use crate::Ctx;
use std::collections::BTreeMap;
use std::time::Duration;

type R = Result<(), Failure>;

fn cfg_missing(node: &str, vmid: u32) -> Failure {
    Failure::die(
        [
            "Configuration file 'nodes/",
            node,
            "/qemu-server/",
            &vmid.to_string(),
            ".conf' does not exist",
        ]
        .concat(),
    )
}

fn vmid_of(p: &BTreeMap<String, String>, key: &str) -> u32 {
    p.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn at_least(st: &State, maj: u32, min: u32) -> bool {
    st.at_least(maj, min)
}

fn fmt_size(bytes: u64) -> String {
    for (u, f) in [
        ('T', 1u64 << 40),
        ('G', 1 << 30),
        ('M', 1 << 20),
        ('K', 1 << 10),
    ] {
        if bytes >= f && bytes.is_multiple_of(f) {
            return [(bytes / f).to_string(), u.to_string()].concat();
        }
    }
    bytes.to_string()
}

/// A size as `qm` takes it: bytes, or a number (fractions allowed) with
/// `K`, `M`, `G` or `T`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (num, f) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    Some((v * f as f64) as u64)
}

fn is_drive_key(k: &str) -> bool {
    let base = k.trim_end_matches(|c: char| c.is_ascii_digit());
    matches!(
        base,
        "ide" | "sata" | "scsi" | "virtio" | "efidisk" | "tpmstate" | "unused"
    ) && base.len() < k.len()
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect()
}

fn uuid() -> String {
    [
        random_hex(8),
        "-".into(),
        random_hex(4),
        "-4".into(),
        random_hex(3),
        "-a".into(),
        random_hex(3),
        "-".into(),
        random_hex(12),
    ]
    .concat()
}

/// A new NIC's MAC: the Proxmox OUI `BC:24:11` since PVE 8.1, before that
/// a random locally administered unicast address (CONTRACT §3.2, §15).
fn random_mac(proxmox_oui: bool) -> String {
    if proxmox_oui {
        let b: Vec<String> = (0..3)
            .map(|_| format!("{:02X}", fastrand::u8(..)))
            .collect();
        return ["BC:24:11:", &b.join(":")].concat();
    }
    let b: Vec<String> = (0..6)
        .map(|i| {
            let x = fastrand::u8(..);
            format!("{:02X}", if i == 0 { (x & 0xfe) | 2 } else { x })
        })
        .collect();
    b.join(":")
}

/// Percent-encodes as Perl's `uri_escape` (unreserved: A-Za-z0-9 -._~).
fn uri_escape(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn valid_ssh_key(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return false;
    };
    // The blob is base64 whose first field repeats the key type.
    let decoded = decode_base64(blob);
    decoded.len() > 4 + kind.len() && decoded[4..4 + kind.len()] == *kind.as_bytes()
}

fn decode_base64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Vec::new(),
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// Reads an `--sshkeys` file the way `qm` does and returns the URL-encoded text.
fn read_sshkeys(cx: &Ctx, path: &str) -> Result<String, Failure> {
    let text = std::fs::read_to_string(cx.root.host_path(&cx.node, path)).map_err(|_| {
        Failure::die(["can't open '", path, "' - No such file or directory"].concat())
    })?;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if !valid_ssh_key(line) {
            return Err(Failure::die("SSH public key validation error"));
        }
    }
    Ok(uri_escape(&text))
}

/// What a drive option asks for.
enum DriveOp {
    Keep(String),
    New {
        storage: String,
        bytes: u64,
        rest: Vec<(String, String)>,
    },
    Import {
        storage: String,
        src_path: std::path::PathBuf,
        size: u64,
        rest: Vec<(String, String)>,
    },
    Cloudinit {
        storage: String,
    },
    Existing {
        volid: String,
        rest: Vec<(String, String)>,
    },
}

fn rest_of(parsed: &BTreeMap<String, String>) -> Vec<(String, String)> {
    parsed
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "file" | "import-from" | "size"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn param_fail(key: &str, reason: &str, cmd: &str) -> Failure {
    Failure::die(
        [
            "400 Parameter verification failed.\n",
            key,
            ": ",
            reason,
            "\n\n",
            &schema::usage(cmd),
        ]
        .concat(),
    )
}

fn storage_check(st: &State, storage: &str, key: &str, cmd: &str) -> R {
    match st.storage(storage) {
        None => Err(param_fail(
            key,
            &["storage '", storage, "' does not exist"].concat(),
            cmd,
        )),
        Some(s) if !s.content.iter().any(|c| c == "images") => Err(param_fail(
            key,
            &["storage '", storage, "' does not support vm images"].concat(),
            cmd,
        )),
        Some(_) => Ok(()),
    }
}

fn drive_op(cx: &Ctx, st: &State, cmd: &str, key: &str, value: &str) -> Result<DriveOp, Failure> {
    let fdef = schema::format_of(cmd, key).ok_or_else(|| param_fail(key, "unknown drive", cmd))?;
    let parsed = parse_property_string(fdef, value)
        .map_err(|e| param_fail(key, &["invalid format - ", &e].concat(), cmd))?;
    let file = parsed.get("file").cloned().unwrap_or_default();
    if let Some(src) = parsed.get("import-from") {
        if !at_least(st, 7, 2) {
            return Err(param_fail(
                key,
                &["invalid format - format error\n", key, ".import-from: property is not defined in schema and the schema does not allow additional properties"].concat(),
                cmd,
            ));
        }
        let Some(storage) = file.strip_suffix(":0").filter(|s| !s.contains(':')) else {
            return Err(Failure::die([key, ": 'import-from' requires special syntax - use <storage ID>:0,import-from=<source>"].concat()));
        };
        storage_check(st, storage, key, cmd)?;
        let (src_path, size) = if src.starts_with('/') {
            let p = cx.root.host_path(&cx.node, src);
            match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => (p, m.len()),
                _ => {
                    return Err(Failure::die(
                        [
                            key,
                            ": source '",
                            src,
                            "' does not exist or is not a regular file",
                        ]
                        .concat(),
                    ))
                }
            }
        } else {
            let vol = st
                .find_volume(&cx.node, src)
                .ok_or_else(|| Failure::die(["volume '", src, "' does not exist"].concat()))?;
            let import_ok = vol.content == "import" && at_least(st, 8, 3);
            if vol.content != "images" && !import_ok {
                let tail = if at_least(st, 8, 3) {
                    "needs to be 'images' or 'import'"
                } else {
                    "not an image"
                };
                return Err(Failure::die(
                    [
                        key,
                        ": ",
                        src,
                        " has wrong type '",
                        &vol.content,
                        "' - ",
                        tail,
                    ]
                    .concat(),
                ));
            }
            (cx.root.volume_path(st, vol), vol.size)
        };
        return Ok(DriveOp::Import {
            storage: storage.to_string(),
            src_path,
            size,
            rest: rest_of(&parsed),
        });
    }
    if let Some(storage) = file.strip_suffix(":cloudinit") {
        storage_check(st, storage, key, cmd)?;
        return Ok(DriveOp::Cloudinit {
            storage: storage.to_string(),
        });
    }
    if let Some(c) = schema::new_disk_re().and_then(|r| r.captures(&file)) {
        if parsed.get("media").map(String::as_str) == Some("cdrom") {
            return Err(Failure::die(
                ["volume '", &file, "' does not exist"].concat(),
            ));
        }
        let Some(storage) = c.get(2).map(|m| m.as_str().to_string()) else {
            return Err(Failure::die(
                "no storage ID specified (and no default storage)",
            ));
        };
        storage_check(st, &storage, key, cmd)?;
        let gib: f64 = c
            .get(3)
            .map(|m| m.as_str())
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        return Ok(DriveOp::New {
            storage,
            bytes: (gib * (1u64 << 30) as f64) as u64,
            rest: rest_of(&parsed),
        });
    }
    if file == "none" || file == "cdrom" || file.starts_with('/') {
        return Ok(DriveOp::Keep(value.to_string()));
    }
    let (storage, volname) = file.split_once(':').unwrap_or(("", ""));
    let Some(sdef) = st.storage(storage) else {
        return Err(Failure::die(
            ["storage '", storage, "' does not exist"].concat(),
        ));
    };
    let dir_shape = volname.contains('/');
    if sdef.is_dir() && !dir_shape {
        return Err(Failure::die(
            ["unable to parse directory volume name '", volname, "'"].concat(),
        ));
    }
    if !sdef.is_dir() && dir_shape {
        let kind = if sdef.kind == "zfspool" { "zfs" } else { "lvm" };
        return Err(Failure::die(
            ["unable to parse ", kind, " volume name '", volname, "'"].concat(),
        ));
    }
    let vol = st
        .find_volume(&cx.node, &file)
        .ok_or_else(|| Failure::die(["volume '", &file, "' does not exist"].concat()))?;
    if vol.content == "iso" && parsed.get("media").map(String::as_str) != Some("cdrom") {
        return Err(Failure::die(
            "explicit 'media=cdrom' is required for iso images",
        ));
    }
    Ok(DriveOp::Existing {
        volid: file,
        rest: rest_of(&parsed),
    })
}

fn join_drive(volid: &str, rest: &[(String, String)], size: Option<u64>) -> String {
    let mut s = volid.to_string();
    for (k, v) in rest {
        s.push(',');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    if let Some(b) = size {
        s.push_str(",size=");
        s.push_str(&fmt_size(b));
    }
    s
}

/// Allocates a volume (under the state lock) and creates its sparse file.
fn allocate(
    root: &Root,
    st: &mut State,
    node: &str,
    storage: &str,
    vmid: u32,
    bytes: u64,
    cloudinit: bool,
) -> Result<Volume, Failure> {
    let dir = st.storage(storage).is_some_and(|s| s.is_dir());
    let id = vmid.to_string();
    let volname = if cloudinit {
        if dir {
            [&id, "/vm-", &id, "-cloudinit.qcow2"].concat()
        } else {
            ["vm-", &id, "-cloudinit"].concat()
        }
    } else {
        let n = st.next_disk_name(node, storage, vmid).to_string();
        if dir {
            [&id, "/vm-", &id, "-disk-", &n, ".raw"].concat()
        } else {
            ["vm-", &id, "-disk-", &n].concat()
        }
    };
    let vol = Volume {
        storage: storage.to_string(),
        node: node.to_string(),
        volname,
        size: bytes,
        content: "images".into(),
        format: if cloudinit && dir {
            "qcow2".into()
        } else {
            "raw".into()
        },
        vmid: Some(vmid),
        ctime: now_ms() / 1000,
    };
    let path = root.volume_path(st, &vol);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(bytes))
        .map_err(|e| {
            Failure::die(
                [
                    "error with cfs lock 'storage-",
                    storage,
                    "': ",
                    &e.to_string(),
                ]
                .concat(),
            )
        })?;
    st.volumes.push(vol.clone());
    Ok(vol)
}

fn free_volume(root: &Root, st: &mut State, node: &str, volid: &str) {
    if let Some(pos) = st.volumes.iter().position(|v| {
        v.volid() == volid && (v.node == node || st.storage(&v.storage).is_some_and(|s| s.shared))
    }) {
        let v = st.volumes.remove(pos);
        let _ = std::fs::remove_file(root.volume_path(st, &v));
    }
}

/// Takes the storage's allocation lock (CONTRACT §11.3) and holds it for
/// the model's allocation time: a flock on the node for a local storage,
/// one cluster-wide lock for a shared one. Like Proxmox, it gives up after
/// 10 s with the matching message.
fn storage_lock(cx: &Ctx, storage: &str) -> Result<std::fs::File, Failure> {
    let st = cx.root.read()?;
    let shared = st.storage(storage).is_some_and(|s| s.shared);
    let name = if shared {
        ["storage-", storage].concat()
    } else {
        ["storage-", &cx.node, "-", storage].concat()
    };
    let Some(lock) = cx.root.try_lock_for(&name, Duration::from_secs(10)) else {
        return Err(Failure::die(if shared {
            [
                "cfs-lock 'storage-",
                storage,
                "' error: got lock request timeout",
            ]
            .concat()
        } else {
            [
                "can't lock file '/var/lock/pve-manager/pve-storage-",
                storage,
                "' - got timeout",
            ]
            .concat()
        }));
    };
    if st.settings.alloc_ms > 0 {
        std::thread::sleep(Duration::from_millis(st.settings.alloc_ms));
    }
    Ok(lock)
}

/// Allocates a volume for `vmid` on `storage` of this node under the
/// storage's allocation lock, as Proxmox's `vdisk_alloc` does.
fn allocate_locked(
    cx: &Ctx,
    storage: &str,
    vmid: u32,
    bytes: u64,
    cloudinit: bool,
) -> Result<Volume, Failure> {
    let _lock = storage_lock(cx, storage)?;
    let root = cx.root.clone();
    root.update(|st| allocate(&root, st, &cx.node, storage, vmid, bytes, cloudinit))
}

/// The progress line qemu-img prints when a copy of `bytes` is done.
fn copied(cx: &mut Ctx, bytes: u64) {
    let size = fmt_size(bytes);
    cx.out(&["transferred ", &size, " of ", &size, " (100.00%)"].concat());
}

/// Sleeps for a copy of `bytes` at the storage's bandwidth; copies on one
/// storage at once share it (modelled as taking turns on one disk).
fn copy_time(cx: &Ctx, st: &State, storage: &str, bytes: u64) {
    let mbps = st.settings.import_mbps;
    if mbps == 0 || bytes == 0 {
        return;
    }
    let shared = st.storage(storage).is_some_and(|s| s.shared);
    let lock = if shared {
        ["io-", storage].concat()
    } else {
        ["io-", &cx.node, "-", storage].concat()
    };
    let _disk = cx.root.try_lock_for(&lock, Duration::from_secs(86_400));
    std::thread::sleep(Duration::from_millis(bytes * 1000 / (mbps * 1_000_000)));
}

fn normalise_net(value: &str, proxmox_oui: bool) -> String {
    let Some(fdef) = schema::format_of("create", "net0") else {
        return value.to_string();
    };
    let Ok(mut p) = parse_property_string(fdef, value) else {
        return value.to_string();
    };
    let model = p.remove("model").unwrap_or_else(|| "virtio".into());
    let mac = p
        .remove("macaddr")
        .unwrap_or_else(|| random_mac(proxmox_oui))
        .to_ascii_uppercase();
    let mut s = [model.as_str(), "=", &mac].concat();
    for (k, v) in p {
        s.push(',');
        s.push_str(&k);
        s.push('=');
        s.push_str(&v);
    }
    s
}

fn normalise_tags(v: &str) -> String {
    let mut t: Vec<String> = schema::split_list(v)
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    t.sort();
    t.dedup();
    t.join(";")
}

fn normalise_value(key: &str, value: &str, proxmox_oui: bool) -> String {
    if key.starts_with("net") && key[3..].chars().all(|c| c.is_ascii_digit()) {
        return normalise_net(value, proxmox_oui);
    }
    match key {
        "tags" => normalise_tags(value),
        "memory" => value.strip_prefix("current=").unwrap_or(value).to_string(),
        _ => value.to_string(),
    }
}

fn default_boot(config: &BTreeMap<String, String>) -> String {
    let slots = ["scsi", "virtio", "sata", "ide"];
    let mut disk = None;
    let mut cd = None;
    for s in slots {
        for i in 0..31 {
            let k = [s, &i.to_string()].concat();
            if let Some(v) = config.get(&k) {
                if v.contains("media=cdrom") {
                    cd = cd.or(Some(k));
                } else {
                    disk = disk.or(Some(k));
                }
            }
        }
    }
    let net = (0..32)
        .map(|i| ["net", &i.to_string()].concat())
        .find(|k| config.contains_key(k));
    let order: Vec<String> = [disk, cd, net].into_iter().flatten().collect();
    ["order=", &order.join(";")].concat()
}

/// Applies drive options: allocates, imports, attaches. Returns output lines.
fn apply_drives(
    cx: &mut Ctx,
    vmid: u32,
    ops: Vec<(String, DriveOp)>,
    config: &mut BTreeMap<String, String>,
    created: &mut Vec<String>,
) -> R {
    for (key, op) in ops {
        match op {
            DriveOp::Keep(v) => {
                config.insert(key, v);
            }
            DriveOp::Existing { volid, rest } => {
                let size = cx
                    .root
                    .read()?
                    .find_volume(&cx.node, &volid)
                    .map(|v| v.size);
                config.retain(|k, v| {
                    !(k.starts_with("unused") && v.split(',').next() == Some(volid.as_str()))
                });
                config.insert(key, join_drive(&volid, &rest, size));
            }
            DriveOp::New {
                storage,
                bytes,
                rest,
            } => {
                let vol = allocate_locked(cx, &storage, vmid, bytes, false)?;
                created.push(vol.volid());
                let v = join_drive(&vol.volid(), &rest, Some(bytes));
                cx.out(&[key.as_str(), ": successfully created disk '", &v, "'"].concat());
                config.insert(key, v);
            }
            DriveOp::Cloudinit { storage } => {
                if let Some((other, _)) = config
                    .iter()
                    .find(|(k, v)| **k != key && v.contains("cloudinit"))
                {
                    return Err(Failure::die(
                        [
                            key.as_str(),
                            " - cloud-init drive is already attached at '",
                            other,
                            "'",
                        ]
                        .concat(),
                    ));
                }
                let vol = allocate_locked(cx, &storage, vmid, 4 << 20, true)?;
                created.push(vol.volid());
                let v = [vol.volid().as_str(), ",media=cdrom"].concat();
                cx.out(&[key.as_str(), ": successfully created disk '", &v, "'"].concat());
                config.insert(key, v);
            }
            DriveOp::Import {
                storage,
                src_path,
                size,
                rest,
            } => {
                let st = cx.root.read()?;
                copy_time(cx, &st, &storage, size);
                if !src_path.exists() {
                    return Err(Failure::die(
                        ["import source vanished: ", &src_path.display().to_string()].concat(),
                    ));
                }
                let vol = allocate_locked(cx, &storage, vmid, size, false)?;
                created.push(vol.volid());
                copied(cx, size);
                let v = join_drive(&vol.volid(), &rest, Some(size));
                cx.out(&[key.as_str(), ": successfully created disk '", &v, "'"].concat());
                config.insert(key, v);
            }
        }
    }
    Ok(())
}

fn vm_lock(cx: &Ctx, vmid: u32, secs: u64, prefix: &str) -> Result<std::fs::File, Failure> {
    let name = ["lock-", &vmid.to_string(), ".conf"].concat();
    cx.root
        .try_lock_for(&name, Duration::from_secs(secs))
        .ok_or_else(|| {
            Failure::die(
                [
                    prefix,
                    "can't lock file '/var/lock/qemu-server/",
                    &name,
                    "' - got timeout",
                ]
                .concat(),
            )
        })
}

/// Loads a VM of this node (the config file lives in the node's folder).
fn local_vm(st: &State, node: &str, vmid: u32) -> Result<Vm, Failure> {
    match st.vms.get(&vmid) {
        Some(vm) if vm.node == node => Ok(vm.clone()),
        _ => Err(cfg_missing(node, vmid)),
    }
}

fn check_lock(vm: &Vm) -> R {
    match vm.config.get("lock") {
        Some(l) => Err(Failure::die(["VM is locked (", l, ")"].concat())),
        None => Ok(()),
    }
}

fn drive_ops(
    cx: &Ctx,
    st: &State,
    cmd: &str,
    params: &BTreeMap<String, String>,
) -> Result<Vec<(String, DriveOp)>, Failure> {
    let mut ops = Vec::new();
    for (k, v) in params {
        if is_drive_key(k) {
            ops.push((k.clone(), drive_op(cx, st, cmd, k, v)?));
        }
    }
    Ok(ops)
}

const SKIP: &[&str] = &[
    "vmid",
    "node",
    "start",
    "storage",
    "pool",
    "unique",
    "delete",
    "digest",
    "revert",
    "skiplock",
    "force",
    "bwlimit",
    "archive",
    "live-restore",
    "import-working-storage",
    "ha-managed",
];

/// `$1$`, `$5$`, `$6$`, `$2a$` or `$2y$` followed by two `$`-fields, as
/// qemu-server tests before it hashes a cloud-init password.
fn looks_hashed(pw: &str) -> bool {
    let Some(rest) = pw.strip_prefix('$') else {
        return false;
    };
    let Some(rest) = ["1$", "5$", "6$", "2a$", "2y$"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
    else {
        return false;
    };
    // `(\$.+){2}` after the id: at least one more `$` with text on both sides.
    rest.split_once('$')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}

/// Windows guests (`ostype` w*) keep a plain cloud-init password.
fn is_windows(ostype: Option<&String>) -> bool {
    ostype.is_some_and(|o| o.starts_with('w'))
}

fn plain_params(
    cx: &Ctx,
    params: &BTreeMap<String, String>,
    hash_password: bool,
) -> Result<BTreeMap<String, String>, Failure> {
    let proxmox_oui = cx.root.read()?.at_least(8, 1);
    let mut out = BTreeMap::new();
    for (k, v) in params {
        if is_drive_key(k) || SKIP.contains(&k.as_str()) {
            continue;
        }
        let value = match k.as_str() {
            "sshkeys" => read_sshkeys(cx, v)?,
            "cipassword" if hash_password && !looks_hashed(v) => {
                ["$5$", &random_hex(16), "$", &random_hex(43)].concat()
            }
            _ => normalise_value(k, v, proxmox_oui),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// The `order=` of a `--boot` value, read as the property string it is.
fn boot_order(boot: Option<&String>) -> Option<String> {
    let fdef = schema::format_of("set", "boot")?;
    parse_property_string(fdef, boot?).ok()?.remove("order")
}

/// Checks made with the host's state while the parameters are verified:
/// a `custom-NAME` CPU model must be defined on the cluster.
fn host_param_checks(st: &State, cmd: &str, params: &BTreeMap<String, String>) -> R {
    if let Some(name) = params.get("cpu").and_then(|c| schema::custom_cpu_model(c)) {
        if !st.cpu_models.contains(&name) {
            return Err(param_fail(
                "cpu",
                &["invalid format - Custom cputype '", &name, "' not found"].concat(),
                cmd,
            ));
        }
    }
    Ok(())
}

/// `qm set` refuses a balloon target above the memory given in the same
/// call (CONTRACT §18, an API-level check before the host is consulted).
fn balloon_check(params: &BTreeMap<String, String>) -> R {
    let (Some(balloon), Some(memory)) = (params.get("balloon"), params.get("memory")) else {
        return Ok(());
    };
    let memory = memory
        .split(',')
        .find_map(|kv| match kv.split_once('=') {
            Some(("current", v)) => Some(v),
            None => Some(kv),
            _ => None,
        })
        .and_then(|m| m.parse::<u64>().ok());
    match (balloon.parse::<u64>(), memory) {
        (Ok(b), Some(m)) if b > m => Err(Failure::die(
            "balloon value too large (must be smaller than assigned memory)",
        )),
        _ => Ok(()),
    }
}

/// Claims `vmid` cluster-wide for a create or clone in progress: a config
/// holding only `lock: <lock>` on this node. `taken` says why an existing
/// VM (on any node) stops it.
fn reserve_vmid(cx: &Ctx, vmid: u32, lock: &str, taken: impl FnOnce(&Vm) -> Failure) -> R {
    let node = cx.node.clone();
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get(&vmid) {
            return Err(taken(vm));
        }
        st.vms.insert(vmid, Vm::reserved(&node, lock));
        Ok(())
    })
}

fn create(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let st = cx.root.read()?;
    host_param_checks(&st, "create", p)?;
    let ops = drive_ops(cx, &st, "create", p)?;
    let plain = plain_params(cx, p, false)?;
    drop(st);
    let prefix = ["unable to create VM ", &vmid.to_string(), " - "].concat();
    let lock = vm_lock(cx, vmid, 5, &prefix)?;
    reserve_vmid(cx, vmid, "create", |vm| {
        Failure::die(
            [
                prefix.as_str(),
                "VM ",
                &vmid.to_string(),
                " already exists on node '",
                &vm.node,
                "'",
            ]
            .concat(),
        )
    })?;
    if crate::faults::partial(cx) {
        drop(lock);
        return Err(Failure::die(
            [prefix.as_str(), "interrupted by signal"].concat(),
        ));
    }
    let mut config = plain;
    let mut created = Vec::new();
    let result = apply_drives(cx, vmid, ops, &mut config, &mut created);
    if let Err(e) = result {
        let root = cx.root.clone();
        let node = cx.node.clone();
        let _ = root.update(|st| {
            for v in &created {
                free_volume(&root, st, &node, v);
            }
            st.vms.remove(&vmid);
            Ok(())
        });
        return Err(Failure::die(
            [prefix.as_str(), e.stderr.trim_end()].concat(),
        ));
    }
    if !config.contains_key("boot") {
        config.insert("boot".into(), default_boot(&config));
    }
    config
        .entry("smbios1".into())
        .or_insert_with(|| ["uuid=", &uuid()].concat());
    config.entry("vmgenid".into()).or_insert_with(uuid);
    config.insert(
        "meta".into(),
        ["creation-qemu=9.2.0,ctime=", &(now_ms() / 1000).to_string()].concat(),
    );
    let start = p.get("start").map(String::as_str) == Some("1");
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get_mut(&vmid) {
            vm.config = config;
        }
        Ok(())
    })?;
    drop(lock);
    if start {
        cx.out("Execute autostart");
        // A failed autostart is only a warning: exit 0 (CONTRACT §2.1).
        if let Err(e) = start_vm(cx, vmid) {
            cx.out(&["WARN: ", e.stderr.trim_end()].concat());
            cx.err("Task finished with 1 warning(s)!");
        }
    }
    Ok(())
}

fn set(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let deletes: Vec<String> = p
        .get("delete")
        .map(|d| {
            schema::split_list(d)
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .unwrap_or_default();
    let keys = schema::config_keys();
    for d in &deletes {
        if !keys.contains(&d.as_str()) {
            return Err(param_fail(
                "delete",
                &["invalid format - invalid configuration ID '", d, "'"].concat(),
                "set",
            ));
        }
        if p.contains_key(d) {
            return Err(param_fail(
                d,
                "unable to delete parameter that is set in the same call",
                "set",
            ));
        }
    }
    host_param_checks(&cx.root.read()?, "set", p)?;
    balloon_check(p)?;
    let changing: Vec<&String> = p.keys().filter(|k| !SKIP.contains(&k.as_str())).collect();
    if changing.is_empty() && deletes.is_empty() && !p.contains_key("revert") {
        return Err(Failure::die("no options specified"));
    }
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    if p.get("skiplock").map(String::as_str) != Some("1") {
        check_lock(&vm)?;
    }
    let ops = drive_ops(cx, &st, "set", p)?;
    let plain = plain_params(cx, p, !is_windows(vm.config.get("ostype")))?;
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    // The update line lists the options as given, sorted.
    let mut line = ["update VM ", &vmid.to_string(), ":"].concat();
    for (k, v) in p
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "vmid" | "node"))
    {
        line.push_str(" -");
        line.push_str(k);
        line.push(' ');
        line.push_str(if k == "cipassword" { "<hidden>" } else { v });
    }
    cx.out(&line);
    let mut config = vm.config.clone();
    if let Some(order) = boot_order(p.get("boot")) {
        for dev in schema::split_list(&order) {
            if !config.contains_key(dev) && !p.contains_key(dev) {
                return Err(Failure::die(
                    ["invalid bootorder: device '", dev, "' does not exist'"].concat(),
                ));
            }
        }
    }
    let has_cloudinit = ops
        .iter()
        .any(|(_, o)| matches!(o, DriveOp::Cloudinit { .. }));
    let mut created = Vec::new();
    apply_drives(cx, vmid, ops, &mut config, &mut created)?;
    if has_cloudinit {
        cx.out("generating cloud-init ISO");
    }
    const COLD: &[&str] = &[
        "memory", "cores", "sockets", "cpu", "scsihw", "machine", "bios", "vga", "serial0",
        "agent", "numa", "balloon", "ostype",
    ];
    let mut pending = vm.pending.clone();
    for (k, v) in plain {
        if vm.running && COLD.contains(&k.as_str()) {
            pending.insert(k, v);
        } else {
            config.insert(k, v);
        }
    }
    let root = cx.root.clone();
    let node = cx.node.clone();
    let mut warnings = Vec::new();
    root.update(|st| {
        for d in &deletes {
            match config.remove(d) {
                None => warnings.push(
                    [
                        "cannot delete '",
                        d,
                        "' - not set in current configuration!",
                    ]
                    .concat(),
                ),
                Some(v) if d.starts_with("unused") => {
                    let volid = v.split(',').next().unwrap_or("").to_string();
                    free_volume(&root, st, &node, &volid);
                }
                Some(v) if is_drive_key(d) && !v.contains("media=cdrom") => {
                    let volid = v.split(',').next().unwrap_or("").to_string();
                    let n = (0..256)
                        .find(|i| !config.contains_key(&["unused", &i.to_string()].concat()))
                        .unwrap_or(0);
                    config.insert(["unused", &n.to_string()].concat(), volid);
                }
                Some(v) if v.contains("cloudinit") => {
                    let volid = v.split(',').next().unwrap_or("").to_string();
                    free_volume(&root, st, &node, &volid);
                }
                Some(_) => {}
            }
        }
        if let Some(vm) = st.vms.get_mut(&vmid) {
            vm.config = config;
            vm.pending = pending;
        }
        Ok(())
    })?;
    for w in warnings {
        cx.err(&w);
    }
    Ok(())
}

fn import_disk(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let source = p.get("source").cloned().unwrap_or_default();
    let storage = p.get("storage").cloned().unwrap_or_default();
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    check_lock(&vm)?;
    let path = cx.root.host_path(&cx.node, &source);
    let size = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && source.starts_with('/') => m.len(),
        _ => {
            return Err(Failure::die(
                [source.as_str(), ": non-existent or non-regular file"].concat(),
            ))
        }
    };
    match st.storage(&storage) {
        None => {
            return Err(Failure::die(
                ["storage '", &storage, "' does not exist"].concat(),
            ))
        }
        Some(s) if !s.content.iter().any(|c| c == "images") => {
            return Err(Failure::die(
                ["storage ", &storage, " does not support vm images"].concat(),
            ))
        }
        Some(_) => {}
    }
    if let Some(t) = p.get("target-disk") {
        if vm.config.contains_key(t) {
            return Err(Failure::die(
                ["cowardly refusing to overwrite existing entry: ", t].concat(),
            ));
        }
    }
    cx.out(
        &[
            "importing disk '",
            &source,
            "' to VM ",
            &vmid.to_string(),
            " ...",
        ]
        .concat(),
    );
    copy_time(cx, &st, &storage, size);
    drop(st);
    let root = cx.root.clone();
    let node = cx.node.clone();
    let vol = allocate_locked(cx, &storage, vmid, size, false)?;
    cx.out(&["transferred 0.0 B of ", &fmt_size(size), " (0.00%)"].concat());
    copied(cx, size);
    if crate::faults::partial(cx) {
        return Err(Failure::die("copy failed: interrupted by signal"));
    }
    let _lock = vm_lock(cx, vmid, 10, "")?;
    let volid = vol.volid();
    let slot = root.update(|st| {
        let vm = st
            .vms
            .get_mut(&vmid)
            .ok_or_else(|| cfg_missing(&node, vmid))?;
        let slot = match p.get("target-disk") {
            Some(t) => t.clone(),
            None => {
                let n = (0..256)
                    .find(|i| !vm.config.contains_key(&["unused", &i.to_string()].concat()))
                    .unwrap_or(0);
                ["unused", &n.to_string()].concat()
            }
        };
        let value = if slot.starts_with("unused") {
            volid.clone()
        } else {
            join_drive(&volid, &[], Some(size))
        };
        vm.config.insert(slot.clone(), value);
        Ok(slot)
    })?;
    if at_least(&cx.root.read()?, 8, 3) {
        cx.out(&[slot.as_str(), ": successfully imported disk '", &volid, "'"].concat());
    } else {
        cx.out(&["Successfully imported disk as '", &slot, ":", &volid, "'"].concat());
    }
    Ok(())
}

fn resize(cx: &mut Ctx, inv: &Invocation) -> Result<(), Failure> {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let disk = p.get("disk").cloned().unwrap_or_default();
    let size = p.get("size").cloned().unwrap_or_default();
    let st = cx.root.read()?;
    let task = at_least(&st, 8, 0);
    let vm = local_vm(&st, &cx.node, vmid)?;
    check_lock(&vm)?;
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    let outcome: Result<(), Failure> = (|| {
        let value = vm
            .config
            .get(&disk)
            .ok_or_else(|| Failure::die(["disk '", &disk, "' does not exist"].concat()))?;
        if value.contains("media=cdrom") {
            return Err(Failure::die("you can't resize a cdrom"));
        }
        let volid = value.split(',').next().unwrap_or("").to_string();
        let current = value
            .split(',')
            .find_map(|kv| kv.strip_prefix("size="))
            .and_then(parse_size)
            .unwrap_or(0);
        let (plus, num) = match size.strip_prefix('+') {
            Some(n) => (true, n),
            None => (false, size.as_str()),
        };
        let amount = parse_size(num).ok_or_else(|| Failure::die("invalid size"))?;
        let new = if plus { current + amount } else { amount };
        if new < current {
            return Err(Failure::die("shrinking disks is not supported"));
        }
        if new == current {
            return Ok(());
        }
        // LVM grows a volume under the storage lock (CONTRACT §11.3).
        let storage = volid.split(':').next().unwrap_or("").to_string();
        let lvm = cx
            .root
            .read()?
            .storage(&storage)
            .is_some_and(|s| s.kind == "lvm" || s.kind == "lvmthin");
        let _alloc = if lvm {
            Some(storage_lock(cx, &storage)?)
        } else {
            None
        };
        let root = cx.root.clone();
        let node = cx.node.clone();
        root.update(|st| {
            if let Some(v) = st.volumes.iter().position(|v| {
                v.volid() == volid
                    && (v.node == node || st.storage(&v.storage).is_some_and(|s| s.shared))
            }) {
                st.volumes[v].size = new;
                let path = root.volume_path(st, &st.volumes[v]);
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(new));
            }
            if let Some(vm) = st.vms.get_mut(&vmid) {
                if let Some(v) = vm.config.get_mut(&disk) {
                    let parts: Vec<String> = v
                        .split(',')
                        .filter(|kv| !kv.starts_with("size="))
                        .map(str::to_string)
                        .collect();
                    *v = [parts.join(","), ",size=".into(), fmt_size(new)].concat();
                }
            }
            Ok(())
        })?;
        cx.out(
            &[
                "  Size of logical volume pve/",
                volid.rsplit([':', '/']).next().unwrap_or(""),
                " changed from ",
                &fmt_size(current),
                " to ",
                &fmt_size(new),
                ".",
            ]
            .concat(),
        );
        Ok(())
    })();
    match outcome {
        // On PVE >= 8.0 the resize task's failure does not reach the exit code.
        Err(e) if task => {
            cx.err(e.stderr.trim_end());
            Ok(())
        }
        other => other,
    }
}

fn bridge_check(st: &State, node: &str, vm: &Vm) -> R {
    let bridges = st.node(node).map(|n| n.bridges.clone()).unwrap_or_default();
    for (k, v) in &vm.config {
        if k.starts_with("net") && k[3..].chars().all(|c| c.is_ascii_digit()) {
            if let Some(b) = v.split(',').find_map(|kv| kv.strip_prefix("bridge=")) {
                if !bridges.iter().any(|x| x == b) {
                    return Err(Failure::die(
                        [
                            "bridge '",
                            b,
                            "' does not exist\nstart failed: QEMU exited with code 1",
                        ]
                        .concat(),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn start_vm(cx: &mut Ctx, vmid: u32) -> R {
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    check_lock(&vm)?;
    if vm.config.get("template").map(String::as_str) == Some("1") {
        return Err(Failure::die("you can't start a vm if it's a template"));
    }
    if vm.running {
        return Err(Failure::die(
            ["VM ", &vmid.to_string(), " already running"].concat(),
        ));
    }
    bridge_check(&st, &cx.node, &vm)?;
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    if vm.config.values().any(|v| v.contains("cloudinit")) {
        cx.out("generating cloud-init ISO");
    }
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get_mut(&vmid) {
            let pending = std::mem::take(&mut vm.pending);
            vm.config.extend(pending);
            for d in std::mem::take(&mut vm.pending_delete) {
                vm.config.remove(&d);
            }
            vm.running = true;
            vm.started_ms = now_ms();
        }
        Ok(())
    })
}

fn stop_vm(cx: &mut Ctx, vmid: u32, skiplock: bool) -> R {
    let st = cx.root.read()?;
    let vm = match st.vms.get(&vmid) {
        Some(vm) if vm.node == cx.node => vm.clone(),
        _ => {
            return Err(Failure::die(
                [
                    "unable to find configuration file for VM ",
                    &vmid.to_string(),
                    " on node '",
                    &cx.node,
                    "'",
                ]
                .concat(),
            ))
        }
    };
    if !skiplock {
        check_lock(&vm)?;
    }
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get_mut(&vmid) {
            vm.running = false;
        }
        Ok(())
    })
}

fn destroy(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    if vm.config.get("protection").map(String::as_str) == Some("1") {
        return Err(Failure::die(
            [
                "can't remove VM ",
                &vmid.to_string(),
                " - protection mode enabled",
            ]
            .concat(),
        ));
    }
    if vm.running {
        return Err(Failure::die(
            ["VM ", &vmid.to_string(), " is running - destroy failed"].concat(),
        ));
    }
    if p.get("skiplock").map(String::as_str) != Some("1") {
        check_lock(&vm)?;
    }
    // A template whose base volumes back linked clones cannot go.
    for (_, v) in vm.config.iter().filter(|(k, _)| is_drive_key(k)) {
        let volid = v.split(',').next().unwrap_or("");
        if volid.contains("base-")
            && st.vms.values().any(|o| {
                o.config
                    .values()
                    .any(|ov| ov.contains(&["parent=", volid].concat()))
            })
        {
            return Err(Failure::die(
                ["base volume '", volid, "' is still in use by linked cloned"].concat(),
            ));
        }
    }
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    let unreferenced = p.get("destroy-unreferenced-disks").map(String::as_str) == Some("1");
    let root = cx.root.clone();
    let node = cx.node.clone();
    root.update(|st| {
        let referenced: Vec<String> = vm
            .config
            .iter()
            .chain(vm.pending.iter())
            .filter(|(k, _)| is_drive_key(k))
            .map(|(_, v)| v.split(',').next().unwrap_or("").to_string())
            .filter(|volid| volid.contains(&["-", &vmid.to_string(), "-"].concat()))
            .collect();
        for v in referenced {
            free_volume(&root, st, &node, &v);
        }
        if unreferenced {
            let owned: Vec<String> = st
                .volumes
                .iter()
                .filter(|v| {
                    v.vmid == Some(vmid)
                        && (v.node == node || st.storage(&v.storage).is_some_and(|s| s.shared))
                })
                .map(Volume::volid)
                .collect();
            for v in owned {
                free_volume(&root, st, &node, &v);
            }
        }
        st.vms.remove(&vmid);
        Ok(())
    })?;
    if p.get("purge").map(String::as_str) == Some("1") {
        cx.out(
            &[
                "purging VM ",
                &vmid.to_string(),
                " from related configurations..",
            ]
            .concat(),
        );
    }
    Ok(())
}

fn clone(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let src = vmid_of(p, "vmid");
    let newid = vmid_of(p, "newid");
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, src)?;
    let is_template = vm.config.get("template").map(String::as_str) == Some("1");
    let full = match p.get("full") {
        Some(f) => f == "1",
        None => !is_template,
    };
    if !full {
        if !is_template {
            return Err(Failure::die(
                "parameter 'full' - linked clone feature only works for templates",
            ));
        }
        for k in ["storage", "format"] {
            if p.contains_key(k) {
                return Err(Failure::die(
                    ["parameter '", k, "' not allowed for linked clones"].concat(),
                ));
            }
        }
    }
    if st.vms.contains_key(&newid) {
        return Err(Failure::die(
            [
                "unable to create VM ",
                &newid.to_string(),
                ": config file already exists",
            ]
            .concat(),
        ));
    }
    let proxmox_oui = st.at_least(8, 1);
    drop(st);
    let _src_lock = vm_lock(cx, src, 1, "clone failed: ")?;
    let _lock = vm_lock(cx, newid, 1, "clone failed: ")?;
    reserve_vmid(cx, newid, "clone", |_| {
        Failure::die(
            [
                "unable to create VM ",
                &newid.to_string(),
                ": config file already exists",
            ]
            .concat(),
        )
    })?;
    if crate::faults::partial(cx) {
        return Err(Failure::die("clone failed: interrupted by signal"));
    }
    let mut config: BTreeMap<String, String> = BTreeMap::new();
    let target_storage = p.get("storage").cloned();
    for (k, v) in &vm.config {
        if k == "template" || k.starts_with("unused") || k == "lock" {
            continue;
        }
        if k.starts_with("net") && k[3..].chars().all(|c| c.is_ascii_digit()) {
            let rest: Vec<&str> = v.split(',').skip(1).collect();
            let model = v.split(['=', ',']).next().unwrap_or("virtio");
            let mut nv = [model, "=", &random_mac(proxmox_oui)].concat();
            for r in rest {
                nv.push(',');
                nv.push_str(r);
            }
            config.insert(k.clone(), nv);
            continue;
        }
        if is_drive_key(k) && !v.starts_with("none") {
            let volid = v.split(',').next().unwrap_or("").to_string();
            let rest: Vec<(String, String)> = v
                .split(',')
                .skip(1)
                .filter(|kv| !kv.starts_with("size="))
                .filter_map(|kv| kv.split_once('='))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let st = cx.root.read()?;
            let Some(source) = st.find_volume(&cx.node, &volid).cloned() else {
                config.insert(k.clone(), v.clone());
                continue;
            };
            if source.volname.contains("cloudinit") {
                let storage = target_storage.clone().unwrap_or(source.storage.clone());
                let nv = allocate_locked(cx, &storage, newid, 4 << 20, true)?;
                config.insert(k.clone(), [nv.volid().as_str(), ",media=cdrom"].concat());
                continue;
            }
            if full {
                cx.out(&["create full clone of drive ", k, " (", &volid, ")"].concat());
                let storage = target_storage.clone().unwrap_or(source.storage.clone());
                copy_time(cx, &st, &storage, source.size);
                drop(st);
                let nv = allocate_locked(cx, &storage, newid, source.size, false)?;
                cx.out(&["allocated target volume '", &nv.volid(), "'"].concat());
                config.insert(k.clone(), join_drive(&nv.volid(), &rest, Some(source.size)));
            } else {
                cx.out(&["create linked clone of drive ", k, " (", &volid, ")"].concat());
                drop(st);
                let storage = source.storage.clone();
                let nv = allocate_locked(cx, &storage, newid, source.size, false)?;
                let mut rest = rest.clone();
                rest.push(("parent".into(), volid.clone()));
                config.insert(k.clone(), join_drive(&nv.volid(), &rest, Some(source.size)));
            }
            continue;
        }
        config.insert(k.clone(), v.clone());
    }
    let name = p.get("name").cloned().unwrap_or_else(|| {
        [
            "Copy-of-VM-",
            vm.config.get("name").map(String::as_str).unwrap_or(""),
        ]
        .concat()
    });
    config.insert("name".into(), name);
    config.insert("smbios1".into(), ["uuid=", &uuid()].concat());
    config.insert("vmgenid".into(), uuid());
    if let Some(d) = p.get("description") {
        config.insert("description".into(), d.clone());
    }
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get_mut(&newid) {
            vm.config = config;
        }
        Ok(())
    })
}

fn template(cx: &mut Ctx, inv: &Invocation) -> R {
    let vmid = vmid_of(&inv.params, "vmid");
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    if vm.config.get("template").map(String::as_str) == Some("1") {
        return Err(Failure::die("you can't convert a template to a template"));
    }
    if vm.running {
        return Err(Failure::die(
            "you can't convert a VM to template if VM is running",
        ));
    }
    check_lock(&vm)?;
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    let root = cx.root.clone();
    let node = cx.node.clone();
    root.update(|st| {
        let mut renames = Vec::new();
        for (k, v) in &vm.config {
            if is_drive_key(k) && !v.contains("media=cdrom") && !k.starts_with("unused") {
                let volid = v.split(',').next().unwrap_or("").to_string();
                renames.push((k.clone(), volid));
            }
        }
        let mut config = vm.config.clone();
        for (k, volid) in renames {
            let Some(pos) = st
                .volumes
                .iter()
                .position(|x| x.volid() == volid && x.node == node)
            else {
                continue;
            };
            let old_path = root.volume_path(st, &st.volumes[pos]);
            let newname = st.volumes[pos].volname.replace("vm-", "base-");
            st.volumes[pos].volname = newname;
            let new_path = root.volume_path(st, &st.volumes[pos]);
            let _ = std::fs::rename(old_path, new_path);
            let newid = st.volumes[pos].volid();
            if let Some(v) = config.get_mut(&k) {
                *v = v.replacen(&volid, &newid, 1);
            }
        }
        config.insert("template".into(), "1".into());
        if let Some(vm) = st.vms.get_mut(&vmid) {
            vm.config = config;
        }
        Ok(())
    })
}

/// The DHCP address the emulated network hands to a VM.
pub fn dhcp_address(vmid: u32) -> String {
    [
        "10.99.",
        &((vmid / 250) % 250).to_string(),
        ".",
        &(vmid % 250 + 2).to_string(),
    ]
    .concat()
}

fn guest_cmd(cx: &mut Ctx, inv: &Invocation) -> R {
    let vmid = vmid_of(&inv.params, "vmid");
    let command = inv.params.get("command").cloned().unwrap_or_default();
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    let Some(agent) = vm.config.get("agent") else {
        return Err(Failure::die("No QEMU guest agent configured"));
    };
    if !vm.running {
        return Err(Failure::die(
            ["VM ", &vmid.to_string(), " is not running"].concat(),
        ));
    }
    let enabled = agent
        .split(',')
        .any(|kv| matches!(kv, "1" | "enabled=1" | "enabled=on" | "enabled=yes"));
    if !enabled || now_ms() < vm.started_ms + st.settings.agent_after_ms {
        std::thread::sleep(Duration::from_millis(st.settings.agent_ping_ms));
        return Err(Failure::die("QEMU guest agent is not running"));
    }
    match command.as_str() {
        "ping" => Ok(()),
        "network-get-interfaces" => {
            let mac = vm
                .config
                .get("net0")
                .and_then(|n| n.split(',').next())
                .and_then(|m| m.split_once('='))
                .map(|(_, m)| m.to_ascii_lowercase())
                .unwrap_or_default();
            let ip = vm
                .config
                .get("ipconfig0")
                .and_then(|c| c.split(',').find_map(|kv| kv.strip_prefix("ip=")))
                .map(str::to_string);
            let (addr, prefix) = match ip.as_deref() {
                Some(cidr) if cidr.contains('/') => {
                    let (a, p) = cidr.split_once('/').unwrap_or((cidr, "24"));
                    (a.to_string(), p.parse::<u32>().unwrap_or(24))
                }
                _ => (dhcp_address(vmid), 16),
            };
            let out = serde_json::json!([
                {"hardware-address": "00:00:00:00:00:00", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}, {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}], "name": "lo"},
                {"hardware-address": mac, "ip-addresses": [{"ip-address": addr, "ip-address-type": "ipv4", "prefix": prefix}], "name": "eth0"}
            ]);
            cx.out(&crate::pretty_json(&out));
            Ok(())
        }
        other => Err(Failure::die(
            ["pve-sim: guest command '", other, "' is not emulated"].concat(),
        )),
    }
}

/// A VM's configuration as `qm config` prints it: pending changes applied
/// unless `current`, the password masked, the description percent-encoded.
pub fn config_view(vm: &Vm, current: bool) -> BTreeMap<String, String> {
    let mut config = vm.config.clone();
    if !current {
        config.extend(vm.pending.clone());
        for d in &vm.pending_delete {
            config.remove(d);
        }
    }
    for (k, v) in config.iter_mut() {
        match k.as_str() {
            "cipassword" => *v = "**********".to_string(),
            "description" => {
                *v = v
                    .replace('%', "%25")
                    .replace(':', "%3A")
                    .replace('\n', "%0A")
            }
            _ => {}
        }
    }
    config
}

fn print_config(cx: &mut Ctx, vmid: u32, current: bool) -> R {
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    for (k, v) in config_view(&vm, current) {
        cx.out(&[k.as_str(), ": ", &v].concat());
    }
    Ok(())
}

fn status(cx: &mut Ctx, inv: &Invocation) -> R {
    let vmid = vmid_of(&inv.params, "vmid");
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    let s = if vm.running { "running" } else { "stopped" };
    if inv.params.get("verbose").map(String::as_str) == Some("1") {
        let mut lines = BTreeMap::new();
        lines.insert(
            "name",
            vm.config
                .get("name")
                .cloned()
                .unwrap_or_else(|| ["VM ", &vmid.to_string()].concat()),
        );
        lines.insert("qmpstatus", s.to_string());
        if st.at_least(9, 0) {
            // Host memory the QEMU process uses: nothing while stopped.
            let mib = vm
                .config
                .get("memory")
                .and_then(|m| m.parse::<u64>().ok())
                .unwrap_or(512);
            let used = if vm.running { (mib << 20) / 2 } else { 0 };
            lines.insert("memhost", used.to_string());
        }
        lines.insert("status", s.to_string());
        lines.insert("vmid", vmid.to_string());
        lines.insert(
            "cpus",
            vm.config
                .get("cores")
                .cloned()
                .unwrap_or_else(|| "1".into()),
        );
        lines.insert(
            "maxmem",
            (vm.config
                .get("memory")
                .and_then(|m| m.parse::<u64>().ok())
                .unwrap_or(512)
                << 20)
                .to_string(),
        );
        lines.insert(
            "uptime",
            if vm.running {
                ((now_ms() - vm.started_ms) / 1000).to_string()
            } else {
                "0".into()
            },
        );
        if let Some(l) = vm.config.get("lock") {
            lines.insert("lock", l.clone());
        }
        for (k, v) in lines {
            cx.out(&[k, ": ", &v].concat());
        }
    } else {
        cx.out(&["status: ", s].concat());
    }
    Ok(())
}

fn list(cx: &mut Ctx) -> R {
    let st = cx.root.read()?;
    let vms: Vec<(&u32, &Vm)> = st.vms.iter().filter(|(_, v)| v.node == cx.node).collect();
    if vms.is_empty() {
        return Ok(());
    }
    cx.out(&format!(
        "{:>10} {:<20} {:<10} {:<10} {:>12} {:<10}",
        "VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID"
    ));
    for (id, vm) in vms {
        let name = vm
            .config
            .get("name")
            .cloned()
            .unwrap_or_else(|| ["VM ", &id.to_string()].concat());
        let mem = vm
            .config
            .get("memory")
            .cloned()
            .unwrap_or_else(|| "512".into());
        let disk = vm
            .config
            .get("scsi0")
            .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("size=")))
            .and_then(parse_size)
            .unwrap_or(0) as f64
            / (1u64 << 30) as f64;
        let s = if vm.running { "running" } else { "stopped" };
        cx.out(&format!(
            "{:>10} {:<20} {:<10} {:<10} {:>12.2} {:<10}",
            id,
            name,
            s,
            mem,
            disk,
            if vm.running { 1000 + id } else { 0 }
        ));
    }
    Ok(())
}

/// Options the vendored (9.2) schema has but an older host does not
/// (CONTRACT §15): there they are unknown options or keys.
fn version_gates(st: &State, inv: &Invocation) -> R {
    for (key, maj, min) in [("ciupgrade", 8, 0), ("ha-managed", 9, 1)] {
        if inv.params.contains_key(key) && !st.at_least(maj, min) {
            return Err(schema::unknown_option(&inv.command, key));
        }
    }
    let freeze_fs = inv
        .params
        .get("agent")
        .is_some_and(|a| a.split(',').any(|kv| kv.starts_with("freeze-fs=")));
    if freeze_fs && !st.at_least(9, 2) {
        return Err(param_fail(
            "agent",
            "invalid format - format error\nagent.freeze-fs: property is not defined in schema and the schema does not allow additional properties",
            &inv.command,
        ));
    }
    Ok(())
}

/// Runs `qm ARGS`.
pub fn run(cx: &mut Ctx, args: &[String]) -> R {
    let st = cx.root.read()?;
    if args.first().map(String::as_str) == Some("disk") && !at_least(&st, 7, 3) {
        return Err(Failure {
            stderr: "ERROR: unknown command 'qm disk'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n"
                .into(),
            exit: 255,
        });
    }
    let inv = schema::parse_qm(args)?;
    version_gates(&st, &inv)?;
    drop(st);
    let p = &inv.params;
    match inv.command.as_str() {
        "create" => create(cx, &inv),
        "set" => set(cx, &inv),
        "disk import" => import_disk(cx, &inv),
        "disk resize" => resize(cx, &inv),
        "start" => start_vm(cx, vmid_of(p, "vmid")),
        "stop" => stop_vm(
            cx,
            vmid_of(p, "vmid"),
            p.get("skiplock").map(String::as_str) == Some("1"),
        ),
        "shutdown" => stop_vm(cx, vmid_of(p, "vmid"), false),
        "reboot" => {
            let vmid = vmid_of(p, "vmid");
            let st = cx.root.read()?;
            let vm = local_vm(&st, &cx.node, vmid)?;
            if !vm.running {
                return Err(Failure::die(
                    ["VM ", &vmid.to_string(), " not running"].concat(),
                ));
            }
            drop(st);
            stop_vm(cx, vmid, false)?;
            start_vm(cx, vmid)
        }
        "destroy" => destroy(cx, &inv),
        "clone" => clone(cx, &inv),
        "template" => {
            let st = cx.root.read()?;
            let task = at_least(&st, 8, 0);
            drop(st);
            match template(cx, &inv) {
                // `qm template` has no $upid_exit: in-task failures exit 0.
                Err(e) if task && !e.stderr.starts_with("Configuration file") => {
                    cx.err(e.stderr.trim_end());
                    Ok(())
                }
                other => other,
            }
        }
        "guest cmd" => guest_cmd(cx, &inv),
        "config" => print_config(
            cx,
            vmid_of(p, "vmid"),
            p.get("current").map(String::as_str) == Some("1"),
        ),
        "status" => status(cx, &inv),
        "list" => list(cx),
        "unlock" => {
            let vmid = vmid_of(p, "vmid");
            let node = cx.node.clone();
            cx.root.update(|st| match st.vms.get_mut(&vmid) {
                Some(vm) if vm.node == node => {
                    vm.config.remove("lock");
                    Ok(())
                }
                _ => Err(cfg_missing(&node, vmid)),
            })
        }
        other => Err(Failure::die(
            ["pve-sim: 'qm ", other, "' is not emulated"].concat(),
        )),
    }
}
