//! Updating a managed VM: the keys that drifted in one `qm set`, a resize
//! when the disk must grow, the power state (a paused VM is resumed or
//! stopped), and which changes wait for a reboot.

use crate::diff::Planner;
use crate::observed::{ClusterVm, PveVersion, VmConfig};
use crate::options;
use crate::problem::{PlanNote, PlanProblem};
use crate::types::{Action, Change, Check, InputSource, Step, VmPlan};
use pvefleet_model::drive::is_drive_key;
use pvefleet_model::size::format_size;
use pvefleet_model::spec::VmSpec;
use pvefleet_model::{Boot, Command, Drive, Net, Qm, QmOptions, VmId, VmStatus};
use std::collections::BTreeSet;

/// Keys that a running VM takes only at the next boot: hardware keys become
/// pending; cloud-init keys are written but the cloud-init drive is only
/// regenerated at start.
pub const COLD_KEYS: &[&str] = &[
    "memory",
    "cores",
    "sockets",
    "cpu",
    "ipconfig0",
    "nameserver",
    "searchdomain",
    "ciuser",
    "sshkeys",
    "cipassword",
    "cicustom",
];

/// A managed VM without a system disk younger than this is being made by
/// another run (its claim and its first `qm set` are seconds apart); an
/// older one was left by an interrupted run.
pub const BEING_MADE_SECS: u64 = 60;

/// The version assumed when a node did not report one.
const ASSUMED_VERSION: PveVersion = PveVersion {
    major: 8,
    minor: 0,
    patch: 0,
};

