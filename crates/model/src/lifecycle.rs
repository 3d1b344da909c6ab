//! Firmware and placement/lifecycle settings of a VM ([`Firmware`],
//! [`Lifecycle`]), and how each is spelled as a `qm` option value.
//!
//! Host facts these spellings rely on (qemu-server `$confdesc`, the formats
//! of `qm-schema.json`, CONTRACT §3.1, §18):
//! - `bios` is `seabios` (the default, left out of the config) or `ovmf`.
//! - `efidisk0: STORAGE:1,efitype=4m,pre-enrolled-keys=0|1` allocates a new
//!   EFI vars volume; the size in GiB is ignored (the OVMF vars template is
//!   copied), `4m` is required for Secure Boot, and `pre-enrolled-keys=1`
//!   picks the vars template with the distribution and Microsoft keys,
//!   which turns Secure Boot on.
//! - `tpmstate0: STORAGE:1,version=v2.0` allocates a 4 MiB TPM state
//!   volume; the version cannot be changed later.
//! - `startup` is `pve-startup-order`: `order=N,up=N,down=N`.
//! - `agent` is `qm-agent`: `[enabled=]0|1,fstrim_cloned_disks=0|1,type=virtio|isa`.
//! - `hotplug` is `pve-hotplug-features`: `0`, `1`, or a list of `network
//!   disk cpu memory usb cloudinit`.

use crate::propstring::PropertyString;

/// The firmware a VM boots with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bios {
    /// SeaBIOS, Proxmox's default (nothing is written).
    #[default]
    SeaBios,
    /// OVMF (UEFI), with an EFI vars disk.
    Ovmf,
}

impl Bios {
    /// The `--bios` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Bios::SeaBios => "seabios",
            Bios::Ovmf => "ovmf",
        }
    }
}

/// The `machine` key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MachineChoice {
    /// Not given: Proxmox's default, or `q35` with OVMF.
    #[default]
    Default,
    /// The `--machine` type, as written (`q35`, `pc-q35-8.1`, `pc`).
    Type(String),
}

/// The firmware settings of a VM: `bios`, `secure_boot`, `machine`, `tpm`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Firmware {
    /// The firmware.
    pub bios: Bios,
    /// Enrol the Secure Boot keys in the EFI vars (OVMF only).
    pub secure_boot: bool,
    /// The QEMU machine type.
    pub machine: MachineChoice,
    /// A TPM 2.0 state volume.
    pub tpm: bool,
}

impl Firmware {
    /// The `--machine` value to send: the one given, else `q35` with OVMF
    /// (OVMF's Secure Boot needs the SMM that q35 provides; pvefleet makes
    /// every UEFI VM q35 unless told otherwise), else none.
    pub fn machine(&self) -> Option<&str> {
        match &self.machine {
            MachineChoice::Type(t) => Some(t),
            MachineChoice::Default if self.bios == Bios::Ovmf => Some("q35"),
            MachineChoice::Default => None,
        }
    }

    /// The `--efidisk0` value that allocates the EFI vars on `storage`,
    /// when the firmware is OVMF.
    pub fn efidisk0(&self, storage: &str) -> Option<String> {
        (self.bios == Bios::Ovmf).then(|| {
            format!(
                "{storage}:1,efitype=4m,pre-enrolled-keys={}",
                u8::from(self.secure_boot)
            )
        })
    }

    /// The `--tpmstate0` value that allocates the TPM state on `storage`.
    pub fn tpmstate0(&self, storage: &str) -> Option<String> {
        self.tpm.then(|| format!("{storage}:1,version=v2.0"))
    }
}

/// `startup: {order, up, down}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Startup {
    /// Start order (lower first; shutdown in reverse).
    pub order: Option<u32>,
    /// Seconds to wait after this VM started before the next one.
    pub up: Option<u32>,
    /// Seconds to wait for this VM to shut down.
    pub down: Option<u32>,
}

impl Startup {
    /// The `--startup` value, items in the order `order`, `up`, `down`.
    pub fn value(&self) -> String {
        let mut p = PropertyString::new();
        for (k, v) in [("order", self.order), ("up", self.up), ("down", self.down)] {
            if let Some(v) = v {
                p = p.with(k, v.to_string());
            }
        }
        p.to_string()
    }
}

/// The state an HA resource is asked to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HaState {
    /// Keep it running (default).
    #[default]
    Started,
    /// Keep it stopped.
    Stopped,
    /// Leave it to the admin.
    Ignored,
    /// Stopped and not recovered.
    Disabled,
}

impl HaState {
    /// The `--state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            HaState::Started => "started",
            HaState::Stopped => "stopped",
            HaState::Ignored => "ignored",
            HaState::Disabled => "disabled",
        }
    }
}

