//! The image cache (`disk_from: linked-clone | full-clone`): one template
//! per (node, storage, image, disk size), imported and grown once, that the
//! VMs clone. Found by its name among the node's templates, or planned as a
//! [`Prelude`] that the VMs cloning it wait for.

use crate::diff::Planner;
use crate::lookup::storage_lock;
use crate::observed::{NodeState, PveVersion};
use crate::problem::PlanProblem;
use crate::types::{Check, Prelude, Step, CACHE_TAG};
use pvefleet_model::size::format_size;
use pvefleet_model::spec::{ImageRef, VmSpec};
use pvefleet_model::{Command, Qm, QmOptions, VmId, OWNER_DESCRIPTION_LINE, OWNER_TAG};

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The name of the cache template for an image on a storage, grown to
/// `disk` bytes (or left at the image's size).
pub fn cache_name(image: &ImageRef, storage: &str, disk: Option<u64>) -> String {
    let size = disk.map(format_size).unwrap_or_default();
    let key = format!("{}@{storage}/{size}", image.display());
    format!("pvefleet-img-{:08x}", fnv(&key))
}

impl Planner<'_> {
    /// The image-cache template for (node, storage, image, size): found
    /// (no prelude), planned earlier in this plan, or planned now. Returns
    /// the prelude's index, when one must run first, and the template id.
    pub(crate) fn cache_template(
        &mut self,
        img: &ImageRef,
        spec: &VmSpec,
        node: &NodeState,
        version: PveVersion,
    ) -> Result<(Option<usize>, VmId), PlanProblem> {
        let key = (
            node.name.clone(),
            spec.storage.clone(),
            img.clone(),
            spec.disk,
        );
        if let Some((i, id)) = self.cache.get(&key) {
            return Ok((Some(*i), *id));
        }
        let name = cache_name(img, &spec.storage, spec.disk);
        if let Some(t) = node.vms.iter().find(|v| {
            v.template
                && v.tags.iter().any(|t| t == CACHE_TAG)
                && v.name.as_deref() == Some(name.as_str())
        }) {
            return Ok((None, t.vmid));
        }
        if !version.has_import_from() {
            return Err(PlanProblem::CacheNeedsImportFrom {
                node: node.name.clone(),
            });
        }
        let src = self.import_source(img, node, version)?;
        let vmid = self.ids.allocate().ok_or(PlanProblem::NoFreeVmid)?;
        self.plan.preludes.push(Prelude {
            node: node.name.clone(),
            vmid,
            label: format!("image cache {name} ({})", img.display()),
            steps: template_steps(vmid, &name, img, spec, &src, version),
            storage_lock: storage_lock(&node.name, &spec.storage, self.input.observed),
        });
        let i = self.plan.preludes.len() - 1;
        self.cache.insert(key, (i, vmid));
        Ok((Some(i), vmid))
    }
}

/// Create with the import, grow once (so clones need no resize), convert
/// to a template.
fn template_steps(
    vmid: VmId,
    name: &str,
    img: &ImageRef,
    spec: &VmSpec,
    src: &str,
    version: PveVersion,
) -> Vec<Step> {
    let mut o = QmOptions::new();
    o.push("name", name);
    o.push("ostype", "l26");
    o.push("scsihw", "virtio-scsi-pci");
    o.push("scsi0", format!("{}:0,import-from={src}", spec.storage));
    o.push("boot", "order=scsi0");
    o.push("serial0", "socket");
    o.push("vga", "serial0");
    o.push("agent", "enabled=1");
    o.push("tags", format!("{CACHE_TAG};{OWNER_TAG}"));
    o.push(
        "description",
        format!(
            "pvefleet image cache of {} on {}\n{OWNER_DESCRIPTION_LINE}",
            img.display(),
            spec.storage
        ),
    );
    let mut steps = vec![Step::checked(
        Command::Qm(Qm::Create { vmid, options: o }),
        Check::Reserve,
    )];
    if let Some(bytes) = spec.disk {
        steps.push(Step::checked(
            Command::Qm(Qm::DiskResize {
                vmid,
                disk: "scsi0".into(),
                size: format_size(bytes),
                legacy: !version.has_disk_group(),
            }),
            Check::QuietStderr,
        ));
    }
    steps.push(Step::checked(
        Command::Qm(Qm::Template { vmid }),
        Check::QuietStderr,
    ));
    steps
}
