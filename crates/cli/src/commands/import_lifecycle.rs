//! What `import` writes of a VM's firmware, placement and lifecycle
//! settings, so that adopting it with the written file changes none of
//! them (a file without `bios: ovmf` would ask to remove the EFI vars, one
//! without `ha` would not keep an HA resource once the VM is managed).

use super::host::{flow_list, scalar};
use pvefleet_model::propstring::PropertyString;
use pvefleet_model::VmId;
use pvefleet_plan::observed::VmConfig;
use pvefleet_plan::Observed;

/// A flow mapping `{k: v, ...}` of the present items.
fn flow_map(items: &[(&str, Option<String>)]) -> Option<String> {
    let parts: Vec<String> = items
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
    (!parts.is_empty()).then(|| format!("{{{}}}", parts.join(", ")))
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "on" | "yes" | "true")
}

/// The keys to write for the VM, in the language's spelling.
pub(super) fn keys(cfg: &VmConfig, observed: &Observed, vmid: VmId) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let get = |k: &str| cfg.effective(k);
    if get("bios") == Some("ovmf") {
        out.push(("bios", "ovmf".to_string()));
    }
    if let Some(efi) = get("efidisk0") {
        if PropertyString::parse(efi)
            .get("pre-enrolled-keys")
            .is_some_and(truthy)
        {
            out.push(("secure_boot", "true".to_string()));
        }
    }
    if let Some(m) = get("machine").filter(|m| !m.contains(',') && !m.contains('=')) {
        out.push(("machine", scalar(m)));
    }
    if get("tpmstate0").is_some() {
        out.push(("tpm", "true".to_string()));
    }
    if let Some(p) = observed.lifecycle.vm_pools.get(&vmid) {
        out.push(("pool", scalar(p)));
    }
    if let Some(s) = get("startup") {
        let p = PropertyString::parse(s);
        let order = p
            .items()
            .find(|(k, _)| k.is_none() || *k == Some("order"))
            .map(|(_, v)| v.to_string());
        let up = p.get("up").map(str::to_string);
        let down = p.get("down").map(str::to_string);
        if let Some(m) = flow_map(&[("order", order), ("up", up), ("down", down)]) {
            out.push(("startup", m));
        }
    }
    if get("protection").is_some_and(truthy) {
        out.push(("protection", "true".to_string()));
    }
    if let Some(h) = observed.lifecycle.ha.get(&vmid) {
        if matches!(
            h.state.as_str(),
            "started" | "stopped" | "ignored" | "disabled"
        ) {
            let group = h.group.as_deref().map(scalar);
            if let Some(m) = flow_map(&[("state", Some(h.state.clone())), ("group", group)]) {
                out.push(("ha", m));
            }
        }
    }
    if let Some(a) = get("agent") {
        let norm = pvefleet_plan::options::normalise("agent", a);
        if norm != "enabled=1" {
            let p = PropertyString::parse(&norm);
            let enabled = p.get("enabled").map(|e| (e == "1").to_string());
            let fstrim = p.get("fstrim_cloned_disks").map(|_| "true".to_string());
            let kind = p.get("type").map(scalar);
            if let Some(m) = flow_map(&[
                ("enabled", enabled),
                ("fstrim_cloned_disks", fstrim),
                ("type", kind),
            ]) {
                out.push(("agent", m));
            }
        }
    }
    if let Some(b) = get("balloon").filter(|b| b.parse::<u64>().is_ok()) {
        out.push(("balloon", b.to_string()));
    }
    if get("numa").is_some_and(truthy) {
        out.push(("numa", "true".to_string()));
    }
    if let Some(h) = get("hotplug") {
        let norm = pvefleet_plan::options::normalise("hotplug", h);
        if norm == "0" {
            out.push(("hotplug", "false".to_string()));
        } else if !norm.is_empty() {
            let items: Vec<String> = norm.split(',').map(str::to_string).collect();
            out.push(("hotplug", flow_list(&items)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvefleet_plan::lifecycle_observed::HaResource;

    #[test]
    fn writes_what_the_vm_has() {
        let id = VmId::new(150).expect("vmid");
        let mut cfg = VmConfig::default();
        for (k, v) in [
            ("bios", "ovmf"),
            (
                "efidisk0",
                "local-lvm:vm-150-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M",
            ),
            ("machine", "pc-q35-8.1"),
            ("tpmstate0", "local-lvm:vm-150-disk-2,size=4M,version=v2.0"),
            ("startup", "2,down=30"),
            ("protection", "1"),
            ("agent", "1,fstrim_cloned_disks=1"),
            ("balloon", "512"),
            ("numa", "1"),
            ("hotplug", "1"),
        ] {
            cfg.current.insert(k.into(), v.into());
        }
        let mut o = Observed::default();
        o.lifecycle.vm_pools.insert(id, "prod".into());
        o.lifecycle.ha.insert(
            id,
            HaResource {
                state: "started".into(),
                group: Some("g1".into()),
            },
        );
        let got: Vec<String> = keys(&cfg, &o, id)
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        assert_eq!(
            got,
            [
                "bios: ovmf",
                "secure_boot: true",
                "machine: pc-q35-8.1",
                "tpm: true",
                "pool: prod",
                "startup: {order: 2, down: 30}",
                "protection: true",
                "ha: {state: started, group: g1}",
                "agent: {enabled: true, fstrim_cloned_disks: true}",
                "balloon: 512",
                "numa: true",
                "hotplug: [network, disk, usb]",
            ]
        );
        assert!(keys(&VmConfig::default(), &Observed::default(), id).is_empty());
    }
}
