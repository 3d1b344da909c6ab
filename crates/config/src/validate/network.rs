//! A VM's network: `bridge`, `vlan`, `mac` of `net0` and the cloud-init
//! addresses `ip`/`gateway`, `ip6`/`gateway6` and `nameserver`.

use super::primitives::{is_bridge, parse_cidr4, parse_cidr6, parse_mac};
use super::Cx;
use crate::error::ErrorKind;
use crate::raw::Node;
use crate::spec::{Ip6Config, IpConfig};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

impl Cx<'_> {
    /// `bridge`: a Linux bridge name.
    pub(super) fn bridge(&mut self, n: &Node) -> Option<String> {
        self.checked(
            "bridge",
            n,
            is_bridge,
            "is not a bridge name",
            "use the Linux bridge name, e.g. vmbr0",
        )
    }

    /// `vlan`: a VLAN tag.
    pub(super) fn vlan(&mut self, n: &Node) -> Option<u16> {
        self.int("vlan", n, 1, 4094, "VLAN tags run from 1 to 4094")
            .map(|v| v as u16)
    }

    /// `mac`: a unicast, non-zero MAC, upper-cased.
    pub(super) fn mac(&mut self, n: &Node) -> Option<String> {
        let s = self.string("mac", n)?;
        match parse_mac(&s) {
            None => self.err(
                ErrorKind::Format,
                n.span,
                format!("mac: '{s}' is not a MAC address"),
                "write six hex pairs separated by ':', e.g. BC:24:11:00:00:01",
            ),
            Some(o) if o[0] & 1 == 1 => self.err(
                ErrorKind::Range,
                n.span,
                format!("mac: '{s}' is a multicast address"),
                "a NIC needs a unicast MAC: the lowest bit of the first octet must be 0",
            ),
            Some(o) if o == [0; 6] => self.err(
                ErrorKind::Range,
                n.span,
                "mac: the all-zero address is not usable",
                "leave 'mac' out to let Proxmox pick one",
            ),
            Some(_) => return Some(s.to_ascii_uppercase()),
        }
        None
    }

    /// `nameserver`: DNS servers by address.
    pub(super) fn nameserver(&mut self, n: &Node) -> Option<Vec<String>> {
        let list = self.str_list("nameserver", n)?;
        Some(
            list.into_iter()
                .filter(|(s, span)| {
                    let valid = s.parse::<IpAddr>().is_ok();
                    self.expect(
                        valid,
                        *span,
                        "nameserver",
                        s,
                        "is not an IP address",
                        "list DNS servers by address",
                    )
                })
                .map(|(s, _)| s)
                .collect(),
        )
    }

    /// `ip` alone: `dhcp` or a host address in CIDR notation.
    fn ipv4_address(&mut self, n: &Node) -> Option<IpConfig> {
        let s = self.string("ip", n)?;
        if s == "dhcp" {
            return Some(IpConfig::Dhcp);
        }
        let Some((address, prefix)) = parse_cidr4(&s) else {
            self.err(
                ErrorKind::Format,
                n.span,
                format!("ip: '{s}' is not an IPv4 address in CIDR notation"),
                "write the address with its prefix length, e.g. 10.0.0.50/24, or 'dhcp'",
            );
            return None;
        };
        let net = ipnet::Ipv4Net::new(address, prefix).ok().map(|n| n.trunc());
        let is_edge = net
            .is_some_and(|n| prefix <= 30 && (address == n.network() || address == n.broadcast()));
        if is_edge {
            self.err(
                ErrorKind::Range,
                n.span,
                format!("ip: '{s}' is the network or broadcast address of its subnet"),
                "give the VM a host address inside the subnet",
            );
            return None;
        }
        Some(IpConfig::Static {
            address,
            prefix,
            gateway: None,
        })
    }

    /// `ip` and `gateway` together. Clears `ok` on any error; still returns
    /// what could be read.
    pub(super) fn ipv4(
        &mut self,
        ip: Option<&Node>,
        gw: Option<&Node>,
        ok: &mut bool,
    ) -> Option<IpConfig> {
        let cfg = ip.and_then(|n| {
            let cfg = self.ipv4_address(n);
            *ok &= cfg.is_some();
            cfg
        });
        let Some(g) = gw else { return cfg };
        let Some(gs) = self.string("gateway", g) else {
            *ok = false;
            return cfg;
        };
        let Ok(gaddr) = gs.parse::<Ipv4Addr>() else {
            self.err(
                ErrorKind::Format,
                g.span,
                format!("gateway: '{gs}' is not an IPv4 address"),
                "write the gateway as an address, e.g. 10.0.0.1",
            );
            *ok = false;
            return cfg;
        };
        let Some(IpConfig::Static {
            address, prefix, ..
        }) = cfg
        else {
            let (kind, message, help) = match cfg {
                Some(_) => (
                    ErrorKind::Conflict,
                    "gateway: set together with ip: dhcp",
                    "DHCP provides the gateway; remove 'gateway' (Proxmox rejects the combination)",
                ),
                None => (
                    ErrorKind::Missing,
                    "gateway: set without 'ip'",
                    "Proxmox requires 'ip' for 'gateway' (gw requires ip)",
                ),
            };
            self.err(kind, g.span, message, help);
            *ok = false;
            return cfg;
        };
        let inside = ipnet::Ipv4Net::new(address, prefix).is_ok_and(|net| net.contains(&gaddr));
        if !inside {
            self.err(
                ErrorKind::Conflict,
                g.span,
                format!("gateway: {gs} is outside the VM's subnet"),
                format!("the gateway must be inside {address}/{prefix}; check the prefix length"),
            );
            *ok = false;
        } else if gaddr == address {
            self.err(
                ErrorKind::Conflict,
                g.span,
                "gateway: equals the VM's own address",
                "use the router's address",
            );
            *ok = false;
        }
        Some(IpConfig::Static {
            address,
            prefix,
            gateway: Some(gaddr),
        })
    }

    /// `ip6` alone: `dhcp`, `auto` or an address in CIDR notation.
    fn ipv6_address(&mut self, n: &Node) -> Option<Ip6Config> {
        let s = self.string("ip6", n)?;
        match s.as_str() {
            "dhcp" => return Some(Ip6Config::Dhcp),
            "auto" => return Some(Ip6Config::Auto),
            _ => {}
        }
        let Some((address, prefix)) = parse_cidr6(&s) else {
            self.err(
                ErrorKind::Format,
                n.span,
                format!("ip6: '{s}' is not an IPv6 address in CIDR notation"),
                "write e.g. 2001:db8::10/64, 'dhcp' or 'auto'",
            );
            return None;
        };
        Some(Ip6Config::Static {
            address,
            prefix,
            gateway: None,
        })
    }

    /// `ip6` and `gateway6` together, as [`Cx::ipv4`].
    pub(super) fn ipv6(
        &mut self,
        ip: Option<&Node>,
        gw: Option<&Node>,
        ok: &mut bool,
    ) -> Option<Ip6Config> {
        let cfg = ip.and_then(|n| {
            let cfg = self.ipv6_address(n);
            *ok &= cfg.is_some();
            cfg
        });
        let Some(g) = gw else { return cfg };
        let Some(gs) = self.string("gateway6", g) else {
            *ok = false;
            return cfg;
        };
        let Ok(gaddr) = gs.parse::<Ipv6Addr>() else {
            self.err(
                ErrorKind::Format,
                g.span,
                format!("gateway6: '{gs}' is not an IPv6 address"),
                "write the gateway as an address, e.g. 2001:db8::1",
            );
            *ok = false;
            return cfg;
        };
        match cfg {
            Some(Ip6Config::Static {
                address, prefix, ..
            }) => Some(Ip6Config::Static {
                address,
                prefix,
                gateway: Some(gaddr),
            }),
            _ => {
                self.err(
                    ErrorKind::Missing,
                    g.span,
                    "gateway6: needs a static 'ip6'",
                    "Proxmox requires ip6 for gw6",
                );
                *ok = false;
                cfg
            }
        }
    }
}
