//! Drive options, volume allocation under the storage lock, `qm disk import` and `qm disk resize`.

use super::*;

/// What a drive option asks for.
pub(super) enum DriveOp {
    Keep(String),
    New {
        storage: String,
        bytes: u64,
        format: Option<String>,
        rest: Vec<(String, String)>,
    },
    Import {
        storage: String,
        src_path: std::path::PathBuf,
        size: u64,
        format: Option<String>,
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

/// The keys a drive keeps besides its volume and size; `format` only
/// guides an allocation and is dropped after it.
pub(super) fn rest_of(
    parsed: &BTreeMap<String, String>,
    keep_format: bool,
) -> Vec<(String, String)> {
    parsed
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "file" | "import-from" | "size"))
        .filter(|(k, _)| keep_format || *k != "format")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn no_storage(storage: &str) -> Failure {
    Failure::die(["storage '", storage, "' does not exist"].concat())
}

/// A storage a new disk or an import is allocated on: it must exist and
/// hold `images` (check_storage_access names the `storage` parameter).
pub(super) fn storage_check(st: &State, storage: &str, cmd: &str) -> R {
    match st.storage(storage) {
        None => Err(no_storage(storage)),
        Some(s) if !s.content.iter().any(|c| c == "images") => Err(param_fail(
            "storage",
            &["storage '", storage, "' does not support vm images"].concat(),
            cmd,
        )),
        Some(_) => Ok(()),
    }
}

/// The content type a volume name has on its storage (pve-storage
/// `parse_volname` of the dir and LVM plugins), or why it does not parse.
pub(super) fn volname_content(st: &State, volid: &str) -> Result<&'static str, Failure> {
    let (storage, volname) = volid.split_once(':').unwrap_or(("", ""));
    let sdef = st.storage(storage).ok_or_else(|| no_storage(storage))?;
    if !sdef.is_dir() {
        let kind = if sdef.kind == "zfspool" { "zfs" } else { "lvm" };
        let lvm = volname.split_once('-').is_some_and(|(pre, rest)| {
            (pre == "vm" || pre == "base")
                && rest.split_once('-').is_some_and(|(id, tail)| {
                    !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !tail.is_empty()
                        && !tail.contains(char::is_whitespace)
                })
        });
        if lvm && !volname.contains('/') {
            return Ok("images");
        }
        return Err(Failure::die(
            ["unable to parse ", kind, " volume name '", volname, "'"].concat(),
        ));
    }
    let image = |name: &str| {
        [".raw", ".qcow2", ".vmdk", ".subvol"]
            .iter()
            .any(|e| name.len() > e.len() && name.ends_with(e))
            && !name.contains(char::is_whitespace)
    };
    let content = match volname.split_once('/') {
        Some(("iso", f))
            if !f.contains('/') && {
                let l = f.to_ascii_lowercase();
                l.ends_with(".iso") || l.ends_with(".img")
            } =>
        {
            Some("iso")
        }
        Some(("import", f)) if !f.contains('/') => Some("import"),
        Some(("snippets", f)) if !f.is_empty() && !f.contains('/') => Some("snippets"),
        Some(("vztmpl", _)) => Some("vztmpl"),
        Some(("backup", _)) => Some("backup"),
        Some((id, rest))
            if !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && image(rest.rsplit('/').next().unwrap_or("")) =>
        {
            Some("images")
        }
        _ => None,
    };
    content.ok_or_else(|| {
        Failure::die(["unable to parse directory volume name '", volname, "'"].concat())
    })
}

/// `unusedN`: an `images` volume whose name parses; root's access check
/// does not look whether it exists.
fn unused_op(st: &State, value: &str, d: &BTreeMap<String, String>) -> Result<DriveOp, Failure> {
    let file = d.get("file").cloned().unwrap_or_default();
    match volname_content(st, &file)? {
        "images" => Ok(DriveOp::Keep(value.to_string())),
        other => Err(Failure::die(
            [
                "unable to use volume ",
                &file,
                " - content type needs to be 'images' (not '",
                other,
                "')",
            ]
            .concat(),
        )),
    }
}

