//! `qm create` and `qm set`: option values, checks made before the host is touched, pending changes.

use super::*;

pub(super) fn normalise_net(value: &str, proxmox_oui: bool) -> String {
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

pub(super) fn normalise_tags(v: &str) -> String {
    let mut t: Vec<String> = schema::split_list(v)
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    t.sort();
    t.dedup();
    t.join(";")
}

pub(super) fn normalise_value(key: &str, value: &str, proxmox_oui: bool) -> String {
    if key.starts_with("net") && key[3..].chars().all(|c| c.is_ascii_digit()) {
        return normalise_net(value, proxmox_oui);
    }
    match key {
        "tags" => normalise_tags(value),
        "memory" => value.strip_prefix("current=").unwrap_or(value).to_string(),
        _ => value.to_string(),
    }
}

pub(super) fn default_boot(config: &BTreeMap<String, String>) -> String {
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

pub(super) const SKIP: &[&str] = &[
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
pub(super) fn looks_hashed(pw: &str) -> bool {
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
pub(super) fn is_windows(ostype: Option<&String>) -> bool {
    ostype.is_some_and(|o| o.starts_with('w'))
}

pub(super) fn plain_params(
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
pub(super) fn boot_order(boot: Option<&String>) -> Option<String> {
    let fdef = schema::format_of("set", "boot")?;
    parse_property_string(fdef, boot?).ok()?.remove("order")
}

/// Checks made with the host's state while the parameters are verified:
/// a `custom-NAME` CPU model must be defined on the cluster.
pub(super) fn host_param_checks(st: &State, cmd: &str, params: &BTreeMap<String, String>) -> R {
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

/// `qm set` refuses a balloon target above the VM's memory: the memory of
/// the same call, else its pending or current memory, else the default
/// 512 MiB; a balloon of 0 is always fine (update_vm_api; CONTRACT §18
/// names only the same-call case). The check runs when either is given.
pub(super) fn balloon_check(params: &BTreeMap<String, String>, vm: &Vm) -> R {
    if !params.contains_key("memory") && !params.contains_key("balloon") {
        return Ok(());
    }
    let memory = params
        .get("memory")
        .filter(|m| schema::perl_true(m))
        .or_else(|| vm.pending.get("memory"))
        .or_else(|| vm.config.get("memory"))
        .and_then(|m| {
            m.split(',').find_map(|kv| match kv.split_once('=') {
                Some(("current", v)) => Some(v),
                None => Some(kv),
                _ => None,
            })
        })
        .and_then(|m| m.parse::<f64>().ok())
        .unwrap_or(512.0);
    let balloon = params
        .get("balloon")
        .or_else(|| vm.pending.get("balloon"))
        .or_else(|| vm.config.get("balloon"))
        .and_then(|b| b.parse::<f64>().ok())
        .unwrap_or(0.0);
    if balloon > memory {
        return Err(Failure::die(
            "balloon value too large (must be smaller than assigned memory)",
        ));
    }
    Ok(())
}

/// `hookscript` on `qm set`: an existing snippet (check_hookscript).
fn hookscript_check(st: &State, node: &str, params: &BTreeMap<String, String>) -> R {
    let Some(volid) = params.get("hookscript") else {
        return Ok(());
    };
    let fail = |m: String| param_fail("hookscript", &m, "set");
    let content = volname_content(st, volid).map_err(|f| fail(f.stderr.trim_end().to_string()))?;
    if content != "snippets" {
        return Err(fail(
            ["'", volid, "' is not in the snippets directory"].concat(),
        ));
    }
    if st.find_volume(node, volid).is_none() {
        return Err(fail(["script '", volid, "' does not exist"].concat()));
    }
    Ok(())
}

/// `--archive` restores a backup, which pve-sim does not emulate; drive
/// options conflict with it. A false value (`0`) is no archive.
fn archive_check(params: &BTreeMap<String, String>) -> R {
    let Some(_) = params.get("archive").filter(|a| schema::perl_true(a)) else {
        return Ok(());
    };
    if let Some(k) = params
        .keys()
        .find(|k| is_drive_key(k) && !k.starts_with("unused"))
    {
        return Err(param_fail(
            k,
            "option conflicts with option 'archive'",
            "create",
        ));
    }
    Err(Failure::die(
        "pve-sim: restoring a backup ('qm create --archive') is not emulated",
    ))
}

/// How a `kill` fault ends a create or clone, `secs` after it made what
/// it was allowed to: the process dies (SIGKILL: a shell sees 137) with no
/// cleanup and no further output, the VM's flock released by its death.
pub(super) fn killed(secs: u64) -> Failure {
    std::thread::sleep(Duration::from_secs(secs));
    Failure {
        stderr: String::new(),
        exit: 137,
    }
}

/// Claims `vmid` cluster-wide for a create or clone in progress: a config
/// holding only `lock: <lock>` on this node. `taken` says why an existing
/// VM (on any node) stops it.
pub(super) fn reserve_vmid(
    cx: &Ctx,
    vmid: u32,
    lock: &str,
    taken: impl FnOnce(&Vm) -> Failure,
) -> R {
    let node = cx.node.clone();
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get(&vmid) {
            return Err(taken(vm));
        }
        st.vms.insert(vmid, Vm::reserved(&node, lock));
        Ok(())
    })
}

/// True when a running VM keeps a change of `key` to `new` pending
/// (qemu-server `vmconfig_hotplug_pending`): `hotplug` when the old or
/// new value has `memory` or `cpu` (unset is `network,disk,usb`);
/// `balloon` when it turns the balloon device on or off (unset or non-zero
/// is on); `agent` unless the VM had one and only `fstrim_cloned_disks`
/// changes (`vmconfig_update_agent`). Other keys: false.
fn hot_or_cold(vm: &Vm, key: &str, new: &str) -> bool {
    let old = vm.config.get(key).map(String::as_str);
    match key {
        "hotplug" => {
            let old = old.unwrap_or("network,disk,usb");
            let has = |v: &str, f: &str| v.split(',').any(|x| x.trim() == f);
            ["memory", "cpu"].iter().any(|f| has(new, f) || has(old, f))
        }
        "balloon" => {
            let on = |v: Option<&str>| v.is_none_or(|v| v.trim() != "0");
            on(old) != on(Some(new))
        }
        "agent" => {
            let Some(old) = old else { return true };
            let items = |v: &str| {
                let mut items: Vec<(String, String)> = v
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => ("enabled".to_string(), kv.to_string()),
                    })
                    .filter(|(k, _)| k != "fstrim_cloned_disks")
                    .collect();
                items.sort();
                items
            };
            items(old) != items(new)
        }
        _ => false,
    }
}

pub(super) fn create(cx: &mut Ctx, inv: &Invocation) -> R {
    archive_check(&inv.params)?;
    if let Some(pool) = inv.params.get("pool") {
        crate::lifecycle::check_create_pool(&cx.root.read()?, pool)?;
    }
    let aliased = drive::cdrom_alias(&inv.params);
    let p = &aliased;
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
    if let Some((disks, secs)) = cx.kill.take() {
        // The VM's flock is held until the process dies.
        let allocating = ops
            .into_iter()
            .filter(|(_, op)| !matches!(op, DriveOp::Keep(_) | DriveOp::Existing { .. }))
            .take(disks.unwrap_or(usize::MAX))
            .collect();
        let _ = apply_drives(cx, vmid, allocating, &mut BTreeMap::new(), &mut Vec::new());
        return Err(killed(secs));
    }
    let mut config = plain;
    let mut created = Vec::new();
    let result = apply_drives(cx, vmid, ops, &mut config, &mut created)
        .and_then(|_| p.get("vga").map_or(Ok(()), |v| drive::vga_clipboard(v)));
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
    let pool = p.get("pool").cloned();
    cx.root.update(|st| {
        if let Some(vm) = st.vms.get_mut(&vmid) {
            vm.config = config;
        }
        if let Some(pool) = &pool {
            crate::lifecycle::join_pool(st, pool, vmid);
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

pub(super) fn set(cx: &mut Ctx, inv: &Invocation) -> R {
    let aliased = drive::cdrom_alias(&inv.params);
    let p = &aliased;
    let vmid = vmid_of(p, "vmid");
    let list = |key: &str| -> Vec<String> {
        p.get(key)
            .map(|d| {
                schema::split_list(d)
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let reverts = list("revert");
    // `cdrom` in --delete means ide2.
    let deletes: Vec<String> = list("delete")
        .into_iter()
        .map(|d| if d == "cdrom" { "ide2".into() } else { d })
        .collect();
    let changing: Vec<&String> = p.keys().filter(|k| !SKIP.contains(&k.as_str())).collect();
    if changing.is_empty() && deletes.is_empty() && reverts.is_empty() {
        return Err(Failure::die("no options specified"));
    }
    // update_vm_api's checks of --revert and --delete, with its texts.
    let keys = schema::config_keys();
    for r in &reverts {
        if !keys.contains(&r.as_str()) {
            return Err(param_fail(
                "revert",
                &["unknown option '", r, "'"].concat(),
                "set",
            ));
        }
        if p.contains_key(r) {
            return Err(param_fail(
                "delete",
                &[
                    "you can't use '-",
                    r,
                    "' and -revert ",
                    r,
                    "' at the same time",
                ]
                .concat(),
                "set",
            ));
        }
    }
    for d in &deletes {
        if p.contains_key(d) {
            return Err(param_fail(
                "delete",
                &[
                    "you can't use '-",
                    d,
                    "' and -delete ",
                    d,
                    "' at the same time",
                ]
                .concat(),
                "set",
            ));
        }
        if reverts.contains(d) {
            return Err(param_fail(
                "revert",
                &[
                    "you can't use '-delete ",
                    d,
                    "' and '-revert ",
                    d,
                    "' at the same time",
                ]
                .concat(),
                "set",
            ));
        }
        if !keys.contains(&d.as_str()) {
            return Err(param_fail(
                "delete",
                &["unknown option '", d, "'"].concat(),
                "set",
            ));
        }
    }
    host_param_checks(&cx.root.read()?, "set", p)?;
    let st = cx.root.read()?;
    hookscript_check(&st, &cx.node, p)?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    if p.get("skiplock").map(String::as_str) != Some("1") {
        check_lock(&vm)?;
    }
    balloon_check(p, &vm)?;
    // A protected VM keeps its drives (update_vm_api's check_protection).
    if vm.config.get("protection").map(String::as_str) == Some("1") {
        if let Some(d) = deletes.iter().find(|d| is_drive_key(d)) {
            return Err(Failure::die(
                ["can't remove drive '", d, "' - protection mode enabled"].concat(),
            ));
        }
    }
    let ops = drive_ops(cx, &st, "set", p)?;
    let plain = plain_params(cx, p, !is_windows(vm.config.get("ostype")))?;
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    // The update line lists the options as given, sorted.
    let mut line = ["update VM ", &vmid.to_string(), ":"].concat();
    for (k, v) in inv
        .params
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
            let deleted = deletes.iter().any(|d| d == dev);
            if deleted || (!config.contains_key(dev) && !p.contains_key(dev)) {
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
    // A running VM's disk options that cannot change live stay pending.
    let (ops, cold_drives) = pending_drive_ops(&vm, ops);
    apply_drives(cx, vmid, ops, &mut config, &mut created)?;
    if let Some(vga) = p.get("vga") {
        drive::vga_clipboard(vga)?;
    }
    if has_cloudinit {
        // The new drive is generated with the call's cicustom.
        let mut ci = config.clone();
        if let Some(c) = p.get("cicustom") {
            ci.insert("cicustom".into(), c.clone());
        }
        let st = cx.root.read()?;
        crate::snippets::generation_check(&cx.root, &st, &cx.node, &ci)?;
        cx.out("generating cloud-init ISO");
    }
    // agent, balloon and hotplug depend on the change (hot_or_cold).
    const COLD: &[&str] = &[
        "memory", "cores", "sockets", "cpu", "scsihw", "machine", "bios", "vga", "serial0", "numa",
        "ostype",
    ];
    let mut pending = vm.pending.clone();
    let mut pending_delete = vm.pending_delete.clone();
    // --revert drops pending changes.
    for r in &reverts {
        pending.remove(r);
        pending_delete.retain(|d| d != r);
    }
    pending.extend(cold_drives);
    for (k, v) in plain {
        let cold = COLD.contains(&k.as_str()) || hot_or_cold(&vm, &k, &v);
        if vm.running && cold {
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
            vm.pending_delete = pending_delete;
        }
        Ok(())
    })?;
    for w in warnings {
        cx.err(&w);
    }
    Ok(())
}
