//! The `ipconfigN` property string: cloud-init addresses of NIC N.
//!
//! ```text
//! ip=192.168.42.100/24,gw=192.168.42.1
//! ```
//!
//! `[ip=<CIDRv4|dhcp|manual>][,gw=<IPv4>][,ip6=<CIDRv6|dhcp|auto|manual>][,gw6=<IPv6>]`
//! (CONTRACT §3.3). Proxmox stores the value verbatim, so [`IpConfig`] keeps
//! the order it read; addresses print in Rust's canonical form.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::propstring::{checked_items, extend_other, Layout, PropertyError};

/// `ip`: how NIC N gets its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv4Config {
    /// `dhcp`.
    Dhcp,
    /// `manual`: cloud-init leaves IPv4 alone.
    Manual,
    /// `ADDRESS/PREFIX`, prefix 8..=32 as Proxmox requires.
    Static {
        /// The address.
        address: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
    },
}

/// `ip6`: how NIC N gets its IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv6Config {
    /// `dhcp`.
    Dhcp,
    /// `auto`: SLAAC.
    Auto,
    /// `manual`: cloud-init leaves IPv6 alone.
    Manual,
    /// `ADDRESS/PREFIX`, prefix 8..=128 as Proxmox requires.
    Static {
        /// The address.
        address: Ipv6Addr,
        /// The prefix length.
        prefix: u8,
    },
}

fn cidr<A: std::str::FromStr>(
    key: &str,
    value: &str,
    max: u8,
    expected: &'static str,
) -> Result<(A, u8), PropertyError> {
    let invalid = || PropertyError::invalid(key, value, expected);
    let (address, prefix) = value.split_once('/').ok_or_else(invalid)?;
    let address = address.parse().map_err(|_| invalid())?;
    let prefix = crate::propstring::parse_int(key, prefix, 8..=max, expected)?;
    Ok((address, prefix))
}

impl Ipv4Config {
    /// Reads an `ip` value.
    pub fn parse(value: &str) -> Result<Self, PropertyError> {
        const EXPECTED: &str = "dhcp, manual or an IPv4 CIDR with prefix 8..32";
        match value {
            "dhcp" => Ok(Self::Dhcp),
            "manual" => Ok(Self::Manual),
            _ => cidr("ip", value, 32, EXPECTED)
                .map(|(address, prefix)| Self::Static { address, prefix }),
        }
    }
}

impl Ipv6Config {
    /// Reads an `ip6` value.
    pub fn parse(value: &str) -> Result<Self, PropertyError> {
        const EXPECTED: &str = "dhcp, auto, manual or an IPv6 CIDR with prefix 8..128";
        match value {
            "dhcp" => Ok(Self::Dhcp),
            "auto" => Ok(Self::Auto),
            "manual" => Ok(Self::Manual),
            _ => cidr("ip6", value, 128, EXPECTED)
                .map(|(address, prefix)| Self::Static { address, prefix }),
        }
    }
}

impl std::fmt::Display for Ipv4Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dhcp => f.write_str("dhcp"),
            Self::Manual => f.write_str("manual"),
            Self::Static { address, prefix } => write!(f, "{address}/{prefix}"),
        }
    }
}

impl std::fmt::Display for Ipv6Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dhcp => f.write_str("dhcp"),
            Self::Auto => f.write_str("auto"),
            Self::Manual => f.write_str("manual"),
            Self::Static { address, prefix } => write!(f, "{address}/{prefix}"),
        }
    }
}

/// One `ipconfigN` value. Equality is structural: item order does not matter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpConfig {
    /// `ip`.
    pub ip: Option<Ipv4Config>,
    /// `gw`: the IPv4 gateway (Proxmox requires `ip` with it).
    pub gw: Option<Ipv4Addr>,
    /// `ip6`.
    pub ip6: Option<Ipv6Config>,
    /// `gw6`: the IPv6 gateway (Proxmox requires `ip6` with it).
    pub gw6: Option<Ipv6Addr>,
    /// Items the schema does not have, kept as read.
    pub other: BTreeMap<String, String>,
    layout: Layout,
}

