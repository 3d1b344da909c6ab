//! Read-only views: `qm config`, `qm status`, `qm list`, and the guest agent.

use super::*;

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

/// The guest agent's preconditions, in Proxmox's order (CONTRACT §10);
/// a guest whose image has no agent (`guests.json`) never answers.
pub(super) fn agent_ready(cx: &Ctx, st: &State, vmid: u32) -> R {
    let vm = local_vm(st, &cx.node, vmid)?;
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
    let name = vm.config.get("name").cloned().unwrap_or_default();
    let installed = super::guest_exec::script(&cx.root, &name).agent != Some(false);
    if !enabled || !installed || now_ms() < vm.started_ms + st.settings.agent_after_ms {
        std::thread::sleep(Duration::from_millis(st.settings.agent_ping_ms));
        return Err(Failure::die("QEMU guest agent is not running"));
    }
    Ok(())
}

pub(super) fn guest_cmd(cx: &mut Ctx, inv: &Invocation) -> R {
    let vmid = vmid_of(&inv.params, "vmid");
    let command = inv.params.get("command").cloned().unwrap_or_default();
    let st = cx.root.read()?;
    agent_ready(cx, &st, vmid)?;
    let vm = local_vm(&st, &cx.node, vmid)?;
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

pub(super) fn print_config(cx: &mut Ctx, vmid: u32, current: bool) -> R {
    let st = cx.root.read()?;
    let vm = local_vm(&st, &cx.node, vmid)?;
    for (k, v) in config_view(&vm, current) {
        cx.out(&[k.as_str(), ": ", &v].concat());
    }
    Ok(())
}

pub(super) fn status(cx: &mut Ctx, inv: &Invocation) -> R {
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

pub(super) fn list(cx: &mut Ctx) -> R {
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
