//! A VM's extra hardware: `disks:` (data disks beside the system disk) and
//! `networks:` (NICs `net0`, `net1`, ... with their `ipconfigN`).
//!
//! `networks:` is the long form of the short keys `bridge`, `vlan`, `mac`,
//! `ip`, `gateway`, `ip6`, `gateway6` (which describe `net0` alone): both on
//! the same level (the VM, or `defaults:`) is an error; a VM's own form
//! wins over the other form inherited from `defaults:`.

use super::Cx;
use crate::error::{ErrorKind, Span};
use crate::limits::shown;
use crate::raw::{Key, Node, Value};
use pvefleet_model::hardware::{is_data_disk_slot, DataDisk, NicSpec};
use pvefleet_model::{size, NicModel};
use std::collections::BTreeSet;

/// Keys of one entry of `disks:`.
pub(super) const DISK_KEYS: &[&str] = &[
    "size", "storage", "slot", "discard", "ssd", "iothread", "cache", "backup",
];

/// Keys of one entry of `networks:`.
pub(super) const NIC_KEYS: &[&str] = &[
    "bridge", "vlan", "mac", "model", "firewall", "mtu", "ip", "gateway", "ip6", "gateway6",
];

/// The short keys that describe `net0` alone.
pub(super) const SHORT_NET_KEYS: &[&str] =
    &["bridge", "vlan", "mac", "ip", "gateway", "ip6", "gateway6"];

/// The most NICs a VM has (`net0`-`net31`).
const MAX_NICS: usize = 32;

/// The cache modes of the qm schema.
const CACHE_MODES: &[&str] = &["none", "writethrough", "writeback", "unsafe", "directsync"];

