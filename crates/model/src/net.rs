//! The `netN` property string: one virtual NIC.
//!
//! ```text
//! virtio=BC:24:11:CB:B3:C7,bridge=vmbr0,firewall=1,tag=10
//! ```
//!
//! The model is the default key and may carry the MAC as its value
//! (`virtio=MAC` means `model=virtio,macaddr=MAC`, the schema's `key_alias`).
//! Proxmox stores the model and MAC first, then the other keys sorted
//! (CONTRACT §3.2); [`Net`] prints that form and keeps every item it does not
//! type (`rate`, `trunks`, `host-tunnel`, ...) in the order it read them.
//!
//! ```
//! use pvefleet_model::net::Net;
//! let mut net = Net::parse("virtio=BC:24:11:CB:B3:C7,bridge=vmbr0,firewall=1,mtu=1400")?;
//! net.bridge = Some("vmbr1".into());
//! assert_eq!(net.to_string(), "virtio=BC:24:11:CB:B3:C7,bridge=vmbr1,firewall=1,mtu=1400");
//! # Ok::<(), pvefleet_model::propstring::PropertyError>(())
//! ```

use std::collections::BTreeMap;

use crate::mac::MacAddr;
use crate::propstring::{
    checked_items, extend_other, parse_bool, parse_int, print_bool, set_once, Layout, PropertyError,
};

keyword_enum! {
    /// A NIC model (`model` in `qm-net`).
    pub enum NicModel {
        /// `e1000`.
        E1000 => "e1000",
        /// `e1000-82540em`.
        E1000_82540em => "e1000-82540em",
        /// `e1000-82544gc`.
        E1000_82544gc => "e1000-82544gc",
        /// `e1000-82545em`.
        E1000_82545em => "e1000-82545em",
        /// `e1000e`.
        E1000e => "e1000e",
        /// `i82551`.
        I82551 => "i82551",
        /// `i82557b`.
        I82557b => "i82557b",
        /// `i82559er`.
        I82559er => "i82559er",
        /// `ne2k_isa`.
        Ne2kIsa => "ne2k_isa",
        /// `ne2k_pci`.
        Ne2kPci => "ne2k_pci",
        /// `pcnet`.
        Pcnet => "pcnet",
        /// `rtl8139`.
        Rtl8139 => "rtl8139",
        /// `virtio`: paravirtualised, the one pvefleet creates.
        Virtio => "virtio",
        /// `vmxnet3`.
        Vmxnet3 => "vmxnet3",
    }
}

/// One `netN` value.
///
/// Typed fields cover what pvefleet manages (model, MAC, bridge, VLAN tag)
/// and the common switches; `other` holds every remaining item. Equality is
/// structural: item order does not matter and MACs compare case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    /// `model`, or the key of `model=MAC`.
    pub model: NicModel,
    /// `macaddr`, or the value of `model=MAC`. Proxmox generates one when unset.
    pub macaddr: Option<MacAddr>,
    /// `bridge` (`pve-bridge-id`), e.g. `vmbr0`.
    pub bridge: Option<String>,
    /// `tag`: the VLAN tag, 1..=4094.
    pub tag: Option<u16>,
    /// `firewall`.
    pub firewall: Option<bool>,
    /// `link_down`.
    pub link_down: Option<bool>,
    /// `mtu`: 1..=65520 (`1` means the bridge's MTU).
    pub mtu: Option<u32>,
    /// `queues`: 0..=64.
    pub queues: Option<u8>,
    /// Every other item (`rate`, `trunks`, ...), by key, values as written.
    pub other: BTreeMap<String, String>,
    layout: Layout,
}

impl Net {
    /// A NIC of `model` with nothing else set.
    pub fn new(model: NicModel) -> Self {
        Self {
            model,
            macaddr: None,
            bridge: None,
            tag: None,
            firewall: None,
            link_down: None,
            mtu: None,
            queues: None,
            other: BTreeMap::new(),
            layout: Layout::default(),
        }
    }

    /// Parses a `netN` value, checked as Proxmox checks it.
    pub fn parse(text: &str) -> Result<Self, PropertyError> {
        let mut model = None;
        let mut net = Self::new(NicModel::Virtio);
        for (key, value, _) in checked_items(text, Some("model"))? {
            if let Some(alias) = NicModel::parse(key) {
                set_once(&mut model, "model", alias)?;
                set_once(&mut net.macaddr, "macaddr", mac(key, value)?)?;
                continue;
            }
            if key != "model" && key != "macaddr" {
                net.layout.push(key, false);
            }
            net.set(key, value, &mut model)?;
        }
        net.model = model.ok_or(PropertyError::MissingKey("model"))?;
        Ok(net)
    }