impl Planner<'_> {
    /// Plans the changes of an existing managed VM.
    pub(crate) fn update(&mut self, spec: &VmSpec, existing: &ClusterVm, vp: &mut VmPlan) {
        let cfg = self
            .node_state(&existing.node)
            .and_then(|n| n.configs.get(&existing.vmid));
        let bare = cfg.filter(|c| existing.lock.is_none() && !has_system_disk(c));
        let busy = self.input.observed.busy.contains(&existing.vmid);
        if let Some(age_secs) = bare
            .and_then(|c| {
                if busy {
                    Some(self.age(c).unwrap_or(0))
                } else {
                    self.age(c)
                }
            })
            .filter(|age| busy || *age < BEING_MADE_SECS)
        {
            // Claimed moments ago by another run, which makes it now.
            vp.notes.push(PlanNote::BeingMade {
                vmid: existing.vmid,
                age_secs,
            });
            return;
        }
        if existing.lock.is_none() && cfg.is_some_and(|c| !has_system_disk(c)) {
            // Claimed, then interrupted before its disk was made: make it
            // again under the same id.
            if let Err(problem) = self.create(spec, vp) {
                return vp.block(problem);
            }
            vp.steps
                .insert(0, crate::diff::destroy_leftover(existing.vmid));
            vp.notes.push(PlanNote::Incomplete {
                vmid: existing.vmid,
            });
            return;
        }
        if let Err(problem) = self.update_steps(spec, existing, vp) {
            vp.block(problem);
            return;
        }
        // A snippet written again is a change without a step.
        vp.action = if vp.steps.is_empty() && vp.uploads.is_empty() {
            Action::None
        } else {
            Action::Update
        };
    }

    pub(crate) fn update_steps(
        &mut self,
        spec: &VmSpec,
        existing: &ClusterVm,
        vp: &mut VmPlan,
    ) -> Result<(), PlanProblem> {
        let vmid = existing.vmid;
        if let Some(lock) = &existing.lock {
            return Err(PlanProblem::Locked {
                vmid,
                lock: lock.clone(),
            });
        }
        let state = self.node_state(&existing.node);
        let cfg = state
            .and_then(|n| n.configs.get(&vmid))
            .ok_or(PlanProblem::ConfigUnreadable { vmid })?;
        let version = state.and_then(|n| n.version).unwrap_or(ASSUMED_VERSION);
        // Hashed once: the description's check line and the option.
        let hash = options::password_hash(spec);
        let mut set = settings_step(spec, cfg, vmid, hash.as_deref(), vp);
        password_change(cfg, hash, vp, &mut set);
        if net_drifted(spec, cfg, vp, &mut set) {
            self.check_bridge(spec, &existing.node)?;
        }
        if !options::same_keys(cfg.effective("sshkeys"), spec) {
            self.keys_change(spec, cfg, &existing.node, vp, &mut set);
        }
        self.cicustom_change(spec, cfg, &existing.node, vp, &mut set)?;
        let hardware = self.hardware_update(spec, cfg, existing, version, vp, &mut set)?;
        let firmware = match &mut set.command {
            Command::Qm(Qm::Set {
                options, delete, ..
            }) => self.firmware_volumes(
                spec,
                cfg,
                (vmid, &existing.node, version),
                vp,
                options,
                delete,
            )?,
            _ => Default::default(),
        };
        let pool = self.pool_steps(spec, vmid, vp)?;
        crate::lifecycle::check_ha_group(spec, &existing.node, version)?;
        let changes_settings = match &set.command {
            Command::Qm(Qm::Set {
                options, delete, ..
            }) => !options.is_empty() || !delete.is_empty() || !set.inputs.is_empty(),
            _ => false,
        };
        // Set, filled in at run time, or deleted: each a change of its key.
        let mut cold: BTreeSet<String> = match &set.command {
            Command::Qm(Qm::Set {
                options, delete, ..
            }) => options
                .keys()
                .chain(set.inputs.iter().map(|i| i.option))
                .chain(delete.iter().map(String::as_str))
                .filter(|k| COLD_KEYS.contains(k) || crate::lifecycle::COLD.contains(k))
                .map(str::to_string)
                .collect(),
            _ => BTreeSet::new(),
        };
        cold.extend(hardware.cold);
        cold.extend(crate::lifecycle::more_cold(&firmware, &set.command, cfg));
        vp.steps.extend(hardware.resizes);
        vp.steps.extend(firmware.before);
        if changes_settings {
            vp.steps.push(set);
        }
        crate::snippets::refresh_step(existing, version, vp);
        vp.steps.extend(firmware.after);
        vp.steps.extend(hardware.steps);
        vp.steps.extend(pool);
        if let Some(resize) = grow_step(spec, cfg, vmid, version, vp) {
            vp.steps.push(resize);
        }
        // Changes a running (or paused) VM takes only at its next boot.
        let running = existing.status.as_ref().is_some_and(VmStatus::is_up);
        if running {
            cold.extend(cfg.pending.keys().cloned());
            cold.extend(cfg.pending_delete.iter().cloned());
            vp.reboot_pending = cold.into_iter().collect();
        }
        if existing.status == Some(VmStatus::Paused) {
            self.paused_step(vmid, spec, vp);
        } else {
            self.power_step(vmid, running, vp);
        }
        let adopting = !crate::lookup::is_managed(existing);
        let ha = self.ha_steps(spec, vmid, adopting, vp);
        vp.steps.extend(ha);
        Ok(())
    }

    /// A paused VM (QEMU up, guest frozen): `qm resume` when the file wants
    /// it running, else `qm stop`, since a frozen guest cannot act on a
    /// shutdown request (`qm shutdown` refuses a paused VM unless forced,
    /// CONTRACT §7). Pending changes still wait for a reboot, which
    /// `--reboot` sends after the resume.
    fn paused_step(&self, vmid: VmId, spec: &VmSpec, vp: &mut VmPlan) {
        vp.notes.push(PlanNote::Paused { want: spec.state });
        if vp.running {
            vp.steps.push(Step::exit(Command::Qm(Qm::Resume { vmid })));
            if self.input.reboot && !vp.reboot_pending.is_empty() {
                vp.steps.push(Step::exit(Command::Qm(Qm::Reboot { vmid })));
                vp.reboot_pending.clear();
            }
        } else {
            vp.steps.push(Step::exit(Command::Qm(Qm::Stop {
                vmid,
                skiplock: false,
            })));
            vp.reboot_pending.clear();
        }
    }

    /// The sshkeys change: upload the new keys, or delete the key.
    fn keys_change(
        &mut self,
        spec: &VmSpec,
        cfg: &VmConfig,
        node: &str,
        vp: &mut VmPlan,
        set: &mut Step,
    ) {
        let upload = self.keys_upload(spec, node, vp);
        vp.changes.push(Change {
            key: "sshkeys".into(),
            from: Some(
                if cfg.effective("sshkeys").is_some() {
                    "<other keys>"
                } else {
                    "<none>"
                }
                .into(),
            ),
            to: Some(match upload {
                Some(_) => format!("{} key(s)", spec.ssh_keys.len()),
                None => "<none>".into(),
            }),
        });
        match upload {
            Some(i) => set.inputs.push(crate::types::StepInput {
                option: "sshkeys",
                source: InputSource::Upload(i),
            }),
            None => {
                if let Command::Qm(Qm::Set { delete, .. }) = &mut set.command {
                    delete.push("sshkeys".to_string());
                }
            }
        }
    }

    /// Seconds since the VM was created (`meta: ...,ctime=EPOCH`), when the
    /// read time and its creation time are known.
    fn age(&self, cfg: &VmConfig) -> Option<u64> {
        let now = self.input.observed.observed_at?;
        let ctime: u64 = cfg
            .effective("meta")?
            .split(',')
            .find_map(|kv| kv.strip_prefix("ctime="))?
            .parse()
            .ok()?;
        Some(now.saturating_sub(ctime))
    }

    /// Start, shut down or (with `--reboot`) reboot, as the file asks.
    fn power_step(&self, vmid: VmId, running: bool, vp: &mut VmPlan) {
        match (vp.running, running) {
            (true, false) => {
                vp.steps.push(Step::exit(Command::Qm(Qm::Start { vmid })));
                vp.starts = true;
                vp.reboot_pending.clear();
            }
            (false, true) => {
                vp.steps
                    .push(Step::exit(Command::Qm(Qm::Shutdown { vmid, timeout: 120 })));
                vp.reboot_pending.clear();
            }
            (true, true) if self.input.reboot && !vp.reboot_pending.is_empty() => {
                vp.steps.push(Step::exit(Command::Qm(Qm::Reboot { vmid })));
                vp.reboot_pending.clear();
            }
            _ => {}
        }
    }
}

