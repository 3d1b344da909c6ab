//! The validated desired state: what the user asked for, defaults applied.

use crate::span::SpanMap;
use crate::{NodeName, VmId};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// How to reach each node. One entry for `proxmox:`, several for `nodes:`.
    pub nodes: Vec<NodeConn>,
    /// True when the file used `nodes:` (a cluster).
    pub cluster: bool,
    /// The VMs, in file order.
    pub vms: Vec<VmSpec>,
    /// Where each VM and each of its effective values stand in the file,
    /// indexed as `vms`.
    pub spans: SpanMap,
}

impl Desired {
    /// The node names the file gives: every node of a cluster, the one of
    /// `proxmox:` when it names one.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().filter_map(|n| n.name.clone()).collect()
    }
}

/// How to reach one Proxmox node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConn {
    /// The Proxmox node name; `None` means "whatever the host reports".
    pub name: Option<String>,
    /// An SSH destination (`~/.ssh/config` aliases work), or `local`.
    pub host: String,
    /// The SSH user; `None` lets ssh decide (`User` in ~/.ssh/config).
    pub user: Option<String>,
    /// The SSH port, when not the ssh default.
    pub port: Option<u16>,
    /// `become: sudo`: every Proxmox command runs through `sudo -n`, for
    /// an SSH user other than root.
    pub sudo: bool,
}

/// IPv4 settings of `ipconfig0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpConfig {
    /// `ip=dhcp`.
    Dhcp,
    /// `ip=CIDR[,gw=GW]`.
    Static {
        /// The address with its prefix length, as written.
        address: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
        /// The gateway.
        gateway: Option<Ipv4Addr>,
    },
}

/// IPv6 settings of `ipconfig0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ip6Config {
    /// `ip6=dhcp`.
    Dhcp,
    /// `ip6=auto` (SLAAC).
    Auto,
    /// `ip6=CIDR[,gw6=GW]`.
    Static {
        /// The address.
        address: Ipv6Addr,
        /// The prefix length.
        prefix: u8,
        /// The gateway.
        gateway: Option<Ipv6Addr>,
    },
}

/// A cloud image on the host.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageRef {
    /// A volume id, `STORAGE:VOLNAME` (e.g. `local:iso/jammy.img`).
    Volume {
        /// The storage id.
        storage: String,
        /// The volume name within the storage (`iso/jammy.img`).
        volname: String,
    },
    /// An absolute path on the host.
    Path(String),
}

impl ImageRef {
    /// The text as the user wrote it (`local:iso/x.img` or `/var/lib/...`).
    pub fn display(&self) -> String {
        match self {
            ImageRef::Volume { storage, volname } => format!("{storage}:{volname}"),
            ImageRef::Path(p) => p.clone(),
        }
    }

    /// The content type the volume is listed under (`iso`, `import`, `images`).
    pub fn content_type(&self) -> Option<&str> {
        match self {
            ImageRef::Volume { volname, .. } => volname.split('/').next(),
            ImageRef::Path(_) => None,
        }
    }
}

/// An image fetched by URL (`image: {url, checksum, storage, filename}`):
/// downloaded once per node (once for a shared storage) by Proxmox, then
/// used like any image. The VM's [`DiskSource::Image`] names the volume in
/// its `iso` form (`STORAGE:iso/FILENAME`); the planner picks the content
/// type the node takes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageUrl {
    /// The `http(s)://` URL.
    pub url: String,
    /// The expected SHA-256, lower-case hex (Proxmox verifies it).
    pub sha256: String,
    /// The storage it is downloaded to (a file storage).
    pub storage: String,
    /// The file name on the storage (default: the URL's last segment).
    pub filename: String,
}

/// What `apply` waits for once a VM runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitFor {
    /// The guest agent reports the VM's address (the default).
    #[default]
    Ip,
    /// The address, then cloud-init's verdict (`cloud-init status --wait`
    /// through the guest agent).
    CloudInit,
    /// Nothing.
    None,
}

/// Where the system disk comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskSource {
    /// Import a cloud image.
    Image(ImageRef),
    /// Clone an existing Proxmox template VM, by vmid or name.
    Clone(CloneRef),
}

