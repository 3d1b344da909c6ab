//! Firmware, placement and lifecycle keys: how they are spelled on `qm
//! create`/`qm set`, how an observed value is normalised for comparison,
//! and the steps outside `qm set`: EFI vars and TPM state volumes, pool
//! membership (`pvesh set /pools/POOL`), HA resources (`ha-manager`).
//!
//! Host facts relied on (qemu-server `update_vm_api`,
//! `vmconfig_hotplug_pending`; pve-manager `PVE/API2/Pool.pm`;
//! pve-ha-manager `PVE/API2/HA/Resources.pm`):
//! - `bios`, `machine` and `numa` of a running VM stay pending until it
//!   restarts, and so do new `efidisk0`/`tpmstate0` volumes; `startup` and
//!   `protection` apply at once; `balloon` at once unless it turns the
//!   balloon device on or off, `agent` at once when only
//!   `fstrim_cloned_disks` changes, `hotplug` unless memory or cpu is
//!   involved (`vmconfig_hotplug_pending`, `vmconfig_update_agent`).
//! - `qm set --efidisk0 STORAGE:1,...` allocates a new EFI vars volume at
//!   any time; `--delete efidisk0` detaches it (it becomes `unusedN`): the
//!   VM boots with fresh EFI vars, its boot entries and enrolled keys are
//!   gone. The same holds for `tpmstate0` and the TPM's secrets.
//!   `pre-enrolled-keys` and the TPM `version` only take effect on a new
//!   volume, so changing them means a new volume too.
//! - `qm create --pool P` fails when `P` does not exist; on an existing VM
//!   the pool changes through the pools API: `pvesh set /pools/P --vms ID`
//!   adds (refused while the VM is in another pool), `--delete 1` removes.
//! - `ha-manager add vm:ID` registers a resource; `set` changes its state
//!   or group; `remove` drops it (`qm destroy --purge` also does).

use crate::diff::Planner;
use crate::observed::{PveVersion, VmConfig};
use crate::problem::PlanProblem;
use crate::types::{Change, Step, VmPlan};
use pvefleet_model::ha::HaManager;
use pvefleet_model::lifecycle::{Bios, Hotplug};
use pvefleet_model::propstring::PropertyString;
use pvefleet_model::spec::VmSpec;
use pvefleet_model::{Command, Qm, QmOptions, VmId};

/// Keys of this module a running VM takes only at its next boot.
/// (`agent`, `balloon` and `hotplug` depend on the change: [`more_cold`].)
pub const COLD: &[&str] = &["bios", "machine", "numa", "efidisk0", "tpmstate0"];

/// The `hotplug` features when the key is unset (or `1`).
const HOTPLUG_DEFAULT: &str = "network,disk,usb";

/// The order of hot-plug features in a normalised value.
const HOTPLUG_ORDER: &[&str] = &["network", "disk", "cpu", "memory", "usb", "cloudinit"];

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// The keys of this module compared on every VM, with their desired
/// values (`None`: the file leaves the key alone).
pub fn managed_values(spec: &VmSpec) -> Vec<(&'static str, Option<String>)> {
    let fw = &spec.firmware;
    let lc = &spec.lifecycle;
    vec![
        ("bios", Some(fw.bios.as_str().to_string())),
        ("machine", fw.machine().map(str::to_string)),
        ("startup", lc.startup.map(|s| s.value())),
        ("protection", Some(flag(lc.protection))),
        ("agent", lc.agent.as_ref().map(|a| a.value())),
        ("balloon", lc.balloon.map(|b| b.to_string())),
        ("numa", lc.numa.map(flag)),
        ("hotplug", lc.hotplug.as_ref().map(Hotplug::value)),
    ]
}

/// The options of this module on `qm create` and on the `qm set` after a
/// clone: firmware (with the EFI vars and TPM state volumes on the VM's
/// storage) and each lifecycle key the file sets. `agent` is pushed by
/// [`crate::options::common_options`] in its place; `pool` is not among
/// them (`qm set` has no `--pool`).
pub fn options(spec: &VmSpec, o: &mut QmOptions) {
    let fw = &spec.firmware;
    let lc = &spec.lifecycle;
    if fw.bios == Bios::Ovmf {
        o.push("bios", "ovmf");
    }
    if let Some(m) = fw.machine() {
        o.push("machine", m);
    }
    if let Some(efi) = fw.efidisk0(&spec.storage) {
        o.push("efidisk0", efi);
    }
    if let Some(tpm) = fw.tpmstate0(&spec.storage) {
        o.push("tpmstate0", tpm);
    }
    if let Some(s) = lc.startup {
        o.push("startup", s.value());
    }
    if lc.protection {
        o.push("protection", "1");
    }
    if let Some(b) = lc.balloon {
        o.push("balloon", b.to_string());
    }
    if let Some(n) = lc.numa {
        o.push("numa", flag(n));
    }
    if let Some(h) = &lc.hotplug {
        o.push("hotplug", h.value());
    }
}

