//! Why a VM cannot be planned ([`PlanProblem`]), and what is worth saying
//! about one that can ([`PlanNote`]). Each has a stable `code` for JSON.

use pvefleet_model::{VmId, OWNER_TAG};

pub use crate::note::PlanNote;

/// Why a VM is in conflict or cannot be planned. A VM with a problem gets
/// no steps.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanProblem {
    /// The node cannot download the image the file gives by URL.
    #[error("image {url} cannot be downloaded on node {node}: {reason}")]
    DownloadImpossible {
        /// The URL.
        url: String,
        /// The node.
        node: String,
        /// Why, with the fix.
        reason: String,
    },
    /// A guest pvefleet does not manage holds the VM id.
    #[error("a {kind} with id {vmid} exists on node {node} and is not managed by pvefleet (no '{tag}' tag); it is left untouched{}", foreign_fix(kind), tag = OWNER_TAG)]
    ForeignVm {
        /// `VM`, `template` or `container`.
        kind: &'static str,
        /// The id.
        vmid: VmId,
        /// Where it is.
        node: String,
    },
    /// A VM pvefleet does not manage has the name of a VM without `vmid`.
    #[error("a VM named '{name}' (id {vmid}) exists and is not managed by pvefleet; if it is a VM (not a template or container), {}; else rename one of them", ADOPT_FIX)]
    ForeignName {
        /// The name.
        name: String,
        /// The other VM's id.
        vmid: VmId,
    },
    /// The VM id belongs to a template.
    #[error("the VM id belongs to a template")]
    TemplateId {
        /// The id.
        vmid: VmId,
    },
    /// The VM exists on another node than the file says.
    #[error(
        "the VM is on node {node}, the file says {want}; migrate it by hand or change the file"
    )]
    WrongNode {
        /// The id.
        vmid: VmId,
        /// Where it is.
        node: String,
        /// Where the file puts it.
        want: String,
    },
    /// The VM's node could not be reached or read this run.
    #[error("node {node} could not be reached ({reason}); the VM is left alone this run")]
    NodeUnreachable {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The single host was not observed.
    #[error("the host was not observed")]
    HostNotObserved,
    /// The file names a node that is not the single host's node.
    #[error("node '{want}' is not the host's node (it reports '{node}')")]
    NotTheHostsNode {
        /// What the file says.
        want: String,
        /// What the host reports.
        node: String,
    },
    /// A cluster VM names no node.
    #[error("no node")]
    NoNode,
    /// `node: auto` found no node that qualifies; per node considered, what
    /// it lacks (`pve1: no bridge 'vmbr9'`).
    #[error("node: auto found no node that has what the VM needs ({})", if unmet.is_empty() { "no node of the file was observed".to_string() } else { unmet.join("; ") })]
    NoEligibleNode {
        /// Per node, what it lacks.
        unmet: Vec<String>,
    },
    /// The node is not among the observed ones.
    #[error("node {node} was not observed")]
    NodeNotObserved {
        /// The node.
        node: String,
    },
    /// The node did not report its version.
    #[error("the node's Proxmox version is unknown")]
    UnknownVersion {
        /// The node.
        node: String,
    },
    /// The node runs a Proxmox VE version pvefleet does not support.
    #[error("Proxmox VE {version} is not supported (7.0 or later is)")]
    UnsupportedVersion {
        /// The node.
        node: String,
        /// What it runs.
        version: String,
    },
    /// The bridge does not exist on the node.
    #[error("bridge '{bridge}' does not exist on node {node} (it has: {})", available.join(", "))]
    MissingBridge {
        /// The bridge.
        bridge: String,
        /// The node.
        node: String,
        /// The bridges it has.
        available: Vec<String>,
    },
    /// No VM id is free.
    #[error("no free VM id")]
    NoFreeVmid,
    /// The image's storage is not available on the node.
    #[error("storage '{storage}' is not available on node {node}")]
    StorageUnavailable {
        /// The storage.
        storage: String,
        /// The node.
        node: String,
    },
    /// The image is not on its storage.
    #[error("image {image} not found on node {node} (storage {storage})")]
    ImageNotFound {
        /// The volume id.
        image: String,
        /// The node.
        node: String,
        /// The storage.
        storage: String,
    },
    /// `pvesm path` did not resolve the image.
    #[error("cannot resolve the host path of {image} (pvesm path failed)")]
    ImagePathUnknown {
        /// The volume id.
        image: String,
    },
    /// The image cache needs `import-from`.
    #[error("the image cache needs Proxmox VE 7.2 or later")]
    CacheNeedsImportFrom {
        /// The node.
        node: String,
    },
    /// The template to clone does not exist.
    #[error("the template VM to clone was not found")]
    TemplateNotFound {
        /// The id or name from the file.
        template: String,
    },
    /// The VM to clone is not a template.
    #[error("VM {vmid} is not a template; convert it with 'qm template' first")]
    NotATemplate {
        /// Its id.
        vmid: VmId,
    },
    /// The template is on another node than the VM.
    #[error("the template {vmid} is on node {template_node}, the VM on {node}")]
    TemplateElsewhere {
        /// The template's id.
        vmid: VmId,
        /// Where the template is.
        template_node: String,
        /// Where the VM goes.
        node: String,
    },
    /// The VM carries a lock.
    #[error("VM {vmid} is locked ({lock}); check 'qm config' and 'qm unlock' it when nothing runs on it")]
    Locked {
        /// The id.
        vmid: VmId,
        /// The lock.
        lock: String,
    },
    /// The VM's configuration was not read.
    #[error("the VM's configuration could not be read")]
    ConfigUnreadable {
        /// The id.
        vmid: VmId,
    },
    /// More than one VM pvefleet manages carries the name.
    #[error("more than one managed VM is named '{name}' (ids {}); keep one and remove the others with 'qm destroy ID' (pvefleet destroy removes them all)", ids_text(vmids))]
    DuplicateName {
        /// The name.
        name: String,
        /// Their ids.
        vmids: Vec<VmId>,
    },
    /// The VM looks like a create or clone under way elsewhere: its
    /// config flock is held (or could not be asked).
    #[error("VM {vmid} on node {node} is being created by another process (lock: {lock}); wait for it to end, or if nothing runs there any more: qm destroy {vmid} --skiplock 1 --purge 1")]
    CreateInProgress {
        /// The id.
        vmid: VmId,
        /// Its node.
        node: String,
        /// `create` or `clone`.
        lock: String,
    },
    /// The VM's `storage` does not exist on the node.
    #[error("storage '{storage}' does not exist on node {node} (it has: {})", available.join(", "))]
    NoSuchStorage {
        /// The storage.
        storage: String,
        /// The node.
        node: String,
        /// The storages the node has.
        available: Vec<String>,
    },
    /// The VM's `storage` is not enabled for VM disks (`images`), as a
    /// default installation's `local` (CONTRACT §13).
    #[error("storage '{storage}' on node {node} cannot hold VM disks: its content types ({}) do not include 'images'; {}", if content.is_empty() { "none".to_string() } else { content.join(",") }, storage_fix(storage, content, alternatives, *can_hold_images))]
    StorageWithoutImages {
        /// The storage.
        storage: String,
        /// The node.
        node: String,
        /// Its content types, as Proxmox lists them.
        content: Vec<String>,
        /// Storages of the node that hold VM disks.
        alternatives: Vec<String>,
        /// False for storage types that never hold VM disks (`cephfs`, `pbs`,
        /// `esxi`): enabling `images` is no fix there.
        can_hold_images: bool,
    },
    /// `disk` is smaller than the disk the VM starts from; disks cannot
    /// shrink, so the resize would fail.
    #[error("disk: {disk} is smaller than {of}; a disk cannot shrink: set 'disk' to at least {size}, or leave it out")]
    DiskTooSmall {
        /// The size in the file.
        disk: String,
        /// The size of what the disk starts from.
        size: String,
        /// What that is.
        of: SizeOf,
    },
    /// A data disk pvefleet made is no longer in the file: removing it
    /// destroys its volume, which needs `--allow-data-loss`.
    #[error("disk {slot} ({volume}) is no longer in the file; removing it destroys the volume: pass --allow-data-loss to remove it, or put it back in 'disks'")]
    DiskRemoved {
        /// The slot.
        slot: String,
        /// Its volume.
        volume: String,
    },
    /// A data disk's size in the file is smaller than the disk: Proxmox
    /// cannot shrink a disk (`qm disk resize` refuses), even with
    /// `--allow-data-loss`.
    #[error("disk {slot} is {have}, the file asks for {want}; Proxmox cannot shrink a disk: if the list of disks was reordered, restore its order or name each disk's 'slot'; else keep the size, or remove the disk from the file (with --allow-data-loss) and re-add it under another slot")]
    DiskShrink {
        /// The slot.
        slot: String,
        /// Its size.
        have: String,
        /// The size in the file.
        want: String,
    },
    /// Disks matched by their place in the list (no `slot`) would change
    /// while a new one is added: as if a disk was inserted before them,
    /// which would grow and re-option the wrong disks.
    #[error("disks without 'slot' are matched by their place in the list: this change adds {} and changes {}, as a disk inserted before them would; add new disks at the end of 'disks', or name each disk's 'slot'", added.join(", "), changed.join(", "))]
    DisksShifted {
        /// The slots the change would add.
        added: Vec<String>,
        /// The existing slots it would change.
        changed: Vec<String>,
    },
    /// A NIC after `net0` would move to another bridge keeping its MAC,
    /// and the file does not name that MAC: most likely NICs shifted in
    /// `networks` (one removed or inserted before it).
    #[error("{key} would move from bridge {from} to {to} keeping its MAC {mac}; NICs are matched by their place in 'networks', so removing or inserting one before it shifts the ones after: give each NIC its 'mac' to say which is which, or, to move this NIC, write mac: {mac} on it")]
    NicShifted {
        /// `netN`.
        key: String,
        /// Its bridge now.
        from: String,
        /// The bridge the file's entry N names.
        to: String,
        /// Its MAC.
        mac: String,
    },
    /// The slot a data disk names holds something that is not a disk.
    #[error("slot {slot} of the VM holds '{value}', which is not a disk; choose another 'slot'")]
    DiskSlotTaken {
        /// The slot.
        slot: String,
        /// What it holds.
        value: String,
    },
    /// The image volume is listed with a content type that is no disk image.
    #[error("image {image} is listed as '{content}' content; an image must be an 'iso', 'import' or 'images' volume")]
    ImageWrongContent {
        /// The volume id.
        image: String,
        /// The content type it is listed under.
        content: String,
    },
    /// The change destroys data a VM keeps (its EFI vars, its TPM state):
    /// only done with `--allow-data-loss`.
    #[error("{change} destroys {what}; pass --allow-data-loss to do it anyway, or keep the setting in the file")]
    DataLoss {
        /// What the file changes (`bios: ovmf -> seabios (removes efidisk0)`).
        change: String,
        /// What is lost.
        what: &'static str,
    },
    /// The file's pool does not exist in the cluster.
    #[error("pool '{pool}' does not exist; create it with 'pveum pool add {pool}' on a node, or fix 'pool'")]
    MissingPool {
        /// The pool.
        pool: String,
    },
    /// `bios: ovmf` (4m EFI vars) or `tpm` on a node older than PVE 7.1,
    /// whose qemu-server has neither `efitype`/`pre-enrolled-keys` nor
    /// `tpmstate0`.
    #[error("{what} needs Proxmox VE 7.1 or later; node {node} runs {version}")]
    FirmwareNeedsVersion {
        /// `bios: ovmf` or `tpm`.
        what: &'static str,
        /// The node.
        node: String,
        /// What it runs.
        version: String,
    },
    /// A protected VM would lose its EFI vars or TPM state: Proxmox refuses
    /// to remove a drive of a protected VM.
    #[error("VM {vmid} is protected and Proxmox refuses to remove its {key}; set 'protection: false' in the file to let this apply lift it first")]
    ProtectedDrive {
        /// The id.
        vmid: VmId,
        /// `efidisk0`, `tpmstate0` or a data disk's slot.
        key: String,
    },
    /// `ha.group` on PVE 9 or later, where HA groups became HA rules.
    #[error("HA groups became HA rules in Proxmox VE 9.0 (node {node} runs {version}); drop 'group' from 'ha' and set up the node affinity with 'ha-manager rules add'")]
    HaGroupsMigrated {
        /// The node.
        node: String,
        /// What it runs.
        version: String,
    },
    /// `destroy` of a protected VM: Proxmox refuses it.
    #[error("VM {vmid} is protected (protection: 1) and Proxmox refuses to destroy it; remove 'protection' from the file and run apply first, then destroy")]
    Protected {
        /// The id.
        vmid: VmId,
    },
    /// `snippets_storage` does not exist on the VM's node.
    #[error("snippets_storage '{storage}' does not exist on node {node}; name a directory storage of the node that has the 'snippets' content type")]
    SnippetsStorageMissing {
        /// The storage.
        storage: String,
        /// The node.
        node: String,
    },
    /// `snippets_storage` lacks the `snippets` content type (a default
    /// installation's `local` has `iso,vztmpl,backup`).
    #[error("storage '{storage}' on node {node} cannot hold cloud-init snippets: its content types ({}) do not include 'snippets'; enable it with: pvesm set {storage} --content {}", if content.is_empty() { "none".to_string() } else { content.join(",") }, with_snippets(content))]
    SnippetsNotEnabled {
        /// The storage.
        storage: String,
        /// The node.
        node: String,
        /// Its content types, as Proxmox lists them.
        content: Vec<String>,
    },
    /// `snippets_storage` is not active on the node (`/cluster/resources`
    /// lists it with a status other than `available`).
    #[error("snippets_storage '{storage}' is not active on node {node}; check it with 'pvesm status' on the node (a mount that is down, a disabled storage)")]
    SnippetsStorageInactive {
        /// The storage.
        storage: String,
        /// The node.
        node: String,
    },
    /// `pvesm path` gave no path for the snippet on the node: the storage
    /// is not active there, or holds no files.
    #[error("the path of the snippet {volid} on node {node} is not known ('pvesm path' failed): the storage is not active on the node or is not a file storage; use a directory storage (dir, nfs, cifs, cephfs) with the 'snippets' content type")]
    SnippetPathUnknown {
        /// The snippet's volume id.
        volid: String,
        /// The node.
        node: String,
    },
}