/// One `qm set` (maybe empty) with every managed plain key that differs,
/// each recorded as a change.
fn settings_step(
    spec: &VmSpec,
    cfg: &VmConfig,
    vmid: VmId,
    hash: Option<&str>,
    vp: &mut VmPlan,
) -> Step {
    let mut o = QmOptions::new();
    for (key, want) in options::managed_values(spec, hash) {
        let Some(mut want) = want else { continue };
        if key == "cicustom" {
            // Only pvefleet's part: `network=`/`meta=` an admin set stay.
            want = crate::snippets::merged_cicustom(cfg.effective(key), &want);
        }
        let have = cfg
            .effective(key)
            .or_else(|| options::implicit_default(key))
            .map(|h| options::normalise(key, h));
        if have.as_deref() != Some(want.as_str()) {
            vp.changes.push(Change {
                key: key.into(),
                from: have,
                to: Some(want.clone()),
            });
            o.push(key, want);
        }
    }
    Step::exit(Command::Qm(Qm::Set {
        vmid,
        options: o,
        delete: Vec::new(),
    }))
}

/// Adds the password to `set` when the file's differs from the one the VM
/// was given (told by the check line of its description), or deletes it;
/// the change shows as `password: (changed)`, never a value. A description
/// change that is only the check line is not shown as one.
fn password_change(cfg: &VmConfig, hash: Option<String>, vp: &mut VmPlan, set: &mut Step) {
    let have = cfg
        .effective("description")
        .and_then(options::observed_password_check);
    let want = hash.as_deref().map(options::password_check);
    if have == want {
        return;
    }
    let Command::Qm(Qm::Set {
        options, delete, ..
    }) = &mut set.command
    else {
        return;
    };
    let to = match hash {
        Some(hash) => {
            options.push("cipassword", hash);
            "(changed)"
        }
        None => {
            delete.push("cipassword".into());
            "(removed)"
        }
    };
    vp.changes.push(Change {
        key: "password".into(),
        from: Some(if have.is_some() { "(set)" } else { "(none)" }.into()),
        to: Some(to.into()),
    });
    let strip = |d: &str| -> String {
        d.lines()
            .filter(|l| !l.trim().starts_with(options::PASSWORD_CHECK_PREFIX))
            .collect::<Vec<_>>()
            .join("\n")
    };
    vp.changes.retain(|c| {
        c.key != "description" || c.from.as_deref().map(strip) != c.to.as_deref().map(strip)
    });
}

