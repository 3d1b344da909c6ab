//! Data disks: the value that allocates one, and the update of the disks
//! a VM has (grown, options changed, added, removed).

use super::{hotplugs, recorded, DISKS_RECORD_PREFIX};
use crate::observed::{PveVersion, VmConfig};
use crate::problem::{PlanNote, PlanProblem};
use crate::types::{Change, Check, Step, VmPlan};
use pvefleet_model::drive::{CacheMode, Discard};
use pvefleet_model::hardware::{gib_text, DataDisk};
use pvefleet_model::size::format_size;
use pvefleet_model::spec::VmSpec;
use pvefleet_model::{Command, Drive, Qm, QmOptions, VmId};

/// The value that allocates a data disk: `STORAGE:SIZE_GiB` and its
/// options (`local-lvm:10,discard=on,iothread=1`).
pub fn new_disk_value(disk: &DataDisk) -> String {
    let mut items = vec![[disk.storage.as_str(), ":", &gib_text(disk.size)].concat()];
    let mut put = |k: &str, v: &str| items.push([k, "=", v].concat());
    if let Some(cache) = &disk.cache {
        put("cache", cache);
    }
    if disk.discard == Some(true) {
        put("discard", "on");
    }
    if disk.iothread == Some(true) {
        put("iothread", "1");
    }
    if disk.ssd == Some(true) {
        put("ssd", "1");
    }
    if disk.backup == Some(false) {
        put("backup", "0");
    }
    items.join(",")
}

/// The drive options pvefleet manages, as their effect: discard on, ssd,
/// iothread, cache mode (unset: Proxmox's default), backed up.
type Effect = (bool, bool, bool, Option<CacheMode>, bool);

fn effect(d: &Drive) -> Effect {
    (
        d.discard == Some(Discard::On),
        d.ssd.unwrap_or(false),
        d.iothread.unwrap_or(false),
        d.cache,
        d.backup.unwrap_or(true),
    )
}

/// Takes the options the file sets into an observed drive, keeping its
/// volume and every other item.
fn apply_options(d: &mut Drive, disk: &DataDisk) {
    if let Some(on) = disk.discard {
        d.discard = on.then_some(Discard::On);
    }
    if let Some(on) = disk.ssd {
        d.ssd = on.then_some(true);
    }
    if let Some(on) = disk.iothread {
        d.iothread = on.then_some(true);
    }
    if let Some(mode) = disk.cache.as_deref().and_then(CacheMode::parse) {
        d.cache = Some(mode);
    }
    if let Some(on) = disk.backup {
        d.backup = (!on).then_some(false);
    }
}

/// What the disk update adds: options for the VM's `qm set`, and the steps
/// after it (resizes, then the removal).
#[derive(Default)]
pub(crate) struct DiskUpdate {
    /// New disks and changed options, for the `qm set`.
    pub options: QmOptions,
    /// Resizes and the removal, before the `qm set`: the set rewrites the
    /// record of managed slots, so a removal that fails leaves the slot in
    /// the record, and the next run tries it again.
    pub resizes: Vec<Step>,
    /// Steps after the `qm set`: the removal from a VM whose protection
    /// the set lifts.
    pub steps: Vec<Step>,
    /// Slots whose change a running VM takes only at its next boot.
    pub cold: Vec<String>,
}