/// A storage's content types with `snippets` added, as `pvesm set --content`
/// takes them (the existing types kept).
fn with_snippets(content: &[String]) -> String {
    let mut all: Vec<&str> = content.iter().map(String::as_str).collect();
    all.push("snippets");
    all.join(",")
}

/// How to take over a VM pvefleet does not manage.
const ADOPT_FIX: &str =
    "'pvefleet apply --adopt' takes it over ('pvefleet import' writes a file for it)";

/// The fix of [`PlanProblem::ForeignVm`]: a VM can be adopted, a template
/// or a container never is.
fn foreign_fix(kind: &str) -> String {
    if kind == "VM" {
        format!("; {ADOPT_FIX}")
    } else {
        " (templates and containers are never adopted)".to_string()
    }
}

fn ids_text(ids: &[VmId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fix of [`PlanProblem::StorageWithoutImages`].
fn storage_fix(
    storage: &str,
    content: &[String],
    alternatives: &[String],
    can_hold_images: bool,
) -> String {
    let other = if alternatives.is_empty() {
        "set 'storage' to a storage whose content includes 'images'".to_string()
    } else {
        format!(
            "set 'storage' to one that holds VM disks ({})",
            alternatives.join(", ")
        )
    };
    if !can_hold_images {
        return other;
    }
    let mut wanted: Vec<&str> = content.iter().map(String::as_str).collect();
    wanted.push("images");
    format!(
        "enable it with 'pvesm set {storage} --content {}', or {other}",
        wanted.join(",")
    )
}

/// What a disk size is compared with, for [`PlanProblem::DiskTooSmall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeOf {
    /// The virtual size of an `images` volume (exact).
    ImageVirtual {
        /// The volume id.
        image: String,
        /// The size.
        size: String,
    },
    /// The file size of an `iso` or `import` volume: Proxmox lists the
    /// file's size there, which the virtual size is at least (CONTRACT §12.2).
    ImageFile {
        /// The volume id.
        image: String,
        /// The size.
        size: String,
    },
    /// The boot disk of the template a VM is cloned from (its `size=`).
    Template {
        /// The template.
        vmid: VmId,
        /// Its boot disk.
        disk: String,
        /// The size.
        size: String,
    },
}

impl std::fmt::Display for SizeOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SizeOf::ImageVirtual { image, size } => {
                write!(f, "the virtual size of image {image} ({size})")
            }
            SizeOf::ImageFile { image, size } => write!(
                f,
                "image {image}, whose file alone is {size} (its virtual size is at least that)"
            ),
            SizeOf::Template { vmid, disk, size } => {
                write!(f, "the boot disk {disk} of template {vmid} ({size})")
            }
        }
    }
}