/// `import-from`: an absolute path to a regular file, or an `images`
/// volume (or `import` from PVE 8.3) that exists.
fn import_op(
    cx: &Ctx,
    st: &State,
    key: &str,
    cmd: &str,
    d: &BTreeMap<String, String>,
) -> Result<DriveOp, Failure> {
    let file = d.get("file").cloned().unwrap_or_default();
    let src = d.get("import-from").cloned().unwrap_or_default();
    let storage = file
        .rsplit_once(':')
        .map(|(s, _)| s.to_string())
        .unwrap_or_default();
    storage_check(st, &storage, cmd)?;
    let (src_path, size) = if src.starts_with('/') {
        let p = cx.root.host_path(&cx.node, &src);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => (p, m.len()),
            _ => return Err(Failure::die(["could not get file size of ", &src].concat())),
        }
    } else {
        let content = volname_content(st, &src)?;
        let import_ok = content == "import" && at_least(st, 8, 3);
        if content != "images" && !import_ok {
            let tail = if at_least(st, 8, 3) {
                "needs to be 'images' or 'import'"
            } else {
                "not an image"
            };
            return Err(param_fail(
                key,
                &[src.as_str(), " has wrong type '", content, "' - ", tail].concat(),
                cmd,
            ));
        }
        let vol = st.find_volume(&cx.node, &src).ok_or_else(|| {
            Failure::die(
                [
                    "cannot import from '",
                    &src,
                    "' - could not get size of ",
                    &src,
                ]
                .concat(),
            )
        })?;
        (cx.root.volume_path(st, vol), vol.size)
    };
    Ok(DriveOp::Import {
        storage,
        src_path,
        size,
        format: d.get("format").cloned(),
        rest: rest_of(d, false),
    })
}

/// A volume that exists, or a device path: content `images` or `iso`
/// (an ISO only as a CD-ROM), its format as the volume's.
fn existing_op(
    cx: &Ctx,
    st: &State,
    key: &str,
    cmd: &str,
    d: &BTreeMap<String, String>,
) -> Result<DriveOp, Failure> {
    let file = d.get("file").cloned().unwrap_or_default();
    let cdrom = d.get("media").map(String::as_str) == Some("cdrom");
    if file.starts_with('/') {
        // Taken as given; it must exist on the node.
        if std::fs::metadata(cx.root.host_path(&cx.node, &file)).is_err() {
            return Err(Failure::die(["volume ", &file, " does not exist"].concat()));
        }
        return Ok(DriveOp::Keep(drive::print(d)));
    }
    let content = volname_content(st, &file)?;
    if content == "iso" && !cdrom {
        return Err(param_fail(
            key,
            "explicit 'media=cdrom' is required for iso images",
            cmd,
        ));
    }
    if content != "images" && content != "iso" {
        return Err(param_fail(
            key,
            "content type needs to be 'images' or 'iso'",
            cmd,
        ));
    }
    let vol = st
        .find_volume(&cx.node, &file)
        .ok_or_else(|| Failure::die(["volume '", &file, "' does not exist"].concat()))?;
    let real = if content == "iso" {
        "raw"
    } else {
        vol.format.as_str()
    };
    if let Some(f) = d.get("format").filter(|f| *f != real) {
        return Err(Failure::die(
            [
                "drive '",
                key,
                "' - volume '",
                &file,
                "' - 'format=",
                f,
                "' option different from storage format '",
                real,
                "'",
            ]
            .concat(),
        ));
    }
    Ok(DriveOp::Existing {
        volid: file,
        rest: rest_of(d, true),
    })
}

/// What a drive option asks for, after the checks a host makes before it
/// allocates anything.
pub(super) fn drive_op(
    cx: &Ctx,
    st: &State,
    cmd: &str,
    key: &str,
    value: &str,
) -> Result<DriveOp, Failure> {
    let fdef = schema::format_of(cmd, key).ok_or_else(|| param_fail(key, "unknown drive", cmd))?;
    let mut d = parse_property_string(fdef, value)
        .map_err(|e| param_fail(key, &["invalid format - ", &e].concat(), cmd))?;
    if key.starts_with("unused") {
        return unused_op(st, value, &d);
    }
    if d.contains_key("import-from") && !at_least(st, 7, 2) {
        return Err(param_fail(
            key,
            "invalid format - invalid key in comma-separated list property: import-from",
            cmd,
        ));
    }
    drive::rules(key, &d).map_err(|w| drive::unparsable(key, &w, cmd))?;
    drive::import_syntax(key, &d, cmd)?;
    drive::cleanup_path(key, &mut d, cmd)?;
    if d.get("import-from").is_some_and(|s| schema::perl_true(s)) {
        return import_op(cx, st, key, cmd, &d);
    }
    let file = d.get("file").cloned().unwrap_or_default();
    if let Some(storage) = file.strip_suffix(":cloudinit") {
        // Allocated by name: vdisk_alloc does not ask for `images`.
        st.storage(storage).ok_or_else(|| no_storage(storage))?;
        return Ok(DriveOp::Cloudinit {
            storage: storage.to_string(),
        });
    }
    let cdrom = d.get("media").map(String::as_str) == Some("cdrom");
    if let Some(c) = schema::new_disk_re()
        .and_then(|r| r.captures(&file))
        .filter(|_| !cdrom)
    {
        let Some(storage) = c.get(2).map(|m| m.as_str().to_string()) else {
            return Err(Failure::die(
                "no storage ID specified (and no default storage)",
            ));
        };
        storage_check(st, &storage, cmd)?;
        let gib: f64 = c
            .get(3)
            .map(|m| m.as_str())
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        let bytes = match key {
            "efidisk0" | "tpmstate0" => firmware_volume_bytes(st, &storage, key, &d),
            _ => (gib * (1u64 << 30) as f64) as u64,
        };
        return Ok(DriveOp::New {
            storage,
            bytes,
            format: d.get("format").cloned(),
            rest: rest_of(&d, false),
        });
    }
    if file == "none" || file == "cdrom" {
        return Ok(DriveOp::Keep(drive::print(&d)));
    }
    existing_op(cx, st, key, cmd, &d)
}