    fn set(
        &mut self,
        key: &str,
        value: &str,
        model: &mut Option<NicModel>,
    ) -> Result<(), PropertyError> {
        match key {
            "model" => {
                let m = NicModel::parse(value)
                    .ok_or_else(|| PropertyError::invalid(key, value, "a NIC model"))?;
                return set_once(model, key, m);
            }
            "macaddr" => return set_once(&mut self.macaddr, key, mac(key, value)?),
            "bridge" => {
                let ok = value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    return Err(PropertyError::invalid(key, value, "a bridge id"));
                }
                self.bridge = Some(value.to_string());
            }
            "tag" => self.tag = Some(parse_int(key, value, 1..=4094, "a VLAN tag 1..4094")?),
            "firewall" => self.firewall = Some(parse_bool(key, value)?),
            "link_down" => self.link_down = Some(parse_bool(key, value)?),
            "mtu" => self.mtu = Some(parse_int(key, value, 1..=65520, "an MTU 1..65520")?),
            "queues" => self.queues = Some(parse_int(key, value, 0..=64, "0..64 queues")?),
            _ => {
                self.other.insert(key.to_string(), value.to_string());
            }
        }
        Ok(())
    }

    /// True when the items pvefleet manages match: model, bridge and VLAN tag,
    /// and the MAC compared case-insensitively. A side without a MAC matches
    /// any MAC, since it only means "let Proxmox choose".
    pub fn same_managed(&self, other: &Net) -> bool {
        let mac_ok = match (&self.macaddr, &other.macaddr) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.model == other.model && mac_ok && self.bridge == other.bridge && self.tag == other.tag
    }

    /// Takes the managed items (model, bridge, tag, and the MAC when
    /// `desired` sets one) from `desired`, keeping everything else of `self`.
    /// This is how an observed NIC becomes the value to send back.
    pub fn apply_managed(&mut self, desired: &Net) {
        self.model = desired.model;
        if desired.macaddr.is_some() {
            self.macaddr.clone_from(&desired.macaddr);
        }
        self.bridge.clone_from(&desired.bridge);
        self.tag = desired.tag;
    }
}

fn mac(key: &str, value: &str) -> Result<MacAddr, PropertyError> {
    MacAddr::parse(value).map_err(|_| PropertyError::invalid(key, value, "a MAC address"))
}