impl PlanProblem {
    /// True for problems caused by something pvefleet does not manage
    /// standing in the way (reported as `conflict`), false for those that
    /// make the VM impossible to plan (`error`).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            PlanProblem::ForeignVm { .. }
                | PlanProblem::ForeignName { .. }
                | PlanProblem::TemplateId { .. }
        )
    }

    /// A stable identifier for scripts (`--output json`).
    pub fn code(&self) -> &'static str {
        match self {
            PlanProblem::ForeignVm { .. } => "foreign_vm",
            PlanProblem::ForeignName { .. } => "foreign_name",
            PlanProblem::TemplateId { .. } => "template_id",
            PlanProblem::WrongNode { .. } => "wrong_node",
            PlanProblem::NodeUnreachable { .. } => "node_unreachable",
            PlanProblem::HostNotObserved => "host_not_observed",
            PlanProblem::NotTheHostsNode { .. } => "not_the_hosts_node",
            PlanProblem::NoNode => "no_node",
            PlanProblem::NoEligibleNode { .. } => "no_eligible_node",
            PlanProblem::NodeNotObserved { .. } => "node_not_observed",
            PlanProblem::UnknownVersion { .. } => "unknown_version",
            PlanProblem::UnsupportedVersion { .. } => "unsupported_version",
            PlanProblem::MissingBridge { .. } => "missing_bridge",
            PlanProblem::NoFreeVmid => "no_free_vmid",
            PlanProblem::StorageUnavailable { .. } => "storage_unavailable",
            PlanProblem::ImageNotFound { .. } => "image_not_found",
            PlanProblem::ImagePathUnknown { .. } => "image_path_unknown",
            PlanProblem::CacheNeedsImportFrom { .. } => "cache_needs_import_from",
            PlanProblem::TemplateNotFound { .. } => "template_not_found",
            PlanProblem::NotATemplate { .. } => "not_a_template",
            PlanProblem::TemplateElsewhere { .. } => "template_elsewhere",
            PlanProblem::Locked { .. } => "locked",
            PlanProblem::ConfigUnreadable { .. } => "config_unreadable",
            PlanProblem::DuplicateName { .. } => "duplicate_name",
            PlanProblem::CreateInProgress { .. } => "create_in_progress",
            PlanProblem::NoSuchStorage { .. } => "no_such_storage",
            PlanProblem::StorageWithoutImages { .. } => "storage_without_images",
            PlanProblem::DiskTooSmall { .. } => "disk_too_small",
            PlanProblem::ImageWrongContent { .. } => "image_wrong_content",
            PlanProblem::SnippetsStorageMissing { .. } => "snippets_storage_missing",
            PlanProblem::SnippetsNotEnabled { .. } => "snippets_not_enabled",
            PlanProblem::SnippetPathUnknown { .. } => "snippet_path_unknown",
            PlanProblem::SnippetsStorageInactive { .. } => "snippets_storage_inactive",
            PlanProblem::DownloadImpossible { .. } => "download_impossible",
            PlanProblem::DiskRemoved { .. } => "disk_removed",
            PlanProblem::DiskShrink { .. } => "disk_shrink",
            PlanProblem::DisksShifted { .. } => "disks_shifted",
            PlanProblem::NicShifted { .. } => "nic_shifted",
            PlanProblem::DiskSlotTaken { .. } => "disk_slot_taken",
            PlanProblem::DataLoss { .. } => "data_loss",
            PlanProblem::MissingPool { .. } => "missing_pool",
            PlanProblem::FirmwareNeedsVersion { .. } => "firmware_needs_version",
            PlanProblem::Protected { .. } => "protected",
            PlanProblem::HaGroupsMigrated { .. } => "ha_groups_migrated",
            PlanProblem::ProtectedDrive { .. } => "protected_drive",
        }
    }
}
