//! The planner: desired × observed → [`Plan`].
//!
//! Per VM it decides one [`Action`] and the ordered [`Step`]s that reach the
//! desired state with the fewest `qm` invocations the node's version allows
//! (CONTRACT §16): on PVE ≥ 7.2 one `qm create` carries the disk import, the
//! cloud-init drive and every setting; a resize follows only when the disk
//! must grow, then the start. Older versions get the classic sequence.
//!
//! A VM that exists without pvefleet's tag is a conflict and gets no steps.

use crate::observed::{ClusterVm, NodeState, Observed, PveVersion, VmConfig};
use crate::options;
use pvefleet_config::{CloneRef, Desired, DiskFrom, DiskSource, ImageRef, IpConfig, VmSpec};
use pvefleet_model::propstring::PropertyString;
use pvefleet_model::size::{format_size, parse_size};
use pvefleet_model::{Command, Qm, QmOptions, VmId, OWNER_DESCRIPTION_LINE, OWNER_TAG};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Placeholder in a step's argv for the volume the previous import reported
/// (PVE < 7.2 only, where the volume name is known only after the import).
pub const IMPORTED_VOLUME: &str = "<imported-volume>";

/// The tag of pvefleet's image-cache templates.
pub const CACHE_TAG: &str = "pvefleet-cache";

/// What happens to a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It does not exist and will be created.
    Create,
    /// It exists, is managed, and some settings change.
    Update,
    /// It exists and matches.
    None,
    /// Something that pvefleet does not manage stands in the way.
    Conflict,
    /// It cannot be planned (missing image, missing bridge, locked...).
    Error,
}

/// How the runner decides whether a step succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The exit code tells the truth.
    Exit,
    /// `qm create`/`qm clone` that reserves the VM id: an "already exists"
    /// answer means the id was taken meanwhile.
    Reserve,
    /// `qm importdisk`: the output names the new volume, used by the next step.
    Import,
    /// A task whose exit code is 0 even when it failed inside (`qm disk
    /// resize` and `qm template` on PVE ≥ 8.0): anything on stderr is a failure.
    QuietStderr,
}

/// One command of a plan, with how to judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What is sent.
    pub command: Command,
    /// How its outcome is judged.
    pub check: Check,
}

impl Step {
    fn exit(command: Command) -> Self {
        Self {
            command,
            check: Check::Exit,
        }
    }
}

/// A file written on a node before the steps run (mode 0600, private folder).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upload {
    /// The node.
    pub node: String,
    /// The node's private folder for this run, `<tmp_dir>-<node>`: nodes
    /// that share a `/tmp` (emulated nodes on one machine) keep apart.
    pub dir: String,
    /// The absolute path on the node, inside `dir`.
    pub path: String,
    /// The content.
    #[serde(skip)]
    pub content: String,
}

/// One key that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The config key.
    pub key: String,
    /// What the node has.
    pub from: Option<String>,
    /// What the file asks for.
    pub to: Option<String>,
}

/// Steps that prepare a node before VMs that depend on them (the image cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prelude {
    /// The node.
    pub node: String,
    /// The template VM id.
    pub vmid: VmId,
    /// What it is, for messages.
    pub label: String,
    /// The steps.
    pub steps: Vec<Step>,
    /// The storage lock its allocation takes (see [`storage_lock`]).
    pub storage_lock: String,
}

/// The plan for one VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmPlan {
    /// The name from the file.
    pub name: String,
    /// The VM id (from the file, found by name, or allocated).
    pub vmid: Option<VmId>,
    /// True when pvefleet chose the id (it may pick another on a clash).
    pub vmid_allocated: bool,
    /// The node the VM lives or will live on.
    pub node: String,
    /// What happens.
    pub action: Action,
    /// The commands, in order.
    pub steps: Vec<Step>,
    /// Indices into [`Plan::uploads`] the steps need.
    pub uploads: Vec<usize>,
    /// Index into [`Plan::preludes`] that must finish first.
    pub prelude: Option<usize>,
    /// The storage lock the steps take to allocate volumes (see
    /// [`storage_lock`]); none when no step allocates.
    pub storage_lock: Option<String>,
    /// The keys that change (updates).
    pub changes: Vec<Change>,
    /// Keys whose new value applies only after a reboot.
    pub reboot_pending: Vec<String>,
    /// Why a conflict or error, or a note.
    pub message: Option<String>,
    /// The desired address, to wait for in the guest agent.
    pub expect_ip: Option<std::net::IpAddr>,
    /// True when the VM should run.
    pub running: bool,
    /// True when the steps include starting the VM.
    pub starts: bool,
}

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per VM, in file order.
    pub vms: Vec<VmPlan>,
    /// Files to write first.
    pub uploads: Vec<Upload>,
    /// Per-node preparation (image cache templates).
    pub preludes: Vec<Prelude>,
}