/// Normalises an observed value of a key of this module; `None` for other
/// keys.
pub fn normalise(key: &str, value: &str) -> Option<String> {
    let bool_word = |v: &str| flag(matches!(v, "1" | "on" | "yes" | "true"));
    Some(match key {
        "protection" | "numa" => bool_word(value),
        "startup" => {
            let p = PropertyString::parse(value);
            let mut out = PropertyString::new();
            let order = p
                .items()
                .find(|(k, _)| k.is_none() || *k == Some("order"))
                .map(|(_, v)| v.to_string());
            for (k, v) in [("order", order), ("up", p.get("up").map(str::to_string))] {
                if let Some(v) = v {
                    out = out.with(k, v);
                }
            }
            if let Some(d) = p.get("down") {
                out = out.with("down", d);
            }
            out.to_string()
        }
        "agent" => {
            let p = PropertyString::parse(value);
            let enabled = p
                .items()
                .find(|(k, _)| k.is_none() || *k == Some("enabled"))
                .map(|(_, v)| bool_word(v))
                .unwrap_or_else(|| "0".into());
            let mut out = PropertyString::new().with("enabled", enabled);
            if p.get("fstrim_cloned_disks")
                .is_some_and(|v| bool_word(v) == "1")
            {
                out = out.with("fstrim_cloned_disks", "1");
            }
            if let Some(t) = p.get("type") {
                out = out.with("type", t);
            }
            out.to_string()
        }
        "hotplug" => {
            let v = if value == "1" { HOTPLUG_DEFAULT } else { value };
            if v == "0" {
                return Some("0".into());
            }
            let have: Vec<&str> = v.split(',').map(str::trim).collect();
            HOTPLUG_ORDER
                .iter()
                .filter(|f| have.contains(f))
                .copied()
                .collect::<Vec<_>>()
                .join(",")
        }
        _ => return None,
    })
}

/// True when a running VM takes a `hotplug` change only at its next boot:
/// when the old or the new value has `memory` or `cpu`
/// (`vmconfig_hotplug_pending`); other changes apply at once.
pub fn hotplug_is_cold(old: Option<&str>, new: &str) -> bool {
    let old = old.unwrap_or(HOTPLUG_DEFAULT);
    let has = |v: &str, f: &str| v.split(',').any(|x| x.trim() == f);
    ["memory", "cpu"].iter().any(|f| has(new, f) || has(old, f))
}

/// Changes beyond [`COLD`] that a running VM takes at its next boot: the
/// EFI vars / TPM state steps after the main `qm set` (`set`), and the
/// `hotplug`, `balloon` and `agent` changes qemu-server cannot hot-apply.
pub(crate) fn more_cold(firmware: &FirmwareSteps, set: &Command, cfg: &VmConfig) -> Vec<String> {
    let mut out = Vec::new();
    for step in &firmware.after {
        if let Command::Qm(Qm::Set {
            options, delete, ..
        }) = &step.command
        {
            out.extend(options.keys().map(str::to_string));
            out.extend(delete.iter().cloned());
        }
    }
    if let Command::Qm(Qm::Set { options, .. }) = set {
        let cold = [
            ("hotplug", hotplug_is_cold as fn(Option<&str>, &str) -> bool),
            ("balloon", balloon_is_cold),
            ("agent", agent_is_cold),
        ];
        for (key, is_cold) in cold {
            // Compared with the running value: a pending one is not live.
            let live = cfg.current.get(key).map(String::as_str);
            if options.get(key).is_some_and(|new| is_cold(live, new)) {
                out.push(key.into());
            }
        }
    }
    out
}

/// A `balloon` change of a running VM waits for its restart only when it
/// turns the balloon device on or off (unset or non-zero is on).
pub fn balloon_is_cold(old: Option<&str>, new: &str) -> bool {
    let on = |v: Option<&str>| v.is_none_or(|v| v.trim() != "0");
    on(old) != on(Some(new))
}