/// `ha: {state, group}`: an HA resource `vm:VMID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ha {
    /// The requested state.
    pub state: HaState,
    /// The HA group.
    pub group: Option<String>,
}

/// `agent: {enabled, fstrim_cloned_disks, type}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// The guest agent channel is on (default).
    pub enabled: bool,
    /// Run `fstrim` after a disk move or migration.
    pub fstrim_cloned_disks: bool,
    /// `virtio` or `isa`; `None` for Proxmox's default (`virtio`).
    pub kind: Option<String>,
}

impl Default for Agent {
    fn default() -> Self {
        Self {
            enabled: true,
            fstrim_cloned_disks: false,
            kind: None,
        }
    }
}

impl Agent {
    /// The `--agent` value: `enabled=0|1`, then the items set.
    pub fn value(&self) -> String {
        let mut p = PropertyString::new().with("enabled", if self.enabled { "1" } else { "0" });
        if self.fstrim_cloned_disks {
            p = p.with("fstrim_cloned_disks", "1");
        }
        if let Some(t) = &self.kind {
            p = p.with("type", t.clone());
        }
        p.to_string()
    }
}

/// `hotplug`: the features a running VM takes without a reboot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hotplug {
    /// `false`: `0`, nothing is hot-plugged.
    Off,
    /// A list of features (`network`, `disk`, `cpu`, `memory`, `usb`,
    /// `cloudinit`), without duplicates, in the order Proxmox's schema
    /// lists them.
    Features(Vec<String>),
}

impl Hotplug {
    /// The `--hotplug` value.
    pub fn value(&self) -> String {
        match self {
            Hotplug::Off => "0".into(),
            Hotplug::Features(f) => f.join(","),
        }
    }
}

/// Placement and lifecycle settings of a VM. `None` leaves a key as the
/// host has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// The resource pool (`pve-poolid`).
    pub pool: Option<String>,
    /// Start/shutdown order and delays.
    pub startup: Option<Startup>,
    /// Proxmox refuses to destroy a protected VM or remove its disks.
    pub protection: bool,
    /// An HA resource for the VM; `None` removes one pvefleet finds.
    pub ha: Option<Ha>,
    /// The guest agent option; `None`: created with the agent on
    /// (`enabled=1`), later left as the host has it.
    pub agent: Option<Agent>,
    /// The balloon target in MiB (`0` disables the balloon device).
    pub balloon: Option<u64>,
    /// NUMA emulation.
    pub numa: Option<bool>,
    /// Hot-plug features.
    pub hotplug: Option<Hotplug>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_values() {
        let fw = Firmware {
            bios: Bios::Ovmf,
            secure_boot: true,
            machine: MachineChoice::Default,
            tpm: true,
        };
        assert_eq!(fw.machine(), Some("q35"));
        assert_eq!(
            fw.efidisk0("local-lvm").as_deref(),
            Some("local-lvm:1,efitype=4m,pre-enrolled-keys=1")
        );
        assert_eq!(
            fw.tpmstate0("local-lvm").as_deref(),
            Some("local-lvm:1,version=v2.0")
        );
        let bios = Firmware::default();
        assert_eq!((bios.machine(), bios.efidisk0("x")), (None, None));
        let s = Startup {
            order: Some(2),
            up: None,
            down: Some(60),
        };
        assert_eq!(s.value(), "order=2,down=60");
        let a = Agent {
            fstrim_cloned_disks: true,
            kind: Some("isa".into()),
            ..Agent::default()
        };
        assert_eq!(a.value(), "enabled=1,fstrim_cloned_disks=1,type=isa");
        assert_eq!(Agent::default().value(), "enabled=1");
        assert_eq!(Hotplug::Off.value(), "0");
        assert_eq!(
            Hotplug::Features(vec!["disk".into(), "usb".into()]).value(),
            "disk,usb"
        );
    }

    #[test]
    fn new_efi_vars_and_tpm_state_allocate_under_the_storage_lock() {
        let fw = Firmware {
            bios: Bios::Ovmf,
            tpm: true,
            ..Firmware::default()
        };
        let vmid = crate::VmId::new(201).expect("valid id");
        for value in [fw.efidisk0("local-lvm"), fw.tpmstate0("local-lvm")] {
            let value = value.expect("a value");
            let key = if value.contains("efitype") {
                "efidisk0"
            } else {
                "tpmstate0"
            };
            let mut o = crate::QmOptions::new();
            o.push(key, value);
            let set = crate::Command::Qm(crate::Qm::Set {
                vmid,
                options: o,
                delete: Vec::new(),
            });
            assert!(set.allocates(), "{set}");
        }
    }
}