impl Plan {
    /// True when nothing would change.
    pub fn is_converged(&self) -> bool {
        self.vms
            .iter()
            .all(|v| v.action == Action::None && v.steps.is_empty())
            && self.preludes.is_empty()
    }

    /// True when a VM is in conflict or cannot be planned.
    pub fn has_problems(&self) -> bool {
        self.vms
            .iter()
            .any(|v| matches!(v.action, Action::Conflict | Action::Error))
    }
}

/// What the planner needs.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The file.
    pub desired: &'a Desired,
    /// The nodes.
    pub observed: &'a Observed,
    /// The base name of this run's private upload folders
    /// (`/tmp/pvefleet-<run id>`; see [`Upload::dir`]).
    pub tmp_dir: &'a str,
    /// Add `qm reboot` for running VMs whose changes wait for a reboot.
    pub reboot: bool,
    /// Limit to these VM names or ids (empty: all).
    pub only: &'a [String],
}

/// Keys that a running VM takes only at the next boot: hardware keys become
/// pending; cloud-init keys are written but the cloud-init drive is only
/// regenerated at start.
const COLD_KEYS: &[&str] = &[
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
];

/// The node name each spec resolves to, before placement.
fn node_names(desired: &Desired, observed: &Observed) -> Vec<String> {
    if desired.cluster {
        desired.node_names()
    } else {
        observed
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .take(1)
            .collect()
    }
}

/// True when `spec` is selected by `--only`.
pub fn selected(spec: &VmSpec, only: &[String]) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|o| *o == spec.name || spec.vmid.is_some_and(|id| id.to_string() == *o))
}

fn is_managed(vm: &ClusterVm) -> bool {
    vm.tags.iter().any(|t| t == OWNER_TAG)
}

/// Finds the existing VM a spec refers to: by id, or (without id) by name
/// among managed VMs.
pub fn find_existing<'a>(spec: &VmSpec, observed: &'a Observed) -> Option<&'a ClusterVm> {
    match spec.vmid {
        Some(id) => observed.vm(id),
        None => observed
            .all_vms()
            .into_iter()
            .find(|v| v.name.as_deref() == Some(spec.name.as_str()) && is_managed(v)),
    }
}

/// The lock Proxmox takes to allocate on `storage` from `node` (CONTRACT
/// §11.3), as a name: `shared/<storage>` for a storage shared by the
/// cluster (one pmxcfs lock for all nodes), `<node>/<storage>` for a local
/// one (a flock on that node).
pub fn storage_lock(node: &str, storage: &str, observed: &Observed) -> String {
    if observed.shared_storages.contains(storage) {
        ["shared/", storage].concat()
    } else {
        [node, "/", storage].concat()
    }
}

/// The template VM a `clone:` refers to.
pub fn find_template<'a>(r: &CloneRef, observed: &'a Observed) -> Option<&'a ClusterVm> {
    observed.all_vms().into_iter().find(|v| match r {
        CloneRef::Id(id) => v.vmid == *id,
        CloneRef::Name(n) => v.template && v.name.as_deref() == Some(n.as_str()),
    })
}

/// VMs whose configuration the planner needs: managed VMs of the file and
/// the templates they clone. Returns (node, vmid).
pub fn configs_needed(desired: &Desired, observed: &Observed) -> Vec<(String, VmId)> {
    let mut out = BTreeSet::new();
    for spec in &desired.vms {
        if let Some(vm) = find_existing(spec, observed) {
            if is_managed(vm) && !vm.template {
                out.insert((vm.node.clone(), vm.vmid));
            }
        }
        if let DiskSource::Clone(r) = &spec.source {
            if let Some(t) = find_template(r, observed) {
                out.insert((t.node.clone(), t.vmid));
            }
        }
    }
    out.into_iter().collect()
}

