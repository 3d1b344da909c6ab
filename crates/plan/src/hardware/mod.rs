//! A VM's extra hardware: data disks (`disks:`) and NICs (`networks:`).
//!
//! Created with the VM (in its `qm create`, or the `qm set` after a clone);
//! updated in place: a grown disk is resized, changed drive options are set
//! on the same volume, a new disk or NIC is added, a NIC no longer in the
//! file is deleted, a disk no longer in the file is destroyed only with
//! `--allow-data-loss` ([`crate::problem::PlanProblem::DiskRemoved`]).
//!
//! **Which slots are pvefleet's.** A slot the file names is managed. To know
//! later which ones it named, the VM's description records them, one line
//! each for disks and NICs (`pvefleet-disks: scsi1 scsi2`,
//! `pvefleet-nics: net1 net2`), written with the rest of the description.
//! A slot the file no longer names is removed only when that record lists
//! it; any other disk or NIC (an admin's) is left alone.
//!
//! Host facts relied on (qemu-server `src/PVE/QemuServer.pm`,
//! `src/PVE/API2/Qemu.pm`):
//! - `--scsiN STORAGE:SIZE` allocates SIZE GiB, decimals allowed
//!   (CONTRACT §3.4); sizes are written exactly ([`gib_text`]).
//! - `vmconfig_update_disk`: on a running VM, a change of `discard`,
//!   `iothread`, `cache` or `ssd` (same volume) stays pending until the
//!   next boot; `backup` is written at once.
//! - Hot-plug of new disks and NICs, NIC changes and removals follow the
//!   VM's `hotplug` option (default `network,disk,usb`); what it leaves out
//!   waits for the next boot.
//! - `qm disk unlink --idlist SLOT --force 1` destroys the volume
//!   (`try_deallocate_drive` with `force`); without `force` the volume
//!   becomes `unusedN`, which `qm set --delete unusedN` destroys.
//! - `qm disk resize` refuses to shrink (CONTRACT §6).
//! - `ipconfigN` is cloud-init: the guest sees it at its next boot.
//!
//! [`gib_text`]: pvefleet_model::hardware::gib_text

pub mod disks;
pub mod nics;

use crate::observed::VmConfig;
use crate::types::{Change, VmPlan};
use pvefleet_model::spec::VmSpec;
use pvefleet_model::QmOptions;

/// The description line that records the data disk slots pvefleet manages.
pub const DISKS_RECORD_PREFIX: &str = "pvefleet-disks: ";

/// The description line that records the NICs after `net0` pvefleet manages.
pub const NICS_RECORD_PREFIX: &str = "pvefleet-nics: ";

/// The record lines of the spec's slots, for the description (none when
/// the VM has no extra disk or NIC).
pub fn record_lines(spec: &VmSpec) -> Vec<String> {
    let mut out = Vec::new();
    if !spec.disks.is_empty() {
        let slots: Vec<&str> = spec.disks.iter().map(|d| d.slot.as_str()).collect();
        out.push([DISKS_RECORD_PREFIX, &slots.join(" ")].concat());
    }
    if spec.networks.len() > 1 {
        let nics: Vec<String> = (1..spec.networks.len())
            .map(|i| format!("net{i}"))
            .collect();
        out.push([NICS_RECORD_PREFIX, &nics.join(" ")].concat());
    }
    out
}

