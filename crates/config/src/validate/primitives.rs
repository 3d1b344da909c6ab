//! Pure checks on the text of one value: names, ids, keys, addresses.
//!
//! Each function answers "is this well-formed" and knows nothing of spans or
//! messages; the decoders in the sibling modules turn a `false` into an error.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Proxmox `dns-name` (`pve_verify_dns_name`): labels
/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`. Proxmox sets no
/// length; see [`dns_name_problem`] for the lengths DNS allows.
pub(super) fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// The longest DNS label (RFC 1035 §2.3.4).
pub(super) const MAX_DNS_LABEL: usize = 63;

/// The longest DNS name in text form, without a final dot (RFC 1035
/// §3.1: 255 octets on the wire).
pub(super) const MAX_DNS_NAME: usize = 253;

/// What is wrong with a DNS name that [`is_dns_name`] accepts, if anything.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DnsLength<'a> {
    /// This label is longer than [`MAX_DNS_LABEL`].
    Label(&'a str),
    /// The whole name is longer than [`MAX_DNS_NAME`].
    Name,
}

/// Checks the lengths DNS sets on a name of the `dns-name` shape.
pub(super) fn dns_name_problem(s: &str) -> Option<DnsLength<'_>> {
    if let Some(label) = s.split('.').find(|l| l.len() > MAX_DNS_LABEL) {
        return Some(DnsLength::Label(label));
    }
    (s.len() > MAX_DNS_NAME).then_some(DnsLength::Name)
}

/// Whether `s` can only have been meant as an IPv4 address: digits and dots.
/// A DNS name never has an all-numeric top-level label (RFC 3696 §2), so
/// `10.0.0.300` is a broken address, not a host name.
pub(super) fn looks_like_ipv4(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

/// Proxmox `pve-storage-id`: `[a-z][a-z0-9\-_.]*[a-z0-9]`.
pub fn is_storage_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(c))
}

/// A Proxmox tag: letters, digits and `_ - + .`, not starting with `- + .`.
pub(super) fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_-+.".contains(c))
}

/// A lower-case Unix login name of at most 32 characters.
pub(super) fn is_unix_user(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-".contains(c))
}

/// A Linux bridge name (at most 15 characters, starting with a letter).
pub(super) fn is_bridge(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// Parses `AA:BB:CC:DD:EE:FF`; returns the octets.
pub(super) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// Parses `A.B.C.D/PREFIX`.
pub(super) fn parse_cidr4(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: Ipv4Addr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    (prefix <= 32 && !p.starts_with('+')).then_some((addr, prefix))
}

/// Parses `ADDR/PREFIX` for IPv6.
pub(super) fn parse_cidr6(s: &str) -> Option<(Ipv6Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: Ipv6Addr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    (prefix <= 128 && !p.starts_with('+')).then_some((addr, prefix))
}