/// The cloud images VMs may need on a node (`None`: the single host of a
/// `proxmox:` file, whose name is not known yet). In a cluster, VMs with
/// `node: auto` may land anywhere.
pub fn images_for_node(desired: &Desired, node: Option<&str>) -> BTreeSet<ImageRef> {
    desired
        .vms
        .iter()
        .filter(|s| {
            !desired.cluster
                || match s.node.as_deref() {
                    Some("auto") | None => true,
                    Some(n) => Some(n) == node,
                }
        })
        .filter_map(|s| match &s.source {
            DiskSource::Image(i) => Some(i.clone()),
            DiskSource::Clone(_) => None,
        })
        .collect()
}

/// One image-cache template per (node, storage, image, disk size).
type CacheKey = (String, String, ImageRef, Option<u64>);

struct Planner<'a> {
    input: PlanInput<'a>,
    used_ids: BTreeSet<u32>,
    next_id: u32,
    free_memory: BTreeMap<String, i64>,
    plan: Plan,
    cache: BTreeMap<CacheKey, (usize, VmId)>,
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The name of the cache template for an image on a storage.
/// The name of the cache template for an image on a storage, grown to
/// `disk` bytes (or left at the image's size).
pub fn cache_name(image: &ImageRef, storage: &str, disk: Option<u64>) -> String {
    let size = disk.map(format_size).unwrap_or_default();
    let key = [image.display().as_str(), "@", storage, "/", &size].concat();
    let mut name = String::from("pvefleet-img-");
    name.push_str(&format!("{:08x}", fnv(&key)));
    name
}

impl<'a> Planner<'a> {
    fn alloc_id(&mut self) -> Option<VmId> {
        let mut candidate = self.next_id.max(100);
        while self.used_ids.contains(&candidate) {
            candidate += 1;
        }
        self.used_ids.insert(candidate);
        self.next_id = candidate + 1;
        VmId::new(i64::from(candidate)).ok()
    }

    fn upload(&mut self, node: &str, content: String) -> usize {
        if let Some(i) = self
            .plan
            .uploads
            .iter()
            .position(|u| u.node == node && u.content == content)
        {
            return i;
        }
        let n = self.plan.uploads.iter().filter(|u| u.node == node).count();
        // Node names are host names; anything else is kept out of the path.
        let safe: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = [self.input.tmp_dir, "-", &safe].concat();
        let path = [dir.as_str(), "/sshkeys-", &n.to_string(), ".pub"].concat();
        self.plan.uploads.push(Upload {
            node: node.to_string(),
            dir,
            path,
            content,
        });
        self.plan.uploads.len() - 1
    }

    fn place(&mut self, spec: &VmSpec) -> Result<String, String> {
        let desired = self.input.desired;
        let observed = self.input.observed;
        if !desired.cluster {
            let Some(node) = observed.nodes.first() else {
                return Err("the host was not observed".into());
            };
            return match spec.node.as_deref() {
                Some(n) if n != node.name => Err([
                    "node '",
                    n,
                    "' is not the host's node (it reports '",
                    &node.name,
                    "')",
                ]
                .concat()),
                _ => Ok(node.name.clone()),
            };
        }
        match spec.node.as_deref() {
            Some("auto") => {
                let need = (spec.memory as i64) << 20;
                let best = self
                    .free_memory
                    .iter()
                    .filter(|(name, _)| self.image_available(spec, name))
                    .max_by_key(|(name, free)| (**free, std::cmp::Reverse((*name).clone())))
                    .map(|(name, _)| name.clone());
                match best {
                    Some(name) => {
                        if let Some(free) = self.free_memory.get_mut(&name) {
                            *free -= need;
                        }
                        Ok(name)
                    }
                    None => Err("node: auto found no online node that has the image".into()),
                }
            }
            Some(n) => Ok(n.to_string()),
            None => Err("no node".into()),
        }
    }

    fn image_available(&self, spec: &VmSpec, node: &str) -> bool {
        match &spec.source {
            DiskSource::Image(ImageRef::Volume { storage, .. }) => {
                let Some(state) = self.input.observed.node(node) else {
                    return false;
                };
                let volid = image_volid(spec);
                state
                    .storages
                    .get(storage)
                    .is_some_and(|vols| vols.iter().any(|v| Some(&v.volid) == volid.as_ref()))
            }
            DiskSource::Image(ImageRef::Path(_)) => true,
            DiskSource::Clone(r) => {
                find_template(r, self.input.observed).is_some_and(|t| t.node == node)
            }
        }
    }

