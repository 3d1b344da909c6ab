//! A VM's network: `bridge`, `vlan`, `mac` of `net0` and the cloud-init
//! addresses `ip`/`gateway`, `ip6`/`gateway6` and `nameserver`.

use super::primitives::{
    dns_name_problem, is_bridge, is_dns_name, looks_like_ipv4, parse_cidr4, parse_cidr6, parse_mac,
    DnsLength, MAX_DNS_LABEL, MAX_DNS_NAME,
};
use super::Cx;
use crate::error::{ErrorKind, Span};
use crate::limits::shown;
use crate::raw::Node;
use crate::spec::{Ip6Config, IpConfig};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The shortest prefix Proxmox's `CIDRv4` and `CIDRv6` formats accept
/// (`pve_verify_cidrv4`/`pve_verify_cidrv6`: `/0` to `/7` are refused).
const MIN_PREFIX: u8 = 8;

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
                format!("mac: {} is not a MAC address", shown(&s)),
                "write six hex pairs separated by ':', e.g. BC:24:11:00:00:01",
            ),
            Some(o) if o[0] & 1 == 1 => self.err(
                ErrorKind::Range,
                n.span,
                format!("mac: {} is a multicast address", shown(&s)),
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

    /// Whether `s`, the value of `key` at `span`, is a DNS name both as
    /// Proxmox's `dns-name` format reads it and within the lengths DNS
    /// allows; reports it (`KEY: 'S' WHAT`) if not.
    pub(super) fn dns_name(
        &mut self,
        key: &str,
        s: &str,
        span: Span,
        what: &str,
        help: &str,
    ) -> bool {
        if !is_dns_name(s) {
            self.err(
                ErrorKind::Format,
                span,
                format!("{key}: {} {what}", shown(s)),
                help,
            );
            return false;
        }
        let (message, help) = match dns_name_problem(s) {
            None => return true,
            Some(DnsLength::Label(label)) => (
                format!(
                    "{key}: the label {} is {} characters long; a DNS label has at most {MAX_DNS_LABEL}",
                    shown(label),
                    label.len()
                ),
                "Proxmox would store it, but no resolver or guest hostname takes it: shorten the label",
            ),
            Some(DnsLength::Name) => (
                format!(
                    "{key}: {} is longer than the {MAX_DNS_NAME} characters of a DNS name",
                    shown(s)
                ),
                "Proxmox would store it, but no resolver takes it: use a shorter name",
            ),
        };
        self.err(ErrorKind::Range, span, message, help);
        false
    }

    /// `nameserver`: DNS servers, each an IP address or a DNS name, as
    /// Proxmox's `address-list` accepts them.
    pub(super) fn nameserver(&mut self, n: &Node) -> Option<Vec<String>> {
        const HELP: &str =
            "list DNS servers by address (10.0.0.1, 2001:db8::53) or by DNS name (dns.example.com)";
        let list = self.str_list("nameserver", n)?;
        let mut out = Vec::new();
        for (s, span) in list {
            let valid = if s.parse::<IpAddr>().is_ok() {
                true
            } else if looks_like_ipv4(&s) || s.contains(':') {
                let family = if s.contains(':') { "IPv6" } else { "IPv4" };
                self.err(
                    ErrorKind::Format,
                    span,
                    format!("nameserver: {} is not a valid {family} address", shown(&s)),
                    HELP,
                );
                false
            } else {
                self.dns_name(
                    "nameserver",
                    &s,
                    span,
                    "is neither an IP address nor a DNS name",
                    HELP,
                )
            };
            if valid {
                out.push(s);
            }
        }
        Some(out)
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
                format!("ip: {} is not an IPv4 address in CIDR notation", shown(&s)),
                "write the address with its prefix length, e.g. 10.0.0.50/24, or 'dhcp'",
            );
            return None;
        };
        if prefix < MIN_PREFIX {
            self.err(
                ErrorKind::Range,
                n.span,
                format!("ip: the prefix /{prefix} of {} is refused by Proxmox (CIDRv4 accepts /{MIN_PREFIX} to /32)", shown(&s)),
                "a VM's subnet is far smaller: write its real prefix length, e.g. /24",
            );
            return None;
        }
        let net = ipnet::Ipv4Net::new(address, prefix).ok().map(|n| n.trunc());
        let is_edge = net
            .is_some_and(|n| prefix <= 30 && (address == n.network() || address == n.broadcast()));
        if is_edge {
            self.err(
                ErrorKind::Range,
                n.span,
                format!(
                    "ip: {} is the network or broadcast address of its subnet",
                    shown(&s)
                ),
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
                format!("gateway: {} is not an IPv4 address", shown(&gs)),
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
                format!("ip6: {} is not an IPv6 address in CIDR notation", shown(&s)),
                "write e.g. 2001:db8::10/64, 'dhcp' or 'auto'",
            );
            return None;
        };
        if prefix < MIN_PREFIX {
            self.err(
                ErrorKind::Range,
                n.span,
                format!("ip6: the prefix /{prefix} of {} is refused by Proxmox (CIDRv6 accepts /{MIN_PREFIX} to /128)", shown(&s)),
                "a VM's subnet is far smaller: write its real prefix length, e.g. /64",
            );
            return None;
        }
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
                format!("gateway6: {} is not an IPv6 address", shown(&gs)),
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
