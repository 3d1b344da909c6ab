//! Creating a VM: one `qm create` that imports the image (PVE ≥ 7.2), the
//! classic create + importdisk + set sequence before that, or a clone of a
//! template (the admin's, or pvefleet's image cache) plus one `qm set`;
//! then a resize only when the disk must grow, then the start.

use crate::diff::Planner;
use crate::lookup::{clone_ref_text, find_template};
use crate::observed::{NodeState, PveVersion, StorageOnNode, Volume};
use crate::options;
use crate::problem::{PlanProblem, SizeOf};
use crate::types::{Action, Check, InputSource, Step, VmPlan};
use crate::update::boot_disk;
use pvefleet_model::drive::{is_cloudinit_drive, is_disk_key};
use pvefleet_model::size::format_size;
use pvefleet_model::spec::{CloneRef, DiskFrom, DiskSource, ImageRef, VmSpec};
use pvefleet_model::{Command, Drive, Qm, QmOptions, VmId};

/// What a clone is made from and how.
struct CloneFrom {
    template: VmId,
    full: bool,
    storage: Option<String>,
    add_cloudinit: bool,
    /// EFI vars / TPM state keys the template has: the clone copies those
    /// volumes, so the `qm set` after it does not allocate them again.
    has_firmware: Vec<&'static str>,
}

/// An admin's template to clone: how, its boot disk and that disk's size.
struct AdminTemplate {
    from: CloneFrom,
    disk: String,
    size: Option<u64>,
}

/// The content type a listed volume is under: as listed, else (a listing
/// without `content`) the folder of its name (`iso/x.img`).
fn listed_content<'v>(listed: &'v Volume, volname: &'v str) -> &'v str {
    listed
        .content
        .as_deref()
        .unwrap_or_else(|| volname.split('/').next().unwrap_or(""))
}