impl Cx<'_> {
    /// `disks:`: a list of data disks; slots resolved (the next free
    /// `scsiN` from `scsi1` for an entry without `slot`). `None` on error.
    pub(super) fn disks(&mut self, n: &Node, storage: &str) -> Option<Vec<DataDisk>> {
        let items = match &n.value {
            Value::Seq(items) => items,
            Value::Null => return Some(Vec::new()),
            _ => {
                self.type_err("disks", n, "a list of disks ({size: 10G, ...})");
                return None;
            }
        };
        let mut ok = true;
        let mut drafts = Vec::new();
        let mut named: BTreeSet<String> = BTreeSet::new();
        for item in items {
            match self.disk_entry(item, storage) {
                Some((disk, slot_span)) => {
                    if let Some(span) = slot_span {
                        if !named.insert(disk.slot.clone()) {
                            self.err(
                                ErrorKind::Duplicate,
                                span,
                                format!("slot: {} is named twice in 'disks'", disk.slot),
                                "give each disk its own slot, or leave 'slot' out",
                            );
                            ok = false;
                        }
                    }
                    drafts.push((disk, slot_span.is_some(), item.span));
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let mut next = 1u32;
        let mut out = Vec::new();
        for (mut disk, named_slot, span) in drafts {
            if !named_slot {
                while named.contains(&format!("scsi{next}")) {
                    next += 1;
                }
                let slot = format!("scsi{next}");
                if !is_data_disk_slot(&slot) {
                    self.err(
                        ErrorKind::Range,
                        span,
                        "disks: no free scsi slot is left (scsi1 to scsi30)",
                        "name slots of other buses for the rest, e.g. 'slot: virtio0'",
                    );
                    return None;
                }
                named.insert(slot.clone());
                disk.slot = slot;
            }
            out.push(disk);
        }
        Some(out)
    }

    /// One entry of `disks:`, with the span of its `slot` when it names
    /// one (else the slot is empty, filled in by [`Cx::disks`]).
    fn disk_entry(&mut self, item: &Node, storage: &str) -> Option<(DataDisk, Option<Span>)> {
        let entries = self.map("each entry of 'disks'", item)?;
        let f = self.fields(entries, DISK_KEYS, "a disk of 'disks'");
        let get = |k: &str| f.get(k).map(|(_, n)| *n);
        let mut ok = true;
        let size = match get("size") {
            Some(n) => self.data_disk_size(n),
            None => {
                self.err(
                    ErrorKind::Missing,
                    item.span,
                    "disk without 'size'",
                    "every entry of 'disks' needs a size, e.g. 'size: 10G'",
                );
                None
            }
        };
        ok &= size.is_some();
        let storage = match get("storage") {
            Some(n) => self.storage(n),
            None => Some(storage.to_string()),
        };
        ok &= storage.is_some();
        let slot = get("slot").and_then(|n| {
            self.checked(
                "slot",
                n,
                is_data_disk_slot,
                "is not a data disk slot",
                "use scsi1-scsi30, virtio0-virtio15 or sata0-sata5 (scsi0 is the system disk)",
            )
            .map(|s| (s, n.span))
        });
        ok &= get("slot").is_none() || slot.is_some();
        let mut flag = |key: &str| -> Option<bool> {
            let n = get(key)?;
            let v = self.boolean(key, n);
            ok &= v.is_some();
            v
        };
        let (discard, ssd, iothread, backup) = (
            flag("discard"),
            flag("ssd"),
            flag("iothread"),
            flag("backup"),
        );
        let cache = get("cache").and_then(|n| {
            let s = self.string("cache", n)?;
            if CACHE_MODES.contains(&s.as_str()) {
                return Some(s);
            }
            self.err(
                ErrorKind::UnknownValue,
                n.span,
                format!("cache: {} is not a cache mode", shown(&s)),
                "use none, writethrough, writeback, unsafe or directsync",
            );
            None
        });
        ok &= get("cache").is_none() || cache.is_some();
        // What the slot's bus takes (qemu-server's drive formats): virtio
        // has no `ssd`, sata no `iothread`; SCSI disks get an iothread only
        // on the virtio-scsi-single controller, and pvefleet's VMs use
        // virtio-scsi-pci, where Proxmox ignores it with a warning.
        let bus = slot.as_ref().map_or("scsi", |(s, _)| {
            s.trim_end_matches(|c: char| c.is_ascii_digit())
        });
        for (key, on, refused, hint) in [
            ("ssd", ssd, bus == "virtio", "virtio disks have no 'ssd'; use a scsi or sata slot for it, or leave 'ssd' out"),
            ("iothread", iothread, bus != "virtio", "Proxmox gives an IO thread to virtio disks here (pvefleet's SCSI controller is virtio-scsi-pci, which ignores it): use 'slot: virtioN', or leave 'iothread' out"),
        ] {
            if let (Some(true), true, Some(n)) = (on, refused, get(key)) {
                self.err(
                    ErrorKind::Conflict,
                    n.span,
                    format!("{key}: true does not apply to a {bus} disk"),
                    hint,
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let (slot, slot_span) = match slot {
            Some((s, span)) => (s, Some(span)),
            None => (String::new(), None),
        };
        let disk = DataDisk {
            slot_given: slot_span.is_some(),
            slot,
            size: size?,
            storage: storage?,
            discard,
            ssd,
            iothread,
            cache,
            backup,
        };
        Some((disk, slot_span))
    }

    /// `size` of a data disk: a size with a unit (or a number of GiB), a
    /// whole number of MiB, so that `qm` can be given it in GiB exactly.
    fn data_disk_size(&mut self, n: &Node) -> Option<u64> {
        const HELP: &str = "write a size with a binary unit, e.g. 10G or 512M (G means GiB)";
        let bytes = match &n.value {
            Value::Int(i) if *i > 0 => (*i as u64) << 30,
            Value::Str(s) => match size::parse_size(s) {
                Ok(b) if s.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) => b,
                _ => {
                    let msg = format!("size: {} is not a disk size", shown(s));
                    self.err(ErrorKind::Format, n.span, msg, HELP);
                    return None;
                }
            },
            _ => {
                self.type_err("size", n, "a size such as 10G");
                return None;
            }
        };
        if !((1 << 20)..=(1u64 << 50)).contains(&bytes) {
            self.err(
                ErrorKind::Range,
                n.span,
                "size: out of range",
                "use a size between 1M and 1024T",
            );
            return None;
        }
        if bytes % (1 << 20) != 0 {
            self.err(
                ErrorKind::Range,
                n.span,
                "size: not a whole number of MiB",
                "Proxmox allocates new disks in GiB with decimals: use whole MiB, e.g. 1536M",
            );
            return None;
        }
        Some(bytes)
    }

    /// `networks:`: a list of NICs, entry N being `netN`. `spans` gets the
    /// place of each entry's values as `networks[N].KEY` (for duplicates).
    pub(super) fn networks(
        &mut self,
        n: &Node,
        spans: &mut Vec<(String, Span)>,
    ) -> Option<Vec<NicSpec>> {
        let items = match &n.value {
            Value::Seq(items) => items,
            Value::Null => return Some(Vec::new()),
            _ => {
                self.type_err("networks", n, "a list of NICs ({bridge: vmbr0, ...})");
                return None;
            }
        };
        if items.len() > MAX_NICS {
            self.err(
                ErrorKind::Range,
                n.span,
                format!(
                    "networks: {} NICs, Proxmox allows {MAX_NICS} (net0-net31)",
                    items.len()
                ),
                "remove NICs",
            );
            return None;
        }
        let mut ok = true;
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self.nic_entry(item, index, spans) {
                Some(nic) => out.push(nic),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// One entry of `networks:`.
    fn nic_entry(
        &mut self,
        item: &Node,
        index: usize,
        spans: &mut Vec<(String, Span)>,
    ) -> Option<NicSpec> {
        let entries = self.map("each entry of 'networks'", item)?;
        let f = self.fields(entries, NIC_KEYS, "a NIC of 'networks'");
        for (k, (_, v)) in &f {
            spans.push((format!("networks[{index}].{k}"), v.span));
        }
        let get = |k: &str| f.get(k).map(|(_, n)| *n);
        let mut ok = true;
        let bridge = match get("bridge") {
            Some(n) => self.bridge(n),
            None => {
                self.err(
                    ErrorKind::Missing,
                    item.span,
                    "NIC without 'bridge'",
                    "every entry of 'networks' names its bridge, e.g. 'bridge: vmbr0'",
                );
                None
            }
        };
        ok &= bridge.is_some();
        let mut opt = |present: bool, v: Option<()>| ok &= !present || v.is_some();
        let vlan = get("vlan").and_then(|n| self.vlan(n));
        opt(get("vlan").is_some(), vlan.map(|_| ()));
        let mac = get("mac").and_then(|n| self.mac(n));
        opt(get("mac").is_some(), mac.as_ref().map(|_| ()));
        let model = match get("model") {
            Some(n) => self.nic_model(n),
            None => Some(NicModel::Virtio),
        };
        opt(true, model.map(|_| ()));
        let firewall = get("firewall").and_then(|n| self.boolean("firewall", n));
        opt(get("firewall").is_some(), firewall.map(|_| ()));
        let mtu = get("mtu").and_then(|n| {
            self.int(
                "mtu",
                n,
                1,
                65520,
                "1 means the bridge's MTU; else 576 to 65520",
            )
            .map(|v| v as u32)
        });
        opt(get("mtu").is_some(), mtu.map(|_| ()));
        let ip = self.ipv4(get("ip"), get("gateway"), &mut ok);
        let ip6 = self.ipv6(get("ip6"), get("gateway6"), &mut ok);
        if !ok {
            return None;
        }
        Some(NicSpec {
            bridge: bridge?,
            vlan,
            mac,
            model: model?,
            firewall,
            mtu,
            ip,
            ip6,
        })
    }

    /// `model` of a NIC: one of the qm schema's models.
    fn nic_model(&mut self, n: &Node) -> Option<NicModel> {
        let s = self.string("model", n)?;
        if let Some(m) = NicModel::parse(&s) {
            return Some(m);
        }
        self.err(
            ErrorKind::UnknownValue,
            n.span,
            format!("model: {} is not a NIC model", shown(&s)),
            "use virtio (the default), e1000, e1000e, vmxnet3 or rtl8139",
        );
        None
    }

    /// Refuses `networks` beside a short network key set on the same level
    /// (`own`: the keys the VM's entry sets itself), and drops the form a
    /// VM's own keys override from `defaults:`. Returns false on error.
    pub(super) fn network_forms(
        &mut self,
        f: &mut super::Fields<'_>,
        own: &BTreeSet<String>,
        defaults: &[(Key, Node)],
    ) -> bool {
        let short: Vec<&str> = SHORT_NET_KEYS
            .iter()
            .copied()
            .filter(|k| f.contains_key(k))
            .collect();
        if !f.contains_key("networks") || short.is_empty() {
            return true;
        }
        let long_own = own.contains("networks");
        let same_level: Vec<&str> = short
            .iter()
            .copied()
            .filter(|k| own.contains(*k) == long_own)
            .collect();
        if let Some(first) = same_level.first() {
            let span = f.get("networks").map(|(k, _)| k.span);
            let short_at = f.get(first).map(|(k, _)| k.span);
            let at = short_at
                .map(|s| format!(" ('{first}' at {}:{})", s.line, s.col))
                .unwrap_or_default();
            if let Some(span) = span {
                self.err(
                    ErrorKind::Conflict,
                    span,
                    format!("'networks' and the short network keys are both set{at}"),
                    "'bridge', 'vlan', 'mac', 'ip', 'gateway', 'ip6' and 'gateway6' are the short form of networks[0]: move them into the first entry of 'networks'",
                );
            }
            return false;
        }
        if long_own {
            // The VM's networks replace the short keys of defaults.
            for k in short {
                f.remove(k);
            }
        } else if defaults.iter().any(|(k, _)| k.name == "networks") {
            f.remove("networks");
        }
        true
    }
}
