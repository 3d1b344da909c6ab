//! Pure domain types shared by every stage of pvefleet.
//!
//! Nothing here touches files, the network, the clock or async: the config
//! stage, the planner and the executor all build on these values.
//!
//! Names, parsed once at the boundary:
//! - [`VmId`]: a validated Proxmox VM id (100 ..= 999 999 999).
//! - [`NodeName`], [`StorageId`], [`VolId`]: node, storage and volume ids.
//! - [`GuestKind`], [`VmStatus`]: what `/cluster/resources` says a guest is.
//!
//! Property strings, each with one codec that parses and prints it and keeps
//! the items it does not type:
//! - [`boot`]: `boot`, the boot order ([`Boot`]).
//! - [`drive`]: `scsiN`, `virtioN`, `sataN`, `ideN` ([`Drive`], [`DriveFile`]).
//! - [`ipconfig`]: `ipconfigN`, cloud-init addresses ([`IpConfig`]).
//! - [`net`]: `netN`, one NIC ([`Net`]; MACs are [`MacAddr`]).
//! - [`propstring`]: the low-level splitter the codecs share, and
//!   [`propstring::PropertyError`], the error of every codec.
//!
//! And:
//! - [`size`]: disk sizes as Proxmox spells them (`20G`, `2252M`).
//! - [`command`]: every `qm`/`pvesh`/`pvesm` invocation pvefleet sends, as data
//!   that renders to argv.
//! - [`shell`]: the one function that quotes argv for a POSIX shell.
//! - [`lifecycle`]: firmware and placement/lifecycle settings, [`ha`]: the
//!   `ha-manager` command.

#[macro_use]
mod macros;

pub mod boot;
pub mod cloudinit;
pub mod command;
pub mod download;
pub mod drive;
pub mod guest;
pub mod ha;
pub mod hardware;
pub mod ipconfig;
pub mod lifecycle;
pub mod mac;
pub mod net;
pub mod node;
pub mod propstring;
mod qm_argv;
pub mod shell;
pub mod size;
pub mod span;
pub mod spec;
pub mod status;
pub mod storage;
pub mod vmid;
pub mod volid;

pub use boot::Boot;
pub use command::{Command, Pvesh, Qm, QmOptions};
pub use download::{DownloadContent, DownloadUrl};
pub use drive::{Drive, DriveFile, ImportSource};
pub use guest::{GuestKind, GuestKindError};
pub use ipconfig::{IpConfig, Ipv4Config, Ipv6Config};
pub use mac::{MacAddr, MacAddrError};
pub use net::{Net, NicModel};
pub use node::{NodeName, NodeNameError};
pub use status::VmStatus;
pub use storage::{StorageId, StorageIdError};
pub use vmid::VmId;
pub use volid::{VolContent, VolId, VolIdError};

/// The tag that marks a VM as managed by pvefleet.
///
/// Proxmox stores tags lower-cased and sorted; this one survives that
/// normalisation unchanged.
pub const OWNER_TAG: &str = "pvefleet";

/// The line pvefleet appends to the description of every VM it manages.
pub const OWNER_DESCRIPTION_LINE: &str = "managed-by: pvefleet";