/// An `agent` change of a running VM applies at once only when the VM had
/// the option and nothing but `fstrim_cloned_disks` changes
/// (`vmconfig_update_agent`).
pub fn agent_is_cold(old: Option<&str>, new: &str) -> bool {
    let Some(old) = old else { return true };
    let items = |v: &str| -> Vec<(String, String)> {
        let mut items: Vec<(String, String)> = PropertyString::parse(v)
            .items()
            .map(|(k, v)| (k.unwrap_or("enabled").to_string(), v.to_string()))
            .filter(|(k, _)| k != "fstrim_cloned_disks")
            .collect();
        items.sort();
        items
    };
    items(old) != items(new)
}

/// The default of a key of this module Proxmox leaves out of the config.
pub fn implicit_default(key: &str) -> Option<&'static str> {
    match key {
        "bios" => Some("seabios"),
        "protection" | "numa" => Some("0"),
        "hotplug" => Some(HOTPLUG_DEFAULT),
        _ => None,
    }
}

/// A volume key of the config (`efidisk0`, `tpmstate0`) as wanted and had.
struct VolumeKey<'a> {
    key: &'static str,
    want: Option<String>,
    have: Option<&'a str>,
    /// The items of the value that only a new volume changes.
    fixed: &'static [(&'static str, &'static str)],
    what: &'static str,
}

/// The `qm set` steps of EFI vars / TPM state changes that cannot travel
/// in the VM's main `qm set`.
#[derive(Default)]
pub(crate) struct FirmwareSteps {
    /// Before the main `qm set` (detaching a volume it replaces).
    pub(crate) before: Vec<Step>,
    /// After it (when the main `qm set` first lifts the protection).
    pub(crate) after: Vec<Step>,
}

/// How a refused change of `key` reads.
fn loss_text(key: &str, change: &Change) -> String {
    let from = change.from.as_deref().unwrap_or("");
    match &change.to {
        Some(to) => format!("{key}: {from} -> {to}"),
        None => format!("removing {key} ({from})"),
    }
}

impl VolumeKey<'_> {
    /// The fixed items of `value`, defaults filled in. Without enrolled
    /// keys the size of the EFI vars does not matter: a VM an admin made
    /// with the older `2m` vars keeps them as long as it needs no Secure
    /// Boot.
    fn fixed_of(&self, value: &str) -> Vec<String> {
        let p = PropertyString::parse(value);
        let enrolled = p.get("pre-enrolled-keys").is_some_and(|v| v == "1");
        self.fixed
            .iter()
            .filter(|(k, _)| enrolled || *k != "efitype")
            .map(|(k, default)| p.get(k).unwrap_or(default).to_string())
            .collect()
    }
}

/// `bios: ovmf` (always sent with `efitype=4m`) and `tpm` need qemu-server
/// 7.1 (PVE 7.1 added 4m EFI vars with pre-enrolled keys and `tpmstate0`,
/// for Windows 11), checked where `wants` asks for a new volume.
pub(crate) fn check_firmware_version(
    spec: &VmSpec,
    node: &str,
    version: PveVersion,
    wants: (bool, bool),
) -> Result<(), PlanProblem> {
    if version.at_least(7, 1) {
        return Ok(());
    }
    let (efi, tpm) = wants;
    let what = if efi && spec.firmware.bios == Bios::Ovmf {
        "bios: ovmf"
    } else if tpm && spec.firmware.tpm {
        "tpm"
    } else {
        return Ok(());
    };
    Err(PlanProblem::FirmwareNeedsVersion {
        what,
        node: node.to_string(),
        version: version.to_string(),
    })
}

/// `ha.group` needs HA groups, which PVE 9 (pve-ha-manager 5) migrated to
/// HA rules: with no group left, `ha-manager add/set --group` is refused
/// (`invalid parameter 'group': ha groups have been migrated to rules`).
pub(crate) fn check_ha_group(
    spec: &VmSpec,
    node: &str,
    version: PveVersion,
) -> Result<(), PlanProblem> {
    let group = spec.lifecycle.ha.as_ref().and_then(|h| h.group.as_ref());
    if group.is_some() && version.at_least(9, 0) {
        return Err(PlanProblem::HaGroupsMigrated {
            node: node.to_string(),
            version: version.to_string(),
        });
    }
    Ok(())
}

