//! NICs: the `netN` value of a [`NicSpec`], how an observed NIC takes the
//! managed items, and the update of the NICs after `net0` (changed, added,
//! removed) with their `ipconfigN`.

use super::{hotplugs, recorded, NICS_RECORD_PREFIX};
use crate::observed::VmConfig;
use crate::options;
use crate::problem::PlanProblem;
use crate::types::{Change, VmPlan};
use pvefleet_model::hardware::NicSpec;
use pvefleet_model::spec::VmSpec;
use pvefleet_model::{MacAddr, Net, QmOptions};

/// The `netN` a NIC of the file asks for: its model on its bridge, with
/// its VLAN tag, MAC, firewall and MTU when it sets them.
pub fn nic_net(nic: &NicSpec) -> Net {
    let mut net = Net::new(nic.model);
    net.macaddr = nic.mac.as_deref().and_then(|m| MacAddr::parse(m).ok());
    net.bridge = Some(nic.bridge.clone());
    net.tag = nic.vlan;
    net.firewall = nic.firewall;
    net.mtu = nic.mtu;
    net
}

/// True when `have` matches what `want` manages: model, bridge, tag and MAC
/// as [`Net::same_managed`], and `firewall`/`mtu` when `want` sets them (an
/// unset `firewall` is off).
pub fn same_nic(have: &Net, want: &Net) -> bool {
    let firewall_ok = want
        .firewall
        .is_none_or(|w| have.firewall.unwrap_or(false) == w);
    let mtu_ok = want.mtu.is_none_or(|w| have.mtu == Some(w));
    have.same_managed(want) && firewall_ok && mtu_ok
}

/// Takes what `want` manages into `have` ([`Net::apply_managed`], plus
/// `firewall` and `mtu` when set), keeping every other item.
pub fn apply_nic(have: &mut Net, want: &Net) {
    have.apply_managed(want);
    if want.firewall.is_some() {
        have.firewall = want.firewall;
    }
    if want.mtu.is_some() {
        have.mtu = want.mtu;
    }
}

/// What the NIC update adds to the VM's `qm set`.
#[derive(Default)]
pub(crate) struct NicUpdate {
    /// `netN`/`ipconfigN` to set.
    pub options: QmOptions,
    /// Keys to delete.
    pub delete: Vec<String>,
    /// Keys a running VM takes only at its next boot.
    pub cold: Vec<String>,
    /// True when a NIC's bridge may have changed (it must exist).
    pub net_changed: bool,
}

/// The changes of the NICs after `net0`: each that differs is sent back
/// with its admin-set items and MAC kept (a NIC moved to another bridge
/// without its `mac` in the file is refused, see [`check_not_shifted`]);
/// `ipconfigN` follows the file; a
/// NIC the record lists that the file no longer has is deleted with its
/// `ipconfigN` (no data is lost).
pub(crate) fn update(
    spec: &VmSpec,
    cfg: &VmConfig,
    vp: &mut VmPlan,
) -> Result<NicUpdate, PlanProblem> {
    let mut u = NicUpdate::default();
    let hot = hotplugs(cfg, "network");
    for (i, nic) in spec.networks.iter().enumerate().skip(1) {
        let key = format!("net{i}");
        let want = nic_net(nic);
        let have_text = cfg.effective(&key);
        let have = have_text.and_then(|t| Net::parse(t).ok());
        if let Some(h) = &have {
            check_not_shifted(&key, h, &want)?;
        }
        if !have.as_ref().is_some_and(|h| same_nic(h, &want)) {
            let new = match have {
                Some(mut h) => {
                    apply_nic(&mut h, &want);
                    h
                }
                None => want,
            }
            .to_string();
            vp.changes.push(Change {
                key: key.clone(),
                from: have_text.map(str::to_string),
                to: Some(new.clone()),
            });
            u.options.push(&key, new);
            u.net_changed = true;
            if !hot {
                u.cold.push(key);
            }
        }
        let ipkey = format!("ipconfig{i}");
        let want_ip = options::ipconfig(nic.ip.as_ref(), nic.ip6.as_ref());
        let have_ip = cfg.effective(&ipkey);
        if want_ip.as_deref() != have_ip {
            vp.changes.push(Change {
                key: ipkey.clone(),
                from: have_ip.map(str::to_string),
                to: want_ip.clone(),
            });
            match want_ip {
                Some(v) => u.options.push(&ipkey, v),
                None => u.delete.push(ipkey.clone()),
            }
            // Cloud-init: the guest reads it at its next boot.
            u.cold.push(ipkey);
        }
    }
    let kept = spec.networks.len().max(1);
    for key in recorded(cfg, NICS_RECORD_PREFIX) {
        let index: Option<usize> = key.strip_prefix("net").and_then(|n| n.parse().ok());
        if index.is_none_or(|i| i < kept) || cfg.effective(&key).is_none() {
            continue;
        }
        vp.changes.push(Change {
            key: key.clone(),
            from: cfg.effective(&key).map(str::to_string),
            to: None,
        });
        let ipkey = key.replacen("net", "ipconfig", 1);
        if !hot {
            u.cold.push(key.clone());
        }
        u.delete.push(key);
        if cfg.effective(&ipkey).is_some() {
            u.delete.push(ipkey.clone());
            u.cold.push(ipkey);
        }
    }
    Ok(u)
}

/// A NIC the file moves to another bridge without naming its MAC: NICs
/// are matched by their place in `networks`, so one removed or inserted
/// before it shifts it, and its MAC (which DHCP, firewall rules and the
/// guest's network config know) would go with another network. Refused
/// unless the file names the MAC.
fn check_not_shifted(key: &str, have: &Net, want: &Net) -> Result<(), PlanProblem> {
    let moved = have.bridge.is_some() && have.bridge != want.bridge && want.macaddr.is_none();
    match (&have.macaddr, moved) {
        (Some(mac), true) => Err(PlanProblem::NicShifted {
            key: key.to_string(),
            from: have.bridge.clone().unwrap_or_default(),
            to: want.bridge.clone().unwrap_or_default(),
            mac: mac.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The bridges of every NIC of the spec, `net0` first.
pub fn bridges(spec: &VmSpec) -> impl Iterator<Item = &str> {
    std::iter::once(spec.bridge.as_str())
        .chain(spec.networks.iter().skip(1).map(|n| n.bridge.as_str()))
}