/// The template VM to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloneRef {
    /// By VM id.
    Id(VmId),
    /// By VM name.
    Name(String),
}

/// How a VM's system disk is made from its image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DiskFrom {
    /// Copy the image into the VM's own disk (`import-from`).
    #[default]
    Import,
    /// Import the image once per node and storage into a template, then
    /// make linked clones of it.
    LinkedClone,
    /// Like `LinkedClone`, but each VM gets a full copy of the template.
    FullClone,
}

/// Where a VM lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the single host's node (no `node:` in a `proxmox:` file).
    Host,
    /// On this node.
    Node(NodeName),
    /// `node: auto`: on the node with the most free memory that has what
    /// the VM needs.
    Auto,
}

impl Placement {
    /// The node the file names, if it names one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Placement::Node(n) => Some(n.as_str()),
            Placement::Host | Placement::Auto => None,
        }
    }
}

/// Whether the VM should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PowerState {
    /// Started (the default).
    #[default]
    Running,
    /// Created but not started, or shut down.
    Stopped,
}

/// One VM as declared, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct VmSpec {
    /// The VM id; `None` means "allocate at apply time and match by name".
    pub vmid: Option<VmId>,
    /// The DNS name (`name:`), also the guest hostname.
    pub name: String,
    /// Where the VM lives.
    pub placement: Placement,
    /// Memory in MiB.
    pub memory: u64,
    /// Cores per socket.
    pub cores: u32,
    /// Sockets.
    pub sockets: u32,
    /// CPU type, e.g. `host` or `x86-64-v2-AES`.
    pub cpu: Option<String>,
    /// The bridge of `net0`.
    pub bridge: String,
    /// The VLAN tag of `net0`.
    pub vlan: Option<u16>,
    /// The MAC of `net0` (upper-case), or `None` to let Proxmox pick one.
    pub mac: Option<String>,
    /// IPv4 settings for cloud-init.
    pub ip: Option<IpConfig>,
    /// IPv6 settings for cloud-init.
    pub ip6: Option<Ip6Config>,
    /// DNS servers.
    pub nameserver: Vec<String>,
    /// DNS search domain.
    pub searchdomain: Option<String>,
    /// The cloud-init user.
    pub user: Option<String>,
    /// Public SSH keys (from `ssh_keys` and `ssh_keys_file`), one per entry.
    pub ssh_keys: Vec<String>,
    /// The cloud-init password. Never printed.
    pub password: Option<String>,
    /// Where the system disk comes from.
    pub source: DiskSource,
    /// Where disks are allocated.
    pub storage: String,
    /// The system disk size in bytes, grown to after import.
    pub disk: Option<u64>,
    /// How the disk is made from an image.
    pub disk_from: DiskFrom,
    /// User tags, lower-cased, sorted, without duplicates (as Proxmox stores them).
    pub tags: Vec<String>,
    /// The user's description.
    pub description: Option<String>,
    /// Start at boot.
    pub onboot: bool,
    /// Whether the VM should run.
    pub state: PowerState,
    /// Custom cloud-init data, written as a snippet (`user_data:`).
    pub user_data: Option<crate::cloudinit::UserData>,
    /// The URL its image is downloaded from, when `image:` gives one.
    pub image_url: Option<ImageUrl>,
    /// What `apply` waits for once it runs.
    pub wait: WaitFor,
    /// Data disks beside the system disk (`disks:`), slots resolved.
    pub disks: Vec<crate::hardware::DataDisk>,
    /// The NICs of `networks:`, entry N being `netN`; empty with the short
    /// form (`bridge`, `vlan`, `mac`, `ip`, ...), which is `net0` alone. The
    /// first entry is also copied into those fields.
    pub networks: Vec<crate::hardware::NicSpec>,
    /// `bios`, `secure_boot`, `machine`, `tpm`.
    pub firmware: crate::lifecycle::Firmware,
    /// `pool`, `startup`, `protection`, `ha`, `agent`, `balloon`, `numa`, `hotplug`.
    pub lifecycle: crate::lifecycle::Lifecycle,
}