/// The changes of the data disks: a new slot is allocated, a grown one is
/// resized, changed options are set on the same volume; a slot the record
/// lists and the file no longer names is destroyed with `allow_data_loss`,
/// a problem without. A smaller size is always a problem.
pub(crate) fn update(
    spec: &VmSpec,
    cfg: &VmConfig,
    vmid: VmId,
    version: PveVersion,
    allow_data_loss: bool,
    vp: &mut VmPlan,
) -> Result<DiskUpdate, PlanProblem> {
    let mut u = DiskUpdate::default();
    let hot = hotplugs(cfg, "disk");
    let legacy = !version.has_disk_group();
    // Slots that come from the list order: added ones, and existing ones
    // the change touches (a shift when both happen).
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    for disk in &spec.disks {
        let slot = disk.slot.as_str();
        let touched = vp.changes.len();
        let Some(have_text) = cfg.effective(slot) else {
            if !disk.slot_given {
                added.push(slot.to_string());
            }
            let value = new_disk_value(disk);
            vp.changes.push(Change {
                key: slot.to_string(),
                from: None,
                to: Some(value.clone()),
            });
            u.options.push(slot, value);
            if !hot {
                u.cold.push(slot.to_string());
            }
            continue;
        };
        let taken = || PlanProblem::DiskSlotTaken {
            slot: slot.to_string(),
            value: have_text.to_string(),
        };
        let have = Drive::parse(have_text).map_err(|_| taken())?;
        if have.is_cdrom() || have.file.volume().is_none() {
            return Err(taken());
        }
        if let Some(on) = have.file.volume().map(|v| v.storage().to_string()) {
            if on != disk.storage {
                vp.notes.push(PlanNote::DiskStorageKept {
                    slot: slot.to_string(),
                    have: on,
                    want: disk.storage.clone(),
                });
            }
        }
        // The size of the volume as it is now: `qm disk resize` updates the
        // current value, not a pending one.
        let now = cfg
            .current
            .get(slot)
            .and_then(|v| Drive::parse(v).ok())
            .filter(|d| d.file == have.file)
            .and_then(|d| d.size);
        if let Some(size) = now.or(have.size) {
            if disk.size < size {
                return Err(PlanProblem::DiskShrink {
                    slot: slot.to_string(),
                    have: format_size(size),
                    want: format_size(disk.size),
                });
            }
            if disk.size > size {
                vp.changes.push(Change {
                    key: [slot, " size"].concat(),
                    from: Some(format_size(size)),
                    to: Some(format_size(disk.size)),
                });
                u.resizes.push(Step::checked(
                    Command::Qm(Qm::DiskResize {
                        vmid,
                        disk: slot.to_string(),
                        size: format_size(disk.size),
                        legacy,
                    }),
                    Check::QuietStderr,
                ));
            }
        }
        let mut new = have.clone();
        new.size = Some(disk.size.max(now.or(have.size).unwrap_or(0))).filter(|s| *s > 0);
        apply_options(&mut new, disk);
        let (before, after) = (effect(&have), effect(&new));
        if before != after {
            let value = new.to_string();
            vp.changes.push(Change {
                key: slot.to_string(),
                from: Some(have_text.to_string()),
                to: Some(value.clone()),
            });
            u.options.push(slot, value);
            // Only `backup` is written at once on a running VM.
            let cold_items =
                (before.0, before.1, before.2, before.3) != (after.0, after.1, after.2, after.3);
            if cold_items {
                u.cold.push(slot.to_string());
            }
        }
        if !disk.slot_given && vp.changes.len() > touched {
            changed.push(slot.to_string());
        }
    }
    if !added.is_empty() && !changed.is_empty() {
        return Err(PlanProblem::DisksShifted { added, changed });
    }
    removals(spec, cfg, vmid, legacy, allow_data_loss, vp, &mut u)?;
    Ok(u)
}

/// The recorded slots the file no longer names: one `qm disk unlink
/// --force 1` destroys them all, with `allow_data_loss`, on a VM that is
/// not protected.
fn removals(
    spec: &VmSpec,
    cfg: &VmConfig,
    vmid: VmId,
    legacy: bool,
    allow_data_loss: bool,
    vp: &mut VmPlan,
    u: &mut DiskUpdate,
) -> Result<(), PlanProblem> {
    let mut gone = Vec::new();
    for slot in recorded(cfg, DISKS_RECORD_PREFIX) {
        if spec.disks.iter().any(|d| d.slot == slot) {
            continue;
        }
        let Some(drive) = cfg.effective(&slot).and_then(|v| Drive::parse(v).ok()) else {
            continue;
        };
        let Some(volume) = drive.file.volume().filter(|_| !drive.is_cdrom()) else {
            continue;
        };
        let volume = volume.as_str().to_string();
        if !allow_data_loss {
            return Err(PlanProblem::DiskRemoved { slot, volume });
        }
        // Proxmox refuses to remove a drive of a protected VM: the file
        // lifts the protection (in the `qm set`, before the removal) or
        // keeps the disk.
        if protected(cfg) && spec.lifecycle.protection {
            return Err(PlanProblem::ProtectedDrive { vmid, key: slot });
        }
        vp.changes.push(Change {
            key: slot.clone(),
            from: cfg.effective(&slot).map(str::to_string),
            to: None,
        });
        vp.notes.push(PlanNote::DestroysVolume {
            slot: slot.clone(),
            volume,
        });
        gone.push(slot);
    }
    if !gone.is_empty() {
        if !hotplugs(cfg, "disk") {
            u.cold.extend(gone.iter().cloned());
        }
        let unlink = Step::exit(Command::Qm(Qm::DiskUnlink {
            vmid,
            idlist: gone,
            force: true,
            legacy,
        }));
        if protected(cfg) {
            u.steps.push(unlink);
        } else {
            u.resizes.push(unlink);
        }
    }
    Ok(())
}

/// True when the VM has `protection: 1`.
fn protected(cfg: &VmConfig) -> bool {
    cfg.effective("protection") == Some("1")
}

/// A clone has the template's drives: a data disk may not name a slot the
/// template already uses (its `qm set` would detach the cloned volume).
pub(crate) fn check_template_slots(
    spec: &VmSpec,
    template: Option<&VmConfig>,
) -> Result<(), PlanProblem> {
    let Some(t) = template else {
        return Ok(());
    };
    for disk in &spec.disks {
        if let Some(value) = t.current.get(&disk.slot) {
            return Err(PlanProblem::DiskSlotTaken {
                slot: disk.slot.clone(),
                value: value.clone(),
            });
        }
    }
    Ok(())
}