impl Planner<'_> {
    /// The index of the upload of the spec's SSH keys to `node`, recorded
    /// in `vp`; `None` without keys.
    pub(crate) fn keys_upload(
        &mut self,
        spec: &VmSpec,
        node: &str,
        vp: &mut VmPlan,
    ) -> Option<usize> {
        let text = options::ssh_keys_text(spec)?;
        let i = self.upload(node, text);
        if !vp.uploads.contains(&i) {
            vp.uploads.push(i);
        }
        Some(i)
    }

    /// The version of the node a VM is created on, when supported.
    fn create_version(&self, node: &NodeState) -> Result<PveVersion, PlanProblem> {
        let version = node.version.ok_or_else(|| PlanProblem::UnknownVersion {
            node: node.name.clone(),
        })?;
        if !version.at_least(7, 0) {
            return Err(PlanProblem::UnsupportedVersion {
                node: node.name.clone(),
                version: version.to_string(),
            });
        }
        Ok(version)
    }

    /// Plans the creation of a VM that does not exist.
    pub(crate) fn create(&mut self, spec: &VmSpec, vp: &mut VmPlan) -> Result<(), PlanProblem> {
        let node = self
            .node_state(&vp.node)
            .ok_or_else(|| PlanProblem::NodeNotObserved {
                node: vp.node.clone(),
            })?;
        let version = self.create_version(node)?;
        let spec = &*self.url_image(spec, node, version, vp)?;
        crate::lifecycle::check_firmware_version(spec, &node.name, version, (true, true))?;
        crate::lifecycle::check_ha_group(spec, &node.name, version)?;
        self.check_bridge(spec, &vp.node)?;
        self.check_storage(spec, &vp.node)?;
        self.check_disk_storages(spec, &vp.node)?;
        self.check_pool(spec)?;
        let admin = match &spec.source {
            DiskSource::Image(img) => {
                self.check_image(spec, img, node)?;
                None
            }
            DiskSource::Clone(r) => Some(self.admin_template(spec, r, node)?),
        };
        self.snippet_upload(spec, &node.name, vp)?;
        if let Some(t) = &admin {
            let tcfg = node.configs.get(&t.from.template);
            crate::hardware::disks::check_template_slots(spec, tcfg)?;
        }
        let vmid = match vp.vmid {
            Some(id) => id,
            None => {
                vp.vmid_allocated = true;
                vp.claim_name = true;
                self.ids.allocate().ok_or(PlanProblem::NoFreeVmid)?
            }
        };
        vp.vmid = Some(vmid);
        let keys = self.keys_upload(spec, &node.name, vp);
        let mut system_disk = "scsi0".to_string();
        let mut grow = spec.disk;
        match &spec.source {
            DiskSource::Image(img) if spec.disk_from == DiskFrom::Import => {
                let src = self.import_source(img, node, version)?;
                vp.steps
                    .extend(import_steps(spec, vmid, &src, keys, version));
            }
            DiskSource::Image(img) => {
                let (prelude, template) = self.cache_template(img, spec, node, version)?;
                vp.prelude = prelude;
                // The cache template already has the size.
                grow = None;
                let from = CloneFrom {
                    template,
                    full: spec.disk_from == DiskFrom::FullClone,
                    storage: None,
                    add_cloudinit: true,
                    has_firmware: Vec::new(),
                };
                vp.steps.extend(clone_steps(spec, vmid, &from, keys));
            }
            DiskSource::Clone(_) => {
                if let Some(t) = admin {
                    // A clone already has the template's size.
                    if t.size.is_some() && t.size == spec.disk {
                        grow = None;
                    }
                    system_disk = t.disk;
                    vp.steps.extend(clone_steps(spec, vmid, &t.from, keys));
                }
            }
        }
        if let Some(bytes) = grow {
            vp.steps.push(Step::checked(
                Command::Qm(Qm::DiskResize {
                    vmid,
                    disk: system_disk,
                    size: format_size(bytes),
                    legacy: !version.has_disk_group(),
                }),
                Check::QuietStderr,
            ));
        }
        if vp.running {
            vp.steps.push(Step::exit(Command::Qm(Qm::Start { vmid })));
            vp.starts = true;
        }
        self.created_lifecycle(spec, vmid, vp);
        vp.action = Action::Create;
        Ok(())
    }

    /// The admin's template a `clone:` names, checked, with how to clone it
    /// and its system disk. The file's `disk` must not be smaller than that
    /// disk: a clone starts at the template's size.
    fn admin_template(
        &self,
        spec: &VmSpec,
        r: &CloneRef,
        node: &NodeState,
    ) -> Result<AdminTemplate, PlanProblem> {
        let t =
            find_template(r, self.input.observed).ok_or_else(|| PlanProblem::TemplateNotFound {
                template: clone_ref_text(r),
            })?;
        if !t.template {
            return Err(PlanProblem::NotATemplate { vmid: t.vmid });
        }
        if t.node != node.name {
            return Err(PlanProblem::TemplateElsewhere {
                vmid: t.vmid,
                template_node: t.node.clone(),
                node: node.name.clone(),
            });
        }
        let tcfg = node.configs.get(&t.vmid);
        // A cloud-init drive is a CD-ROM whose volume is Proxmox's
        // cloud-init volume, on any disk key: parsed, never guessed from text.
        let has_cloudinit = tcfg.is_some_and(|c| {
            c.current
                .iter()
                .any(|(k, v)| is_disk_key(k) && is_cloudinit_drive(v))
        });
        let disk = tcfg.map(boot_disk).unwrap_or_else(|| "scsi0".into());
        let tdrive = tcfg
            .and_then(|c| c.current.get(&disk))
            .and_then(|v| Drive::parse(v).ok());
        let size = tdrive.as_ref().and_then(|d| d.size);
        if let (Some(want), Some(have)) = (spec.disk, size) {
            if want < have {
                return Err(PlanProblem::DiskTooSmall {
                    disk: format_size(want),
                    size: format_size(have),
                    of: SizeOf::Template {
                        vmid: t.vmid,
                        disk,
                        size: format_size(have),
                    },
                });
            }
        }
        let tstorage = tdrive
            .as_ref()
            .and_then(|d| d.file.volume().map(|v| v.storage().as_str().to_string()));
        // A linked clone stays on the template's storage; another storage
        // needs a full clone.
        let full = tstorage.as_deref().is_some_and(|s| s != spec.storage);
        let from = CloneFrom {
            template: t.vmid,
            full,
            storage: full.then(|| spec.storage.clone()),
            add_cloudinit: !has_cloudinit,
            has_firmware: ["efidisk0", "tpmstate0"]
                .into_iter()
                .filter(|k| tcfg.is_some_and(|c| c.current.contains_key(*k)))
                .collect(),
        };
        Ok(AdminTemplate { from, disk, size })
    }

    /// The VM's storage must exist on the node and be enabled for VM disks
    /// (`images`): a default installation's `local` is not (CONTRACT §13).
    /// Checked where `/cluster/resources` described the node's storages.
    pub(crate) fn check_storage(&self, spec: &VmSpec, node: &str) -> Result<(), PlanProblem> {
        let observed = self.input.observed;
        match observed.storage_on(node, &spec.storage) {
            StorageOnNode::Unknown => Ok(()),
            StorageOnNode::Missing => Err(PlanProblem::NoSuchStorage {
                storage: spec.storage.clone(),
                node: node.to_string(),
                available: observed
                    .storage_facts
                    .get(node)
                    .map(|all| all.keys().cloned().collect())
                    .unwrap_or_default(),
            }),
            StorageOnNode::Present(f) if !f.holds("images") => {
                Err(PlanProblem::StorageWithoutImages {
                    storage: spec.storage.clone(),
                    node: node.to_string(),
                    content: f.content.clone().unwrap_or_default(),
                    alternatives: observed.image_storages(node),
                    can_hold_images: !matches!(f.kind.as_deref(), Some("cephfs" | "pbs" | "esxi")),
                })
            }
            StorageOnNode::Present(_) => Ok(()),
        }
    }

    /// A listed image volume must be a disk image (`iso`, `import` or
    /// `images` content), and the file's `disk` must not be smaller than it:
    /// the import makes a disk of the image's virtual size, which cannot
    /// shrink. The listing gives the virtual size of `images` volumes and
    /// the file size of `iso` and `import` ones, which the virtual size is
    /// at least (CONTRACT §12.2). An image that is not listed is reported
    /// where it is needed ([`Planner::import_source`]).
    fn check_image(
        &self,
        spec: &VmSpec,
        img: &ImageRef,
        node: &NodeState,
    ) -> Result<(), PlanProblem> {
        let ImageRef::Volume { storage, volname } = img else {
            return Ok(());
        };
        let volid = img.display();
        let Some(listed) = node
            .storages
            .get(storage)
            .and_then(|vols| vols.iter().find(|v| v.volid == volid))
        else {
            return Ok(());
        };
        let content = listed_content(listed, volname);
        if !matches!(content, "iso" | "import" | "images") {
            return Err(PlanProblem::ImageWrongContent {
                image: volid,
                content: content.to_string(),
            });
        }
        let have = listed.size.and_then(|s| u64::try_from(s).ok());
        if let (Some(want), Some(have)) = (spec.disk, have) {
            if want < have {
                let size = format_size(have);
                let of = if content == "images" {
                    SizeOf::ImageVirtual {
                        image: volid,
                        size: size.clone(),
                    }
                } else {
                    SizeOf::ImageFile {
                        image: volid,
                        size: size.clone(),
                    }
                };
                return Err(PlanProblem::DiskTooSmall {
                    disk: format_size(want),
                    size,
                    of,
                });
            }
        }
        Ok(())
    }

    /// The bridge of every NIC must exist on the node.
    pub(crate) fn check_bridge(&self, spec: &VmSpec, node: &str) -> Result<(), PlanProblem> {
        let Some(state) = self.node_state(node) else {
            return Ok(());
        };
        match crate::hardware::nics::bridges(spec)
            .find(|b| !state.bridges.iter().any(|have| have == b))
        {
            Some(bridge) => Err(PlanProblem::MissingBridge {
                bridge: bridge.to_string(),
                node: node.to_string(),
                available: state.bridges.clone(),
            }),
            None => Ok(()),
        }
    }

    /// What `import-from` or `qm importdisk` is given for an image: the
    /// volume id where Proxmox takes one, else the host path.
    pub(crate) fn import_source(
        &self,
        img: &ImageRef,
        node: &NodeState,
        version: PveVersion,
    ) -> Result<String, PlanProblem> {
        let (storage, volname) = match img {
            ImageRef::Path(p) => return Ok(p.clone()),
            ImageRef::Volume { storage, volname } => (storage, volname),
        };
        let volid = img.display();
        let listed = node
            .storages
            .get(storage)
            .ok_or_else(|| PlanProblem::StorageUnavailable {
                storage: storage.clone(),
                node: node.name.clone(),
            })?;
        // The listed content type decides: real `images` volids have no
        // `images/` folder (`local:100/base.qcow2`, `local-lvm:base-9000-disk-0`).
        // A volume this plan downloads has the content type it is
        // downloaded as.
        let content = match listed.iter().find(|v| v.volid == volid) {
            Some(listed) => listed_content(listed, volname),
            None => match self.downloading(&node.name, &volid) {
                Some(c) => c.as_str(),
                None => {
                    return Err(PlanProblem::ImageNotFound {
                        image: volid,
                        node: node.name.clone(),
                        storage: storage.clone(),
                    })
                }
            },
        };
        if version.has_import_from()
            && (content == "images" || (content == "import" && version.has_import_content()))
        {
            return Ok(volid);
        }
        // `import-from` rejects iso volumes (and import volumes before PVE
        // 8.3), and `qm importdisk` (before PVE 7.2) wants a file: use the
        // host path (CONTRACT §3.4, §4.1, §16.2-3).
        node.image_paths
            .get(&volid)
            .cloned()
            .ok_or(PlanProblem::ImagePathUnknown { image: volid })
    }
}

