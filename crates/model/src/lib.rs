//! Pure domain types shared by every stage of pvefleet.
//!
//! Nothing here touches files, the network, the clock or async: the config
//! stage, the planner and the executor all build on these values.
//!
//! - [`VmId`]: a validated Proxmox VM id (100 ..= 999 999 999).
//! - [`propstring`]: Proxmox property strings (`virtio,bridge=vmbr0,tag=10`).
//! - [`size`]: disk sizes as Proxmox spells them (`20G`, `2252M`).
//! - [`command`]: every `qm`/`pvesh`/`pvesm` invocation pvefleet sends, as data
//!   that renders to argv.
//! - [`shell`]: the one function that quotes argv for a POSIX shell.

pub mod command;
pub mod propstring;
pub mod shell;
pub mod size;
pub mod vmid;

pub use command::{Command, Pvesh, Qm, QmOptions};
pub use vmid::VmId;

/// The tag that marks a VM as managed by pvefleet.
///
/// Proxmox stores tags lower-cased and sorted; this one survives that
/// normalisation unchanged.
pub const OWNER_TAG: &str = "pvefleet";

/// The line pvefleet appends to the description of every VM it manages.
pub const OWNER_DESCRIPTION_LINE: &str = "managed-by: pvefleet";