impl std::fmt::Display for Net {
    /// Model and MAC first (`virtio=MAC`, or bare `virtio`), then the other
    /// items in the order they were read; new ones where Proxmox sorts them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model.as_str())?;
        if let Some(mac) = &self.macaddr {
            f.write_str("=")?;
            f.write_str(mac.as_str())?;
        }
        let mut items = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                items.push((k.to_string(), v));
            }
        };
        put("bridge", self.bridge.clone());
        put("tag", self.tag.map(|t| t.to_string()));
        put("firewall", self.firewall.map(print_bool));
        put("link_down", self.link_down.map(print_bool));
        put("mtu", self.mtu.map(|m| m.to_string()));
        put("queues", self.queues.map(|q| q.to_string()));
        extend_other(&mut items, &self.other);
        let rest = self.layout.render(None, items);
        if !rest.is_empty() {
            f.write_str(",")?;
            f.write_str(&rest)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Net {
    type Err = PropertyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Net {
        Net::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn real_values_round_trip() {
        // From fixtures/pvesh/qemu-config--*.json.
        for text in [
            "virtio=ff:ff:ff:ff:ff:ff,bridge=vmbr0,firewall=1",
            "virtio=ff:ff:ff:ff:ff:ff,bridge=vmbr0",
            "virtio=F2:1A:5C:65:0F:38,bridge=vmbr0",
            "virtio=BC:24:11:CB:B3:C7,bridge=vmbr0",
            "virtio=00:00:00:00:00:31,bridge=vmbr31",
            "virtio=BC:24:11:AB:CD:EF,bridge=vmbr0,firewall=1,tag=10",
        ] {
            assert_eq!(net(text).to_string(), text);
        }
    }

    #[test]
    fn parse_typed_fields() {
        let n = net("e1000=BC:24:11:00:00:01,bridge=vmbr1,link_down=1,mtu=1400,queues=4,rate=12.5,tag=20,trunks=10;20-30");
        assert_eq!(n.model, NicModel::E1000);
        assert_eq!(
            n.macaddr.as_ref().map(MacAddr::as_str),
            Some("BC:24:11:00:00:01")
        );
        assert_eq!(n.bridge.as_deref(), Some("vmbr1"));
        assert_eq!(
            (n.tag, n.mtu, n.queues, n.link_down),
            (Some(20), Some(1400), Some(4), Some(true))
        );
        assert_eq!(n.other.get("rate").map(String::as_str), Some("12.5"));
        assert_eq!(n.other.get("trunks").map(String::as_str), Some("10;20-30"));
    }

    #[test]
    fn other_forms_of_model_and_mac() {
        let bare = net("virtio,bridge=vmbr0");
        assert_eq!(
            (bare.model, bare.macaddr.is_none()),
            (NicModel::Virtio, true)
        );
        assert_eq!(bare.to_string(), "virtio,bridge=vmbr0");
        let keyed = net("model=virtio,macaddr=bc:24:11:00:00:01,bridge=vmbr0");
        assert_eq!(keyed, net("virtio=BC:24:11:00:00:01,bridge=vmbr0"));
        assert_eq!(keyed.to_string(), "virtio=bc:24:11:00:00:01,bridge=vmbr0");
    }

    #[test]
    fn change_keeps_unknown_items() {
        let mut n = net("virtio=AA:BB:CC:DD:EE:F0,bridge=vmbr0,firewall=1,mtu=1400");
        n.bridge = Some("vmbr1".into());
        assert_eq!(
            n.to_string(),
            "virtio=AA:BB:CC:DD:EE:F0,bridge=vmbr1,firewall=1,mtu=1400"
        );
        n.tag = Some(10);
        assert_eq!(
            n.to_string(),
            "virtio=AA:BB:CC:DD:EE:F0,bridge=vmbr1,firewall=1,mtu=1400,tag=10"
        );
        let mut m = net("virtio,bridge=vmbr0,rate=5,firewall=1");
        m.tag = Some(7);
        assert_eq!(m.to_string(), "virtio,bridge=vmbr0,rate=5,firewall=1,tag=7");
    }

    #[test]
    fn structural_comparison() {
        let have = net("virtio=BC:24:11:CB:B3:C7,bridge=vmbr0,firewall=1,tag=10");
        let mut want = Net::new(NicModel::Virtio);
        want.bridge = Some("vmbr0".into());
        want.tag = Some(10);
        assert!(want.same_managed(&have) && have.same_managed(&want));
        want.macaddr = MacAddr::parse("bc:24:11:cb:b3:c7").ok();
        assert!(want.same_managed(&have));
        want.macaddr = MacAddr::parse("bc:24:11:cb:b3:c8").ok();
        assert!(!want.same_managed(&have));
        assert_eq!(
            net("virtio,firewall=1,bridge=vmbr0"),
            net("virtio,bridge=vmbr0,firewall=1")
        );
    }

    #[test]
    fn apply_managed_keeps_the_rest() {
        let mut have = net("virtio=BC:24:11:CB:B3:C7,bridge=vmbr0,firewall=1,mtu=1400,tag=10");
        let mut want = Net::new(NicModel::Virtio);
        want.bridge = Some("vmbr2".into());
        have.apply_managed(&want);
        assert_eq!(
            have.to_string(),
            "virtio=BC:24:11:CB:B3:C7,bridge=vmbr2,firewall=1,mtu=1400"
        );
        assert!(have.same_managed(&want));
    }

    #[test]
    fn rejects_what_proxmox_rejects() {
        for text in [
            "bridge=vmbr0",
            "virtio,e1000",
            "foo,bridge=vmbr0",
            "virtio=BC:24:11,bridge=vmbr0",
            "virtio,tag=0",
            "virtio,tag=4095",
            "virtio,bridge=vmbr0,bridge=vmbr1",
            "virtio=BC:24:11:CB:B3:C7,macaddr=BC:24:11:CB:B3:C7",
            "virtio,firewall=maybe",
            "virtio,bridge=",
        ] {
            assert!(Net::parse(text).is_err(), "{text}");
        }
    }
}