/// The slots an observed description records under `prefix`.
pub fn recorded(cfg: &VmConfig, prefix: &str) -> Vec<String> {
    cfg.effective("description")
        .and_then(|d| d.lines().find_map(|l| l.trim().strip_prefix(prefix)))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// True for a record line of the description (`pvefleet-disks: ...`,
/// `pvefleet-nics: ...`): pvefleet's, not the user's text.
pub fn is_record_line(line: &str) -> bool {
    let l = line.trim();
    l.starts_with(DISKS_RECORD_PREFIX) || l.starts_with(NICS_RECORD_PREFIX)
}

/// Drops the description change when it is only the record lines: the
/// plan shows the disks and NICs themselves.
pub(crate) fn hide_record_change(vp: &mut VmPlan) {
    let strip = |d: &str| -> String {
        d.lines()
            .filter(|l| !is_record_line(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    vp.changes.retain(|c: &Change| {
        c.key != "description" || c.from.as_deref().map(strip) != c.to.as_deref().map(strip)
    });
}

/// The options that create the spec's data disks and the NICs after
/// `net0`, for `qm create` and the `qm set` after a clone.
pub fn create_options(spec: &VmSpec, o: &mut QmOptions) {
    for disk in &spec.disks {
        o.push(&disk.slot, disks::new_disk_value(disk));
    }
    for (i, nic) in spec.networks.iter().enumerate().skip(1) {
        o.push(&format!("net{i}"), nics::nic_net(nic).to_string());
        if let Some(ip) = crate::options::ipconfig(nic.ip.as_ref(), nic.ip6.as_ref()) {
            o.push(&format!("ipconfig{i}"), ip);
        }
    }
}

/// True when the VM's `hotplug` option lets `what` (`disk`, `network`)
/// be hot-plugged: its default is `network,disk,usb`; `0` is none, `1`
/// the default.
pub(crate) fn hotplugs(cfg: &VmConfig, what: &str) -> bool {
    match cfg.effective("hotplug") {
        None | Some("1") => matches!(what, "network" | "disk" | "usb"),
        Some("0") => false,
        Some(list) => list.split(',').any(|w| w.trim() == what),
    }
}

/// What the hardware update adds after the VM's `qm set`.
pub(crate) struct HardwareUpdate {
    /// Resizes of data disks, before the `qm set`: a drive change that
    /// stays pending takes the volume's size when it is set, so it must
    /// see the new one.
    pub resizes: Vec<crate::types::Step>,
    /// The removal of disks, after the `qm set`.
    pub steps: Vec<crate::types::Step>,
    /// Keys a running VM takes only at its next boot.
    pub cold: Vec<String>,
}

impl crate::diff::Planner<'_> {
    /// The storage of every data disk must exist on the node and hold VM
    /// disks, as the VM's own storage ([`Self::check_storage`]).
    pub(crate) fn check_disk_storages(
        &self,
        spec: &VmSpec,
        node: &str,
    ) -> Result<(), crate::problem::PlanProblem> {
        for disk in spec.disks.iter().filter(|d| d.storage != spec.storage) {
            let mut other = spec.clone();
            other.storage.clone_from(&disk.storage);
            self.check_storage(&other, node)?;
        }
        Ok(())
    }

    /// Adds the NIC and disk changes of an existing VM to its `qm set`
    /// (`set`), and returns the steps that follow it.
    pub(crate) fn hardware_update(
        &self,
        spec: &VmSpec,
        cfg: &VmConfig,
        existing: &crate::observed::ClusterVm,
        version: crate::observed::PveVersion,
        vp: &mut VmPlan,
        set: &mut crate::types::Step,
    ) -> Result<HardwareUpdate, crate::problem::PlanProblem> {
        use pvefleet_model::{Command, Qm};
        hide_record_change(vp);
        if spec.networks.len() > 1 {
            // A missing bridge says more than a NIC that looks shifted.
            self.check_bridge(spec, &existing.node)?;
        }
        let nics = nics::update(spec, cfg, vp)?;
        if nics.net_changed {
            self.check_bridge(spec, &existing.node)?;
        }
        let disks = disks::update(
            spec,
            cfg,
            existing.vmid,
            version,
            self.input.allow_data_loss,
            vp,
        )?;
        if !disks.options.is_empty() {
            self.check_disk_storages(spec, &existing.node)?;
        }
        if let Command::Qm(Qm::Set {
            options, delete, ..
        }) = &mut set.command
        {
            for (k, v) in nics.options.iter().chain(disks.options.iter()) {
                options.push(k, v);
            }
            delete.extend(nics.delete);
        }
        let mut cold = nics.cold;
        cold.extend(disks.cold);
        Ok(HardwareUpdate {
            resizes: disks.resizes,
            steps: disks.steps,
            cold,
        })
    }
}