    fn vm(&mut self, spec: &VmSpec) -> VmPlan {
        let mut vp = VmPlan {
            name: spec.name.clone(),
            vmid: spec.vmid,
            vmid_allocated: false,
            node: spec.node.clone().unwrap_or_default(),
            action: Action::None,
            steps: Vec::new(),
            uploads: Vec::new(),
            prelude: None,
            storage_lock: None,
            changes: Vec::new(),
            reboot_pending: Vec::new(),
            message: None,
            expect_ip: match spec.ip {
                Some(IpConfig::Static { address, .. }) => Some(address.into()),
                _ => None,
            },
            running: options::wants_running(spec),
            starts: false,
        };
        let observed = self.input.observed;
        if let Some(existing) = find_existing(spec, observed) {
            vp.vmid = Some(existing.vmid);
            vp.node = existing.node.clone();
            if self.unreachable(&mut vp) {
                return vp;
            }
            if !is_managed(existing) || existing.kind != "qemu" {
                vp.action = Action::Conflict;
                let what = if existing.kind == "qemu" {
                    "VM"
                } else {
                    "container"
                };
                vp.message = Some(
                    [
                        "a ",
                        what,
                        " with id ",
                        &existing.vmid.to_string(),
                        " exists on node ",
                        &existing.node,
                        " and is not managed by pvefleet (no '",
                        OWNER_TAG,
                        "' tag); it is left untouched",
                    ]
                    .concat(),
                );
                return vp;
            }
            if existing.template {
                vp.action = Action::Conflict;
                vp.message = Some("the VM id belongs to a template".into());
                return vp;
            }
            if let Some(want) = spec.node.as_deref().filter(|n| *n != "auto") {
                if self.input.desired.cluster && want != existing.node {
                    vp.action = Action::Error;
                    vp.message = Some(
                        [
                            "the VM is on node ",
                            &existing.node,
                            ", the file says ",
                            want,
                            "; migrate it by hand or change the file",
                        ]
                        .concat(),
                    );
                    return vp;
                }
            }
            self.update(spec, existing, &mut vp);
            return vp;
        }
        // A name used by a VM pvefleet does not manage is a clash too.
        if spec.vmid.is_none() {
            if let Some(other) = observed
                .all_vms()
                .into_iter()
                .find(|v| v.name.as_deref() == Some(spec.name.as_str()))
            {
                vp.action = Action::Conflict;
                vp.vmid = Some(other.vmid);
                vp.node = other.node.clone();
                vp.message = Some(
                    [
                        "a VM named '",
                        &spec.name,
                        "' (id ",
                        &other.vmid.to_string(),
                        ") exists and is not managed by pvefleet",
                    ]
                    .concat(),
                );
                return vp;
            }
        }
        match self.place(spec) {
            Ok(node) => {
                vp.node = node;
                if self.unreachable(&mut vp) {
                    return vp;
                }
            }
            Err(why) => {
                vp.action = Action::Error;
                vp.message = Some(why);
                return vp;
            }
        }
        self.create(spec, &mut vp);
        vp
    }

    /// Marks `vp` as an error when its node could not be read: nothing is
    /// known of its VMs there, so nothing is planned for it.
    fn unreachable(&self, vp: &mut VmPlan) -> bool {
        let Some(why) = self.input.observed.unreachable.get(&vp.node) else {
            return false;
        };
        vp.action = Action::Error;
        vp.message = Some(
            [
                "node ",
                &vp.node,
                " could not be reached (",
                why,
                "); the VM is left alone this run",
            ]
            .concat(),
        );
        true
    }

