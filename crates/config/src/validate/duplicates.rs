//! Values that must differ between VMs: vmid, name, static IP and MAC.

use super::Cx;
use crate::error::{ConfigError, ErrorKind};
use crate::span::SpanMap;
use crate::spec::{IpConfig, VmSpec};
use std::collections::HashMap;

/// The values of one VM that must be unique, each as (key, message, value,
/// the key its place is recorded under).
fn unique_values(vm: &VmSpec) -> Vec<(&'static str, String, String, String)> {
    let mut out: Vec<_> = first_nic_values(vm)
        .into_iter()
        .map(|(k, m, v)| {
            let at = if !vm.networks.is_empty() && matches!(k, "ip" | "mac") {
                format!("networks[0].{k}")
            } else {
                k.to_string()
            };
            (k, m, v, at)
        })
        .collect();
    // The NICs after net0 (net0 is the short keys' fields).
    for (i, nic) in vm.networks.iter().enumerate().skip(1) {
        if let Some(IpConfig::Static { address, .. }) = nic.ip {
            let ip = address.to_string();
            let at = format!("networks[{i}].ip");
            out.push(("ip", format!("duplicate static IP {ip}"), ip, at));
        }
        if let Some(mac) = &nic.mac {
            let at = format!("networks[{i}].mac");
            out.push(("mac", format!("duplicate MAC {mac}"), mac.clone(), at));
        }
    }
    out
}

/// The unique values of the VM itself and of `net0`.
fn first_nic_values(vm: &VmSpec) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(id) = vm.vmid {
        out.push(("vmid", format!("duplicate vmid {id}"), id.to_string()));
    }
    out.push((
        "name",
        format!("duplicate name '{}'", vm.name),
        vm.name.clone(),
    ));
    if let Some(IpConfig::Static { address, .. }) = vm.ip {
        let ip = address.to_string();
        out.push(("ip", format!("duplicate static IP {ip}"), ip));
    }
    if let Some(mac) = &vm.mac {
        out.push(("mac", format!("duplicate MAC {mac}"), mac.clone()));
    }
    out
}

impl Cx<'_> {
    /// Reports every value a VM shares with an earlier VM, at the later
    /// VM's value (in `defaults:` when inherited) with a hint that names
    /// where the earlier VM stands. `spans` is indexed as `vms`.
    pub(super) fn duplicates(&mut self, vms: &[VmSpec], spans: &SpanMap) {
        let mut seen: HashMap<(&str, String), usize> = HashMap::new();
        for (index, vm) in vms.iter().enumerate() {
            for (key, message, value, at) in unique_values(vm) {
                let Some(first) = seen.insert((key, value.clone()), index) else {
                    continue;
                };
                // Keep the first VM as the reference for later repeats.
                seen.insert((key, value), first);
                let span = spans.key(index, &at).or(spans.vm(index));
                let help = match spans.vm(first) {
                    Some(at) => format!("first used by the VM at {}:{}", at.line, at.col),
                    None => "first used by an earlier VM".to_string(),
                };
                self.errors
                    .push(ConfigError::at(ErrorKind::Duplicate, span, message).help(help));
            }
        }
    }
}