impl IpConfig {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses an `ipconfigN` value, checked as Proxmox checks it (including
    /// that `gw` needs `ip` and `gw6` needs `ip6`).
    pub fn parse(text: &str) -> Result<Self, PropertyError> {
        let mut c = Self::new();
        for (key, value, _) in checked_items(text, None)? {
            c.layout.push(key, false);
            let gateway = |v: &str, expected| PropertyError::invalid(key, v, expected);
            match key {
                "ip" => c.ip = Some(Ipv4Config::parse(value)?),
                "ip6" => c.ip6 = Some(Ipv6Config::parse(value)?),
                "gw" => {
                    c.gw = Some(
                        value
                            .parse()
                            .map_err(|_| gateway(value, "an IPv4 address"))?,
                    )
                }
                "gw6" => {
                    c.gw6 = Some(
                        value
                            .parse()
                            .map_err(|_| gateway(value, "an IPv6 address"))?,
                    )
                }
                _ => {
                    c.other.insert(key.to_string(), value.to_string());
                }
            }
        }
        if c.gw.is_some() && c.ip.is_none() {
            return Err(PropertyError::MissingKey("ip"));
        }
        if c.gw6.is_some() && c.ip6.is_none() {
            return Err(PropertyError::MissingKey("ip6"));
        }
        Ok(c)
    }

    /// True when no item is set.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none()
            && self.gw.is_none()
            && self.ip6.is_none()
            && self.gw6.is_none()
            && self.other.is_empty()
    }
}

impl std::fmt::Display for IpConfig {
    /// The items in the order they were read; new ones sorted among them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut items = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                items.push((k.to_string(), v));
            }
        };
        put("ip", self.ip.map(|x| x.to_string()));
        put("gw", self.gw.map(|x| x.to_string()));
        put("ip6", self.ip6.map(|x| x.to_string()));
        put("gw6", self.gw6.map(|x| x.to_string()));
        extend_other(&mut items, &self.other);
        f.write_str(&self.layout.render(None, items))
    }
}

impl std::str::FromStr for IpConfig {
    type Err = PropertyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipc(text: &str) -> IpConfig {
        IpConfig::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn real_values_round_trip() {
        // From fixtures/pvesh/qemu-config--*.json; the others as stored verbatim.
        for text in [
            "ip=192.168.42.100/24,gw=192.168.42.1",
            "ip=10.0.0.20/24,gw=10.0.0.1",
            "gw=10.0.0.1,ip=10.0.0.20/24",
            "ip=dhcp",
            "ip=dhcp,ip6=auto",
            "ip=manual,ip6=fd00::5/64,gw6=fd00::1",
        ] {
            assert_eq!(ipc(text).to_string(), text);
        }
    }

    #[test]
    fn typed_fields() {
        let c = ipc("ip=192.168.42.100/24,gw=192.168.42.1");
        assert_eq!(
            c.ip,
            Some(Ipv4Config::Static {
                address: Ipv4Addr::new(192, 168, 42, 100),
                prefix: 24
            })
        );
        assert_eq!(c.gw, Some(Ipv4Addr::new(192, 168, 42, 1)));
        assert_eq!(
            ipc("gw=10.0.0.1,ip=10.0.0.20/24"),
            ipc("ip=10.0.0.20/24,gw=10.0.0.1")
        );
        assert!(ipc("").is_empty());
    }

    #[test]
    fn build() {
        let mut c = IpConfig::new();
        c.ip6 = Some(Ipv6Config::Dhcp);
        c.ip = Some(Ipv4Config::Dhcp);
        assert_eq!(c.to_string(), "ip=dhcp,ip6=dhcp");
        // IPv6 prints canonically, so equal values compare equal.
        assert_eq!(ipc("ip6=FD00:0::1/64"), ipc("ip6=fd00::1/64"));
    }

    #[test]
    fn rejects_what_proxmox_rejects() {
        for text in [
            "ip=10.0.0.1",
            "ip=10.0.0.1/7",
            "ip=010.0.0.1/24",
            "ip=10.0.0.1/33",
            "gw=10.0.0.1",
            "ip6=auto,gw6=fd00::1,gw6=fd00::2",
            "gw6=fd00::1",
            "ip6=fd00::1/129",
            "dhcp",
            "ip=",
        ] {
            assert!(IpConfig::parse(text).is_err(), "{text}");
        }
    }
}