    fn node_state(&self, node: &str) -> Option<&'a NodeState> {
        self.input.observed.node(node)
    }

    fn check_bridge(&self, spec: &VmSpec, node: &str) -> Result<(), String> {
        match self.node_state(node) {
            Some(state) if !state.bridges.contains(&spec.bridge) => Err([
                "bridge '",
                &spec.bridge,
                "' does not exist on node ",
                node,
                " (it has: ",
                &state.bridges.join(", "),
                ")",
            ]
            .concat()),
            _ => Ok(()),
        }
    }

    fn import_source(
        &self,
        img: &ImageRef,
        node: &NodeState,
        version: PveVersion,
    ) -> Result<String, String> {
        match img {
            ImageRef::Path(p) => Ok(p.clone()),
            ImageRef::Volume { storage, volname } => {
                let volid = [storage.as_str(), ":", volname].concat();
                let listed = node.storages.get(storage).ok_or_else(|| {
                    [
                        "storage '",
                        storage,
                        "' is not available on node ",
                        &node.name,
                    ]
                    .concat()
                })?;
                if !listed.iter().any(|v| v.volid == volid) {
                    return Err([
                        "image ",
                        &volid,
                        " not found on node ",
                        &node.name,
                        " (storage ",
                        storage,
                        ")",
                    ]
                    .concat());
                }
                let content = volname.split('/').next().unwrap_or("");
                if content == "images" || (content == "import" && version.has_import_content()) {
                    return Ok(volid);
                }
                // `import-from` rejects iso volumes and `qm importdisk` wants a
                // file: use the host path (CONTRACT §4.1, §16.2-3).
                node.image_paths.get(&volid).cloned().ok_or_else(|| {
                    [
                        "cannot resolve the host path of ",
                        &volid,
                        " (pvesm path failed)",
                    ]
                    .concat()
                })
            }
        }
    }

    fn keys_path(&mut self, spec: &VmSpec, node: &str, vp: &mut VmPlan) -> Option<String> {
        let text = options::ssh_keys_text(spec)?;
        let i = self.upload(node, text);
        if !vp.uploads.contains(&i) {
            vp.uploads.push(i);
        }
        Some(self.plan.uploads[i].path.clone())
    }

    fn create(&mut self, spec: &VmSpec, vp: &mut VmPlan) {
        let Some(node) = self.node_state(&vp.node) else {
            vp.action = Action::Error;
            vp.message = Some(["node ", &vp.node, " was not observed"].concat());
            return;
        };
        let Some(version) = node.version else {
            vp.action = Action::Error;
            vp.message = Some("the node's Proxmox version is unknown".into());
            return;
        };
        if !version.at_least(7, 0) {
            vp.action = Action::Error;
            vp.message = Some(
                [
                    "Proxmox VE ",
                    &version.to_string(),
                    " is not supported (7.0 or later is)",
                ]
                .concat(),
            );
            return;
        }
        if let Err(why) = self.check_bridge(spec, &vp.node) {
            vp.action = Action::Error;
            vp.message = Some(why);
            return;
        }
        let vmid = match vp.vmid {
            Some(id) => id,
            None => match self.alloc_id() {
                Some(id) => {
                    vp.vmid_allocated = true;
                    id
                }
                None => {
                    vp.action = Action::Error;
                    vp.message = Some("no free VM id".into());
                    return;
                }
            },
        };
        vp.vmid = Some(vmid);
        vp.action = Action::Create;
        let keys = self.keys_path(spec, &vp.node.clone(), vp);
        let legacy = !version.has_disk_group();
        let mut system_disk = "scsi0".to_string();
        let mut grow = spec.disk;
        match &spec.source {
            DiskSource::Image(img) if spec.disk_from == DiskFrom::Import => {
                let src = match self.import_source(img, node, version) {
                    Ok(s) => s,
                    Err(why) => {
                        vp.action = Action::Error;
                        vp.message = Some(why);
                        return;
                    }
                };
                let mut o = QmOptions::new();
                options::common_options(spec, keys.as_deref(), &mut o);
                o.push("ostype", "l26");
                o.push("scsihw", "virtio-scsi-pci");
                let cloudinit = [spec.storage.as_str(), ":cloudinit"].concat();
                if version.has_import_from() {
                    o.push(
                        "scsi0",
                        [spec.storage.as_str(), ":0,import-from=", &src].concat(),
                    );
                    o.push("ide2", cloudinit);
                    o.push("boot", "order=scsi0");
                    vp.steps.push(Step {
                        command: Command::Qm(Qm::Create { vmid, options: o }),
                        check: Check::Reserve,
                    });
                } else {
                    o.push("ide2", cloudinit);
                    vp.steps.push(Step {
                        command: Command::Qm(Qm::Create { vmid, options: o }),
                        check: Check::Reserve,
                    });
                    vp.steps.push(Step {
                        command: Command::Qm(Qm::ImportDisk {
                            vmid,
                            source: src,
                            storage: spec.storage.clone(),
                            legacy,
                        }),
                        check: Check::Import,
                    });
                    let mut attach = QmOptions::new();
                    attach.push("scsi0", IMPORTED_VOLUME);
                    attach.push("boot", "order=scsi0");
                    vp.steps.push(Step::exit(Command::Qm(Qm::Set {
                        vmid,
                        options: attach,
                        delete: Vec::new(),
                    })));
                }
            }
            DiskSource::Image(img) => {
                let full = spec.disk_from == DiskFrom::FullClone;
                let (prelude, template) = match self.cache_template(img, spec, node, version) {
                    Ok(t) => t,
                    Err(why) => {
                        vp.action = Action::Error;
                        vp.message = Some(why);
                        return;
                    }
                };
                vp.prelude = prelude;
                // The cache template already has the size.
                grow = None;
                self.clone_steps(spec, vp, vmid, template, full, None, keys.as_deref(), true);
            }
            DiskSource::Clone(r) => {
                let Some(t) = find_template(r, self.input.observed) else {
                    vp.action = Action::Error;
                    vp.message = Some("the template VM to clone was not found".into());
                    return;
                };
                if !t.template {
                    vp.action = Action::Error;
                    vp.message = Some(
                        [
                            "VM ",
                            &t.vmid.to_string(),
                            " is not a template; convert it with 'qm template' first",
                        ]
                        .concat(),
                    );
                    return;
                }
                if t.node != vp.node {
                    vp.action = Action::Error;
                    vp.message = Some(
                        [
                            "the template ",
                            &t.vmid.to_string(),
                            " is on node ",
                            &t.node,
                            ", the VM on ",
                            &vp.node,
                        ]
                        .concat(),
                    );
                    return;
                }
                let tcfg = node.configs.get(&t.vmid);
                let has_cloudinit =
                    tcfg.is_some_and(|c| c.current.values().any(|v| v.contains("cloudinit")));
                system_disk = tcfg.map(boot_disk).unwrap_or_else(|| "scsi0".into());
                let tstorage = tcfg
                    .and_then(|c| c.current.get(&system_disk))
                    .and_then(|v| v.split(':').next().map(str::to_string));
                let full = tstorage.as_deref().is_some_and(|s| s != spec.storage);
                let storage = full.then(|| spec.storage.clone());
                self.clone_steps(
                    spec,
                    vp,
                    vmid,
                    t.vmid,
                    full,
                    storage,
                    keys.as_deref(),
                    !has_cloudinit,
                );
            }
        }
        if let Some(bytes) = grow {
            vp.steps.push(Step {
                command: Command::Qm(Qm::DiskResize {
                    vmid,
                    disk: system_disk,
                    size: format_size(bytes),
                    legacy,
                }),
                check: Check::QuietStderr,
            });
        }
        if vp.running {
            vp.steps.push(Step::exit(Command::Qm(Qm::Start { vmid })));
            vp.starts = true;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn clone_steps(
        &mut self,
        spec: &VmSpec,
        vp: &mut VmPlan,
        vmid: VmId,
        template: VmId,
        full: bool,
        storage: Option<String>,
        keys: Option<&str>,
        add_cloudinit: bool,
    ) {
        vp.steps.push(Step {
            command: Command::Qm(Qm::Clone {
                vmid: template,
                newid: vmid,
                name: spec.name.clone(),
                full,
                storage,
            }),
            check: Check::Reserve,
        });
        let mut o = QmOptions::new();
        options::common_options(spec, keys, &mut o);
        if add_cloudinit {
            o.push("ide2", [spec.storage.as_str(), ":cloudinit"].concat());
        }
        vp.steps.push(Step::exit(Command::Qm(Qm::Set {
            vmid,
            options: o,
            delete: Vec::new(),
        })));
    }

    /// The image-cache template for (node, storage, image): found, or planned.
    fn cache_template(
        &mut self,
        img: &ImageRef,
        spec: &VmSpec,
        node: &NodeState,
        version: PveVersion,
    ) -> Result<(Option<usize>, VmId), String> {
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
            return Err("the image cache needs Proxmox VE 7.2 or later".into());
        }
        let src = self.import_source(img, node, version)?;
        let vmid = self.alloc_id().ok_or("no free VM id")?;
        let mut o = QmOptions::new();
        o.push("name", &name);
        o.push("ostype", "l26");
        o.push("scsihw", "virtio-scsi-pci");
        o.push(
            "scsi0",
            [spec.storage.as_str(), ":0,import-from=", &src].concat(),
        );
        o.push("boot", "order=scsi0");
        o.push("serial0", "socket");
        o.push("vga", "serial0");
        o.push("agent", "enabled=1");
        o.push("tags", [CACHE_TAG, ";", OWNER_TAG].concat());
        o.push(
            "description",
            [
                "pvefleet image cache of ",
                &img.display(),
                " on ",
                &spec.storage,
                "\n",
                OWNER_DESCRIPTION_LINE,
            ]
            .concat(),
        );
        let mut steps = vec![Step {
            command: Command::Qm(Qm::Create { vmid, options: o }),
            check: Check::Reserve,
        }];
        // Grown once here, its clones need no resize of their own.
        if let Some(bytes) = spec.disk {
            steps.push(Step {
                command: Command::Qm(Qm::DiskResize {
                    vmid,
                    disk: "scsi0".into(),
                    size: format_size(bytes),
                    legacy: !version.has_disk_group(),
                }),
                check: Check::QuietStderr,
            });
        }
        steps.push(Step {
            command: Command::Qm(Qm::Template { vmid }),
            check: Check::QuietStderr,
        });
        self.plan.preludes.push(Prelude {
            node: node.name.clone(),
            vmid,
            label: ["image cache ", &name, " (", &img.display(), ")"].concat(),
            steps,
            storage_lock: storage_lock(&node.name, &spec.storage, self.input.observed),
        });
        let i = self.plan.preludes.len() - 1;
        self.cache.insert(key, (i, vmid));
        Ok((Some(i), vmid))
    }

    fn update(&mut self, spec: &VmSpec, existing: &ClusterVm, vp: &mut VmPlan) {
        let vmid = existing.vmid;
        if let Some(lock) = &existing.lock {
            vp.action = Action::Error;
            vp.message = Some(
                [
                    "VM ",
                    &vmid.to_string(),
                    " is locked (",
                    lock,
                    "); check 'qm config' and 'qm unlock' it when nothing runs on it",
                ]
                .concat(),
            );
            return;
        }
        let Some(cfg) = self
            .node_state(&existing.node)
            .and_then(|n| n.configs.get(&vmid))
        else {
            vp.action = Action::Error;
            vp.message = Some("the VM's configuration could not be read".into());
            return;
        };
        let version = self
            .node_state(&existing.node)
            .and_then(|n| n.version)
            .unwrap_or(PveVersion {
                major: 8,
                minor: 0,
                patch: 0,
            });
        let running = existing.status.as_deref() == Some("running");
        let mut o = QmOptions::new();
        for (key, want) in options::managed_values(spec) {
            let Some(want) = want else { continue };
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
        // net0: keep the MAC Proxmox generated unless the file sets one.
        let have_net = cfg.effective("net0").unwrap_or("");
        let parsed = PropertyString::parse(have_net);
        let have_mac = parsed.first().and_then(|(k, v)| k.map(|_| v.to_string()));
        let want_net = options::net0(spec, have_mac.as_deref());
        if !same_net(have_net, &want_net) {
            vp.changes.push(Change {
                key: "net0".into(),
                from: Some(have_net.to_string()).filter(|s| !s.is_empty()),
                to: Some(want_net.clone()),
            });
            o.push("net0", want_net);
            if let Err(why) = self.check_bridge(spec, &existing.node) {
                vp.action = Action::Error;
                vp.message = Some(why);
                return;
            }
        }
        if !options::same_keys(cfg.effective("sshkeys"), spec) {
            let path = self.keys_path(spec, &existing.node, vp);
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
                to: Some(if path.is_some() {
                    spec.ssh_keys.len().to_string() + " key(s)"
                } else {
                    "<none>".into()
                }),
            });
            if let Some(p) = path {
                o.push("sshkeys", p)
            }
        }
        let mut delete = Vec::new();
        if spec.ssh_keys.is_empty() && cfg.effective("sshkeys").is_some() {
            delete.push("sshkeys".to_string());
        }
        if !o.is_empty() || !delete.is_empty() {
            vp.steps.push(Step::exit(Command::Qm(Qm::Set {
                vmid,
                options: o.clone(),
                delete,
            })));
        }
        // Disks only grow.
        if let Some(want) = spec.disk {
            let disk = boot_disk(cfg);
            let have = cfg
                .effective(&disk)
                .and_then(|v| PropertyString::parse(v).get("size").map(str::to_string))
                .and_then(|s| parse_size(&s).ok());
            match have {
                Some(h) if want > h => {
                    vp.changes.push(Change {
                        key: [disk.as_str(), " size"].concat(),
                        from: Some(format_size(h)),
                        to: Some(format_size(want)),
                    });
                    vp.steps.push(Step {
                        command: Command::Qm(Qm::DiskResize {
                            vmid,
                            disk,
                            size: format_size(want),
                            legacy: !version.has_disk_group(),
                        }),
                        check: Check::QuietStderr,
                    });
                }
                Some(h) if want < h => {
                    vp.message = Some(
                        [
                            "disk is ",
                            &format_size(h),
                            ", larger than ",
                            &format_size(want),
                            "; disks never shrink",
                        ]
                        .concat(),
                    );
                }
                _ => {}
            }
        }
        // Changes a running VM takes only at its next boot.
        if running {
            let mut cold: BTreeSet<String> = o
                .keys()
                .filter(|k| COLD_KEYS.contains(k))
                .map(str::to_string)
                .collect();
            cold.extend(cfg.pending.keys().cloned());
            cold.extend(cfg.pending_delete.iter().cloned());
            vp.reboot_pending = cold.into_iter().collect();
        }
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
        vp.action = if vp.steps.is_empty() {
            Action::None
        } else {
            Action::Update
        };
    }
}