impl Planner<'_> {
    /// The EFI vars and TPM state volumes: a new one goes in `set`; one
    /// the file drops or whose fixed items change is data loss, refused
    /// unless `--allow-data-loss`, then detached (a separate `qm set
    /// --delete` first when a new volume replaces it, since one call may
    /// not set and delete a key). A protected VM refuses to lose a drive:
    /// when the file lifts the protection, the detaching follows the main
    /// `qm set`; when it keeps it, that is a problem.
    pub(crate) fn firmware_volumes(
        &self,
        spec: &VmSpec,
        cfg: &VmConfig,
        (vmid, node, version): (VmId, &str, PveVersion),
        vp: &mut VmPlan,
        set: &mut QmOptions,
        delete: &mut Vec<String>,
    ) -> Result<FirmwareSteps, PlanProblem> {
        let keys = [
            VolumeKey {
                key: "efidisk0",
                want: spec.firmware.efidisk0(&spec.storage),
                have: cfg.effective("efidisk0"),
                fixed: &[("efitype", "2m"), ("pre-enrolled-keys", "0")],
                what: "the VM's EFI vars (its boot entries and enrolled Secure Boot keys)",
            },
            VolumeKey {
                key: "tpmstate0",
                want: spec.firmware.tpmstate0(&spec.storage),
                have: cfg.effective("tpmstate0"),
                fixed: &[("version", "v1.2")],
                what: "the VM's TPM state (keys sealed to it, such as BitLocker's or LUKS's)",
            },
        ];
        let protected = cfg
            .current
            .get("protection")
            .is_some_and(|p| normalise("protection", p).as_deref() == Some("1"));
        let mut steps = FirmwareSteps::default();
        for k in keys {
            let replace = match (&k.want, k.have) {
                (None, None) => continue,
                (Some(w), Some(h)) if k.fixed_of(w) == k.fixed_of(h) => continue,
                (Some(_), None) => false,
                (_, Some(_)) => true,
            };
            if k.want.is_some() {
                let efi = k.key == "efidisk0";
                check_firmware_version(spec, node, version, (efi, !efi))?;
            }
            let change = Change {
                key: k.key.into(),
                from: k.have.map(str::to_string),
                to: k.want.clone(),
            };
            if replace && !self.input.allow_data_loss {
                return Err(PlanProblem::DataLoss {
                    change: loss_text(k.key, &change),
                    what: k.what,
                });
            }
            if replace && protected && spec.lifecycle.protection {
                return Err(PlanProblem::ProtectedDrive {
                    vmid,
                    key: k.key.to_string(),
                });
            }
            vp.changes.push(change);
            let delete_step = || {
                Step::exit(Command::Qm(Qm::Set {
                    vmid,
                    options: QmOptions::new(),
                    delete: vec![k.key.to_string()],
                }))
            };
            match (&k.want, replace) {
                (Some(w), false) => set.push(k.key, w.clone()),
                // Protected now: the main `qm set` lifts the protection,
                // then the volume goes, then the new one comes.
                (want, true) if protected => {
                    steps.after.push(delete_step());
                    if let Some(w) = want {
                        let mut o = QmOptions::new();
                        o.push(k.key, w.clone());
                        steps.after.push(Step::exit(Command::Qm(Qm::Set {
                            vmid,
                            options: o,
                            delete: Vec::new(),
                        })));
                    }
                }
                (Some(w), true) => {
                    steps.before.push(delete_step());
                    set.push(k.key, w.clone());
                }
                (None, _) => delete.push(k.key.to_string()),
            }
        }
        Ok(steps)
    }

    /// The pool the file asks for must exist, when the cluster's pools
    /// were read.
    pub(crate) fn check_pool(&self, spec: &VmSpec) -> Result<(), PlanProblem> {
        let Some(pool) = &spec.lifecycle.pool else {
            return Ok(());
        };
        match &self.input.observed.lifecycle.pools {
            Some(pools) if !pools.contains(pool) => {
                Err(PlanProblem::MissingPool { pool: pool.clone() })
            }
            _ => Ok(()),
        }
    }

    /// Moves an existing VM into the file's pool: out of its old pool
    /// first, then into the new one. A file without `pool` leaves the
    /// membership alone.
    pub(crate) fn pool_steps(
        &self,
        spec: &VmSpec,
        vmid: VmId,
        vp: &mut VmPlan,
    ) -> Result<Vec<Step>, PlanProblem> {
        let Some(want) = &spec.lifecycle.pool else {
            return Ok(Vec::new());
        };
        let have = self.input.observed.lifecycle.vm_pools.get(&vmid);
        if have == Some(want) {
            return Ok(Vec::new());
        }
        self.check_pool(spec)?;
        vp.changes.push(Change {
            key: "pool".into(),
            from: have.cloned(),
            to: Some(want.clone()),
        });
        let mut steps = Vec::new();
        if let Some(old) = have {
            steps.push(Step::exit(Command::PoolMember {
                pool: old.clone(),
                vmid,
                remove: true,
            }));
        }
        steps.push(Step::exit(Command::PoolMember {
            pool: want.clone(),
            vmid,
            remove: false,
        }));
        Ok(steps)
    }

    /// The VM's HA resource as the file asks: added, changed, or removed
    /// when the file has no `ha` (not while adopting: a file that never
    /// named `ha` must not take away an admin's resource).
    pub(crate) fn ha_steps(
        &self,
        spec: &VmSpec,
        vmid: VmId,
        adopting: bool,
        vp: &mut VmPlan,
    ) -> Vec<Step> {
        let observed = &self.input.observed.lifecycle;
        let have = observed.ha.get(&vmid);
        let want = spec.lifecycle.ha.as_ref();
        let text = |state: &str, group: Option<&str>| match group {
            Some(g) => format!("state={state},group={g}"),
            None => format!("state={state}"),
        };
        let command = match (want, have) {
            (None, None) => return Vec::new(),
            (None, Some(_)) if adopting => return Vec::new(),
            (Some(w), None) => HaManager::Add {
                vmid,
                state: w.state,
                group: w.group.clone(),
            },
            (Some(w), Some(h)) => {
                let same_group = !observed.ha_read || h.group == w.group;
                if h.state == w.state.as_str() && same_group {
                    return Vec::new();
                }
                HaManager::Set {
                    vmid,
                    state: w.state,
                    group: w.group.clone(),
                    had_group: h.group.is_some(),
                }
            }
            (None, Some(_)) => HaManager::Remove { vmid },
        };
        vp.changes.push(Change {
            key: "ha".into(),
            from: have.map(|h| text(&h.state, h.group.as_deref())),
            to: want.map(|w| text(w.state.as_str(), w.group.as_deref())),
        });
        vec![Step::exit(Command::HaManager(command))]
    }

    /// After a create: the pool (when `qm create --pool` did not put the
    /// VM there, as after a clone) and the HA resource.
    pub(crate) fn created_lifecycle(&self, spec: &VmSpec, vmid: VmId, vp: &mut VmPlan) {
        if let Some(pool) = &spec.lifecycle.pool {
            let in_create = vp.steps.iter().any(|s| {
                matches!(&s.command, Command::Qm(Qm::Create { options, .. }) if options.get("pool").is_some())
            });
            if !in_create {
                vp.steps.push(Step::exit(Command::PoolMember {
                    pool: pool.clone(),
                    vmid,
                    remove: false,
                }));
            }
        }
        if let Some(ha) = &spec.lifecycle.ha {
            vp.steps.push(Step::exit(Command::HaManager(HaManager::Add {
                vmid,
                state: ha.state,
                group: ha.group.clone(),
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_observed_values() {
        assert_eq!(
            normalise("startup", "2,down=30").as_deref(),
            Some("order=2,down=30")
        );
        assert_eq!(
            normalise("startup", "up=5,order=1").as_deref(),
            Some("order=1,up=5")
        );
        assert_eq!(normalise("agent", "1").as_deref(), Some("enabled=1"));
        assert_eq!(
            normalise("agent", "enabled=1,fstrim_cloned_disks=1,freeze-fs=0").as_deref(),
            Some("enabled=1,fstrim_cloned_disks=1")
        );
        assert_eq!(
            normalise("hotplug", "1").as_deref(),
            Some("network,disk,usb")
        );
        assert_eq!(
            normalise("hotplug", "usb,disk").as_deref(),
            Some("disk,usb")
        );
        assert_eq!(normalise("hotplug", "0").as_deref(), Some("0"));
        assert_eq!(normalise("protection", "1").as_deref(), Some("1"));
        assert_eq!(normalise("memory", "1"), None);
    }
}
