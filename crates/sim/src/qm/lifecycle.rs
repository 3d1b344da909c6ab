//! Power and lifecycle: start, stop, destroy, clone, template.

use super::*;

pub(super) fn bridge_check(st: &State, node: &str, vm: &Vm) -> R {
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

pub(super) fn start_vm(cx: &mut Ctx, vmid: u32) -> R {
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
    let cloudinit = vm.config.values().any(|v| v.contains("cloudinit"));
    if cloudinit {
        // Pending values apply first, then the drive is generated.
        let mut ci = vm.config.clone();
        ci.extend(vm.pending.clone());
        crate::snippets::generation_check(&cx.root, &st, &cx.node, &ci)?;
    }
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    if cloudinit {
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

pub(super) fn stop_vm(cx: &mut Ctx, vmid: u32, skiplock: bool) -> R {
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

pub(super) fn destroy(cx: &mut Ctx, inv: &Invocation) -> R {
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
    let purge = p.get("purge").map(String::as_str) == Some("1");
    crate::lifecycle::before_destroy(&st, vmid, purge)?;
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
        // Its pool membership always goes (remove_vm_access); its HA
        // resource with --purge.
        if purge {
            crate::lifecycle::purge(st, vmid);
        } else {
            for members in st.pools.values_mut() {
                members.remove(&vmid);
            }
        }
        Ok(())
    })?;
    if purge {
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

pub(super) fn clone(cx: &mut Ctx, inv: &Invocation) -> R {
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
    // A `kill` fault: the clone dies once it made so many volumes.
    let kill = cx.kill.take();
    let mut made = 0;
    let killed_after = |made: usize| match kill {
        Some((Some(n), secs)) if made >= n => Some(killed(secs)),
        _ => None,
    };
    if let Some(f) = killed_after(made) {
        return Err(f);
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
                let nv = allocate_locked(cx, &storage, newid, 4 << 20, Make::Cloudinit)?;
                made += 1;
                if let Some(f) = killed_after(made) {
                    return Err(f);
                }
                config.insert(k.clone(), [nv.volid().as_str(), ",media=cdrom"].concat());
                continue;
            }
            if full {
                cx.out(&["create full clone of drive ", k, " (", &volid, ")"].concat());
                let storage = target_storage.clone().unwrap_or(source.storage.clone());
                copy_time(cx, &st, &storage, source.size);
                drop(st);
                let nv = allocate_locked(cx, &storage, newid, source.size, Make::Disk(None))?;
                cx.out(&["allocated target volume '", &nv.volid(), "'"].concat());
                made += 1;
                if let Some(f) = killed_after(made) {
                    return Err(f);
                }
                config.insert(k.clone(), join_drive(&nv.volid(), &rest, Some(source.size)));
            } else {
                cx.out(&["create linked clone of drive ", k, " (", &volid, ")"].concat());
                drop(st);
                let storage = source.storage.clone();
                let nv = allocate_locked(cx, &storage, newid, source.size, Make::Disk(None))?;
                made += 1;
                if let Some(f) = killed_after(made) {
                    return Err(f);
                }
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
    if let Some((_, secs)) = kill {
        // Killed after all its volumes, before the config was written.
        return Err(killed(secs));
    }
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

pub(super) fn template(cx: &mut Ctx, inv: &Invocation) -> R {
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