/// The size of a new EFI vars or TPM state volume, whatever size the
/// value asks for (qemu-server `create_efidisk`, `TPMSTATE_DISK_SIZE`):
/// the OVMF vars template's size (`efitype=4m`: 540672 bytes, `2m`, the
/// default: 131072), rounded up to LVM's 4 MiB extents on block storages;
/// TPM state is 4 MiB.
fn firmware_volume_bytes(
    st: &State,
    storage: &str,
    key: &str,
    d: &BTreeMap<String, String>,
) -> u64 {
    const MIB4: u64 = 4 << 20;
    if key == "tpmstate0" {
        return MIB4;
    }
    let vars = match d.get("efitype").map(String::as_str) {
        Some("4m") => 540_672,
        _ => 131_072,
    };
    if st.storage(storage).is_some_and(|s| s.is_dir()) {
        vars
    } else {
        vars.div_ceil(MIB4) * MIB4
    }
}

pub(super) fn join_drive(volid: &str, rest: &[(String, String)], size: Option<u64>) -> String {
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

/// What an allocation makes: a disk in a format (the storage's default when
/// none is asked for), or a cloud-init drive.
#[derive(Clone, Copy)]
pub(super) enum Make<'a> {
    Disk(Option<&'a str>),
    Cloudinit,
}

/// The format a storage allocates: LVM-thin and ZFS only `raw` (the
/// plugin dies on others), dir storages `raw`, `qcow2` or `vmdk` (another
/// extension does not parse as a volume file name).
fn alloc_format(dir: bool, make: Make, name: &str) -> Result<String, Failure> {
    let fmt = match make {
        Make::Disk(Some(f)) => f.to_string(),
        Make::Cloudinit if dir => "qcow2".to_string(),
        _ => "raw".to_string(),
    };
    if !dir && fmt != "raw" {
        return Err(Failure::die(
            [
                "unsupported format '",
                &fmt,
                "' at /usr/share/perl5/PVE/Storage/LvmThinPlugin.pm line 102.",
            ]
            .concat(),
        ));
    }
    if dir && !matches!(fmt.as_str(), "raw" | "qcow2" | "vmdk") {
        return Err(Failure::die(
            ["unable to parse volume filename '", name, ".", &fmt, "'"].concat(),
        ));
    }
    Ok(fmt)
}

/// Allocates a volume (under the state lock) and creates its sparse file.
pub(super) fn allocate(
    root: &Root,
    st: &mut State,
    node: &str,
    storage: &str,
    vmid: u32,
    bytes: u64,
    make: Make,
) -> Result<Volume, Failure> {
    let dir = st.storage(storage).is_some_and(|s| s.is_dir());
    let id = vmid.to_string();
    let name = match make {
        Make::Cloudinit => ["vm-", &id, "-cloudinit"].concat(),
        Make::Disk(_) => {
            let n = st.next_disk_name(node, storage, vmid).to_string();
            ["vm-", &id, "-disk-", &n].concat()
        }
    };
    let format = alloc_format(dir, make, &name)?;
    let volname = if dir {
        [&id, "/", &name, ".", &format].concat()
    } else {
        name
    };
    let vol = Volume {
        storage: storage.to_string(),
        node: node.to_string(),
        volname,
        size: bytes,
        content: "images".into(),
        format,
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

pub(super) fn free_volume(root: &Root, st: &mut State, node: &str, volid: &str) {
    if let Some(pos) = st.volumes.iter().position(|v| {
        v.volid() == volid && (v.node == node || st.storage(&v.storage).is_some_and(|s| s.shared))
    }) {
        let v = st.volumes.remove(pos);
        let _ = std::fs::remove_file(root.volume_path(st, &v));
    }
}

/// A storage's allocation lock (CONTRACT §11.3), held while it lives.
#[expect(dead_code, reason = "the locks are held for their Drop")]
pub(super) enum StorageLock {
    /// The node's flock `/var/lock/pve-manager/pve-storage-ID`.
    Local(std::fs::File),
    /// The cluster-wide pmxcfs lock `storage-ID`.
    Shared(crate::cfs::Guard),
}

/// Takes the storage's allocation lock and holds it for the model's
/// allocation time: a flock on the node for a local storage, the pmxcfs
/// lock `storage-ID` for a shared one (CONTRACT §11.3, §19). Like
/// Proxmox, it gives up after 10 s with the matching message.
pub(super) fn storage_lock(cx: &mut Ctx, storage: &str) -> Result<StorageLock, Failure> {
    let st = cx.root.read()?;
    let shared = st.storage(storage).is_some_and(|s| s.shared);
    let lock = if shared {
        StorageLock::Shared(crate::cfs::acquire(
            cx,
            &["storage-", storage].concat(),
            10,
        )?)
    } else {
        let host = ["/var/lock/pve-manager/pve-storage-", storage].concat();
        let path = cx
            .root
            .emulated_path(&cx.node, &host)
            .unwrap_or_else(|| cx.root.join("locks").join(&host[1..]));
        let Some(f) = cx.root.try_lock_path(&path, Duration::from_secs(10)) else {
            return Err(Failure::die(
                ["can't lock file '", &host, "' - got timeout"].concat(),
            ));
        };
        StorageLock::Local(f)
    };
    if st.settings.alloc_ms > 0 {
        std::thread::sleep(Duration::from_millis(st.settings.alloc_ms));
    }
    Ok(lock)
}

/// Allocates a volume for `vmid` on `storage` of this node under the
/// storage's allocation lock, as Proxmox's `vdisk_alloc` does.
pub(super) fn allocate_locked(
    cx: &mut Ctx,
    storage: &str,
    vmid: u32,
    bytes: u64,
    make: Make,
) -> Result<Volume, Failure> {
    let _lock = storage_lock(cx, storage)?;
    let root = cx.root.clone();
    let node = cx.node.clone();
    let (vol, st) = root.update(|st| {
        let vol = allocate(&root, st, &node, storage, vmid, bytes, make)?;
        Ok((vol, st.clone()))
    })?;
    lvm::created(cx, &st, &vol);
    Ok(vol)
}

/// The progress line qemu-img prints when a copy of `bytes` is done.
pub(super) fn copied(cx: &mut Ctx, bytes: u64) {
    let size = fmt_size(bytes);
    cx.out(&["transferred ", &size, " of ", &size, " (100.00%)"].concat());
}

/// Sleeps for a copy of `bytes` at the storage's bandwidth; copies on one
/// storage at once share it (modelled as taking turns on one disk).
pub(super) fn copy_time(cx: &Ctx, st: &State, storage: &str, bytes: u64) {
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

/// Applies drive options: allocates, imports, attaches. Returns output lines.
pub(super) fn apply_drives(
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
                format,
                rest,
            } => {
                let vol =
                    allocate_locked(cx, &storage, vmid, bytes, Make::Disk(format.as_deref()))?;
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
                let vol = allocate_locked(cx, &storage, vmid, 4 << 20, Make::Cloudinit)?;
                created.push(vol.volid());
                let v = [vol.volid().as_str(), ",media=cdrom"].concat();
                cx.out(&[key.as_str(), ": successfully created disk '", &v, "'"].concat());
                config.insert(key, v);
            }
            DriveOp::Import {
                storage,
                src_path,
                size,
                format,
                rest,
            } => {
                let st = cx.root.read()?;
                copy_time(cx, &st, &storage, size);
                if !src_path.exists() {
                    return Err(Failure::die(
                        ["import source vanished: ", &src_path.display().to_string()].concat(),
                    ));
                }
                let vol = allocate_locked(cx, &storage, vmid, size, Make::Disk(format.as_deref()))?;
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

pub(super) fn drive_ops(
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
    // qemu-server allocates in `valid_drive_names` order, which ends with
    // efidisk0 and tpmstate0.
    ops.sort_by_key(|(k, _)| matches!(k.as_str(), "efidisk0" | "tpmstate0"));
    Ok(ops)
}

pub(super) fn import_disk(cx: &mut Ctx, inv: &Invocation) -> R {
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
    let vol = allocate_locked(cx, &storage, vmid, size, Make::Disk(None))?;
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

pub(super) fn resize(cx: &mut Ctx, inv: &Invocation) -> Result<(), Failure> {
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
        let grown = root.update(|st| {
            let mut grown = None;
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
                grown = Some((st.volumes[v].clone(), st.clone()));
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
            Ok(grown)
        })?;
        if let Some((vol, st)) = grown {
            lvm::resized(cx, &st, &vol, current);
        }
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