/// Compares two net0 values by their keys (order-insensitive, MAC case-insensitive).
fn same_net(have: &str, want: &str) -> bool {
    let norm = |s: &str| {
        let mut items: Vec<String> = PropertyString::parse(s)
            .items()
            .map(|(k, v)| [k.unwrap_or(""), "=", &v.to_ascii_uppercase()].concat())
            .collect();
        items.sort();
        items
    };
    norm(have) == norm(want)
}

/// The VM's boot disk: the first disk of `boot: order=`, else `scsi0`.
fn boot_disk(cfg: &VmConfig) -> String {
    cfg.effective("boot")
        .and_then(|b| PropertyString::parse(b).get("order").map(str::to_string))
        .and_then(|order| {
            order
                .split(';')
                .find(|d| {
                    cfg.effective(d).is_some_and(|v| !v.contains("media=cdrom"))
                        && !d.starts_with("net")
                })
                .map(str::to_string)
        })
        .unwrap_or_else(|| "scsi0".into())
}

fn image_volid(spec: &VmSpec) -> Option<String> {
    match &spec.source {
        DiskSource::Image(ImageRef::Volume { storage, volname }) => {
            Some([storage.as_str(), ":", volname].concat())
        }
        _ => None,
    }
}

/// Computes the plan.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let observed = input.observed;
    let mut used_ids: BTreeSet<u32> = observed.all_vms().iter().map(|v| v.vmid.get()).collect();
    used_ids.extend(
        input
            .desired
            .vms
            .iter()
            .filter_map(|v| v.vmid.map(VmId::get)),
    );
    let free_memory = observed
        .nodes
        .iter()
        .filter(|n| node_names(input.desired, observed).contains(&n.name))
        .map(|n| (n.name.clone(), n.free_memory.unwrap_or(0)))
        .collect();
    let mut p = Planner {
        input,
        used_ids,
        next_id: observed.next_id.unwrap_or(100),
        free_memory,
        plan: Plan::default(),
        cache: BTreeMap::new(),
    };
    for spec in &input.desired.vms {
        if !selected(spec, input.only) {
            continue;
        }
        let mut vp = p.vm(spec);
        if vp.steps.iter().any(|s| s.command.allocates()) {
            vp.storage_lock = Some(storage_lock(&vp.node, &spec.storage, observed));
        }
        p.plan.vms.push(vp);
    }
    p.plan
}