/// Adds `net0` to `set` when an item pvefleet manages drifted (model,
/// bridge, VLAN tag, a MAC the file sets). Items an admin added
/// (`firewall=1`, `mtu`, `queues`, ...) and the MAC Proxmox generated are
/// kept. True when it drifted.
fn net_drifted(spec: &VmSpec, cfg: &VmConfig, vp: &mut VmPlan, set: &mut Step) -> bool {
    let have_text = cfg.effective("net0").unwrap_or("");
    let want = options::net0(spec);
    let have = Net::parse(have_text).ok();
    if have
        .as_ref()
        .is_some_and(|h| crate::hardware::nics::same_nic(h, &want))
    {
        return false;
    }
    let new = match have {
        Some(mut h) => {
            crate::hardware::nics::apply_nic(&mut h, &want);
            h
        }
        None => want,
    };
    let new = new.to_string();
    vp.changes.push(Change {
        key: "net0".into(),
        from: Some(have_text.to_string()).filter(|s| !s.is_empty()),
        to: Some(new.clone()),
    });
    if let Command::Qm(Qm::Set { options, .. }) = &mut set.command {
        options.push("net0", new);
    }
    true
}

/// A resize when the file asks for a larger disk; a note when it asks for a
/// smaller one (disks never shrink).
fn grow_step(
    spec: &VmSpec,
    cfg: &VmConfig,
    vmid: VmId,
    version: PveVersion,
    vp: &mut VmPlan,
) -> Option<Step> {
    let want = spec.disk?;
    let disk = boot_disk(cfg);
    let have = cfg
        .effective(&disk)
        .and_then(|v| Drive::parse(v).ok())
        .and_then(|d| d.size)?;
    if want < have {
        vp.notes.push(PlanNote::DiskLarger {
            have: format_size(have),
            want: format_size(want),
        });
        return None;
    }
    if want == have {
        return None;
    }
    vp.changes.push(Change {
        key: format!("{disk} size"),
        from: Some(format_size(have)),
        to: Some(format_size(want)),
    });
    Some(Step::checked(
        Command::Qm(Qm::DiskResize {
            vmid,
            disk,
            size: format_size(want),
            legacy: !version.has_disk_group(),
        }),
        Check::QuietStderr,
    ))
}

/// The VM's boot disk: the first device of `boot: order=` that is a disk
/// (not a CD-ROM, not a NIC), else `scsi0`.
pub(crate) fn boot_disk(cfg: &VmConfig) -> String {
    let order = cfg
        .effective("boot")
        .and_then(|b| Boot::parse(b).ok())
        .and_then(|b| b.order)
        .unwrap_or_default();
    order
        .into_iter()
        .find(|d| {
            !d.starts_with("net")
                && cfg
                    .effective(d)
                    .and_then(|v| Drive::parse(v).ok())
                    .is_some_and(|drive| !drive.is_cdrom())
        })
        .unwrap_or_else(|| "scsi0".into())
}

/// True when the config has a disk that is not a CD-ROM (`scsi0`,
/// `virtio0`, ...): a VM without one never finished its create.
pub(crate) fn has_system_disk(cfg: &VmConfig) -> bool {
    cfg.current
        .iter()
        .any(|(k, v)| is_drive_key(k) && Drive::parse(v).map_or(true, |d| !d.is_cdrom()))
}