/// The steps that create a VM from an image: one `qm create` with
/// `import-from` where the version has it, else create, import, attach.
fn import_steps(
    spec: &VmSpec,
    vmid: VmId,
    src: &str,
    keys: Option<usize>,
    version: PveVersion,
) -> Vec<Step> {
    let mut o = QmOptions::new();
    options::common_options(spec, &mut o);
    o.push("ostype", "l26");
    o.push("scsihw", "virtio-scsi-pci");
    if let Some(pool) = &spec.lifecycle.pool {
        o.push("pool", pool);
    }
    let cloudinit = format!("{}:cloudinit", spec.storage);
    let with_keys = |step: Step| match keys {
        Some(i) => step.with_input("sshkeys", InputSource::Upload(i)),
        None => step,
    };
    if version.has_import_from() {
        o.push("scsi0", format!("{}:0,import-from={src}", spec.storage));
        o.push("ide2", cloudinit);
        o.push("boot", "order=scsi0");
        let create = Step::checked(Command::Qm(Qm::Create { vmid, options: o }), Check::Reserve);
        return vec![with_keys(create)];
    }
    o.push("ide2", cloudinit);
    let create = Step::checked(Command::Qm(Qm::Create { vmid, options: o }), Check::Reserve);
    let import = Step::checked(
        Command::Qm(Qm::ImportDisk {
            vmid,
            source: src.to_string(),
            storage: spec.storage.clone(),
            legacy: !version.has_disk_group(),
        }),
        Check::Import,
    );
    let mut attach = QmOptions::new();
    attach.push("boot", "order=scsi0");
    let attach = Step::exit(Command::Qm(Qm::Set {
        vmid,
        options: attach,
        delete: Vec::new(),
    }))
    .with_input("scsi0", InputSource::ImportedVolume);
    vec![with_keys(create), import, attach]
}

/// `qm clone` of a template, then one `qm set` with the VM's settings.
fn clone_steps(spec: &VmSpec, vmid: VmId, from: &CloneFrom, keys: Option<usize>) -> Vec<Step> {
    let clone = Step::checked(
        Command::Qm(Qm::Clone {
            vmid: from.template,
            newid: vmid,
            name: spec.name.clone(),
            full: from.full,
            storage: from.storage.clone(),
        }),
        Check::Reserve,
    );
    let mut all = QmOptions::new();
    options::common_options(spec, &mut all);
    let mut o = QmOptions::new();
    for (k, v) in all.iter().filter(|(k, _)| !from.has_firmware.contains(k)) {
        o.push(k, v);
    }
    if from.add_cloudinit {
        o.push("ide2", format!("{}:cloudinit", spec.storage));
    }
    let mut set = Step::exit(Command::Qm(Qm::Set {
        vmid,
        options: o,
        delete: Vec::new(),
    }));
    if let Some(i) = keys {
        set = set.with_input("sshkeys", InputSource::Upload(i));
    }
    vec![clone, set]
}
