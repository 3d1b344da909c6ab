//! `qm disk unlink <vmid> --idlist a,b [--force 1]` (`qm unlink` before
//! PVE 7.3): qemu-server's `unlink` hands the list to `update_vm` as
//! `delete`. A used disk becomes `unusedN` unless `force`; with `force`,
//! and always for `unusedN`, the volume is destroyed
//! (`try_deallocate_drive`). A CD-ROM is only detached (a cloud-init
//! drive's volume is freed).

use super::*;

pub(super) fn unlink(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let force = p.get("force").is_some_and(|f| schema::perl_true(f));
    let ids: Vec<String> = p
        .get("idlist")
        .map(|l| {
            schema::split_list(l)
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .unwrap_or_default();
    let keys = schema::config_keys();
    if let Some(bad) = ids.iter().find(|d| !keys.contains(&d.as_str())) {
        return Err(param_fail(
            "delete",
            &["unknown option '", bad, "'"].concat(),
            "disk unlink",
        ));
    }
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    check_lock(&vm)?;
    // update_vm's check_protection, as for `qm set --delete`.
    if vm.config.get("protection").map(String::as_str) == Some("1") {
        if let Some(d) = ids.iter().find(|d| is_drive_key(d)) {
            return Err(Failure::die(
                ["can't remove drive '", d, "' - protection mode enabled"].concat(),
            ));
        }
    }
    drop(st);
    let _lock = vm_lock(cx, vmid, 10, "")?;
    let mut line = [
        "update VM ",
        &vmid.to_string(),
        ": -delete ",
        &ids.join(","),
    ]
    .concat();
    if let Some(f) = p.get("force") {
        line.push_str(" -force ");
        line.push_str(f);
    }
    cx.out(&line);
    let root = cx.root.clone();
    let node = cx.node.clone();
    let mut warnings = Vec::new();
    root.update(|st| {
        let mut config = match st.vms.get(&vmid) {
            Some(vm) => vm.config.clone(),
            None => return Err(cfg_missing(&node, vmid)),
        };
        for d in &ids {
            let Some(v) = config.remove(d) else {
                warnings.push(
                    [
                        "cannot delete '",
                        d,
                        "' - not set in current configuration!",
                    ]
                    .concat(),
                );
                continue;
            };
            let volid = v.split(',').next().unwrap_or("").to_string();
            let cdrom = v.contains("media=cdrom");
            let destroyed = d.starts_with("unused") || (force && is_drive_key(d) && !cdrom);
            let cloudinit = cdrom && volid.contains("cloudinit");
            if destroyed || cloudinit {
                free_volume(&root, st, &node, &volid);
            } else if is_drive_key(d) && !cdrom {
                let n = (0..256)
                    .find(|i| !config.contains_key(&["unused", &i.to_string()].concat()))
                    .unwrap_or(0);
                config.insert(["unused", &n.to_string()].concat(), volid);
            }
        }
        if let Some(vm) = st.vms.get_mut(&vmid) {
            vm.config = config;
        }
        Ok(())
    })?;
    for w in warnings {
        cx.err(&w);
    }
    Ok(())
}
