//! A VM's extra hardware as the file declares it: data disks (`disks:`)
//! and NICs (`networks:`), validated, defaults applied.

use crate::spec::{Ip6Config, IpConfig};
use crate::NicModel;

/// One data disk of `disks:`, beside the system disk (`scsi0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDisk {
    /// The drive slot (`scsi1`, `virtio2`, `sata1`, ...), resolved: the
    /// file's `slot`, else the next free `scsiN` in list order.
    pub slot: String,
    /// True when the file names the slot; false when it comes from the
    /// disk's place in the list.
    pub slot_given: bool,
    /// The size in bytes (a whole number of MiB).
    pub size: u64,
    /// The storage it is allocated on (the VM's `storage` by default).
    pub storage: String,
    /// `discard=on` when true; `None`: whatever the disk has.
    pub discard: Option<bool>,
    /// `ssd=1` when true; `None`: whatever the disk has.
    pub ssd: Option<bool>,
    /// `iothread=1` when true; `None`: whatever the disk has.
    pub iothread: Option<bool>,
    /// `cache=MODE` (`none`, `writethrough`, `writeback`, `unsafe`,
    /// `directsync`); `None`: whatever the disk has.
    pub cache: Option<String>,
    /// `backup=0` when false (Proxmox backs a disk up by default); `None`:
    /// whatever the disk has.
    pub backup: Option<bool>,
}

/// One NIC of `networks:`: entry N is `netN` and `ipconfigN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicSpec {
    /// The bridge; must exist on the node.
    pub bridge: String,
    /// The VLAN tag.
    pub vlan: Option<u16>,
    /// The MAC (upper-case), or `None` to let Proxmox pick one.
    pub mac: Option<String>,
    /// The NIC model (`virtio` by default).
    pub model: NicModel,
    /// `firewall=0|1`; `None`: whatever the NIC has.
    pub firewall: Option<bool>,
    /// `mtu` (1 means the bridge's); `None`: whatever the NIC has.
    pub mtu: Option<u32>,
    /// IPv4 settings of `ipconfigN`.
    pub ip: Option<IpConfig>,
    /// IPv6 settings of `ipconfigN`.
    pub ip6: Option<Ip6Config>,
}

/// The disk slots `disks:` may name: `scsi1`-`scsi30`, `virtio0`-`virtio15`,
/// `sata0`-`sata5` (the qm schema's ranges; `scsi0` is the system disk,
/// `ide*` holds the cloud-init drive).
pub fn is_data_disk_slot(slot: &str) -> bool {
    let range = |prefix: &str, max: u32| {
        slot.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && (n.len() == 1 || !n.starts_with('0')))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n <= max)
    };
    (range("scsi", 30) && slot != "scsi0") || range("virtio", 15) || range("sata", 5)
}

/// `bytes` in GiB as `qm` takes a new volume's size (`STORAGE:SIZE_GiB`,
/// decimals allowed, CONTRACT §3.4): exact for any whole number of MiB
/// (`10G` → `10`, `512M` → `0.5`, `100M` → `0.09765625`).
pub fn gib_text(bytes: u64) -> String {
    let mib = bytes >> 20;
    let whole = mib / 1024;
    let mut frac = mib % 1024;
    if frac == 0 {
        return whole.to_string();
    }
    // 1/1024 = 0.0009765625: at most ten decimals, each exact.
    let mut s = whole.to_string();
    s.push('.');
    while frac != 0 {
        frac *= 10;
        s.push(char::from(b'0' + (frac / 1024) as u8));
        frac %= 1024;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_as_the_schema_allows() {
        for ok in ["scsi1", "scsi30", "virtio0", "virtio15", "sata0", "sata5"] {
            assert!(is_data_disk_slot(ok), "{ok}");
        }
        for bad in [
            "scsi0", "scsi31", "virtio16", "sata6", "ide0", "scsi01", "scsi", "net1", "unused0",
        ] {
            assert!(!is_data_disk_slot(bad), "{bad}");
        }
    }

    #[test]
    fn sizes_in_gib() {
        assert_eq!(gib_text(10 << 30), "10");
        assert_eq!(gib_text(512 << 20), "0.5");
        assert_eq!(gib_text(100 << 20), "0.09765625");
        assert_eq!(gib_text((1 << 30) + (1 << 20)), "1.0009765625");
    }
}
