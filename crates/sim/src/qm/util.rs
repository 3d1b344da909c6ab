//! Small values `qm` computes: sizes, ids, MACs, and the `--sshkeys` file.

use super::*;

pub(super) fn fmt_size(bytes: u64) -> String {
    for (u, f) in [
        ('T', 1u64 << 40),
        ('G', 1 << 30),
        ('M', 1 << 20),
        ('K', 1 << 10),
    ] {
        if bytes >= f && bytes.is_multiple_of(f) {
            return [(bytes / f).to_string(), u.to_string()].concat();
        }
    }
    bytes.to_string()
}

/// A size as `qm` takes it: bytes, or a number (fractions allowed) with
/// `K`, `M`, `G` or `T`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let (num, f) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    Some((v * f as f64) as u64)
}

pub(super) fn is_drive_key(k: &str) -> bool {
    let base = k.trim_end_matches(|c: char| c.is_ascii_digit());
    matches!(
        base,
        "ide" | "sata" | "scsi" | "virtio" | "efidisk" | "tpmstate" | "unused"
    ) && base.len() < k.len()
}

pub(super) fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect()
}

pub(super) fn uuid() -> String {
    [
        random_hex(8),
        "-".into(),
        random_hex(4),
        "-4".into(),
        random_hex(3),
        "-a".into(),
        random_hex(3),
        "-".into(),
        random_hex(12),
    ]
    .concat()
}

/// A new NIC's MAC: the Proxmox OUI `BC:24:11` since PVE 8.1, before that
/// a random locally administered unicast address (CONTRACT §3.2, §15).
pub(super) fn random_mac(proxmox_oui: bool) -> String {
    if proxmox_oui {
        let b: Vec<String> = (0..3)
            .map(|_| format!("{:02X}", fastrand::u8(..)))
            .collect();
        return ["BC:24:11:", &b.join(":")].concat();
    }
    let b: Vec<String> = (0..6)
        .map(|i| {
            let x = fastrand::u8(..);
            format!("{:02X}", if i == 0 { (x & 0xfe) | 2 } else { x })
        })
        .collect();
    b.join(":")
}

/// Percent-encodes as Perl's `uri_escape` (unreserved: A-Za-z0-9 -._~).
pub(super) fn uri_escape(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

pub(super) fn valid_ssh_key(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return false;
    };
    // The blob is base64 whose first field repeats the key type.
    let decoded = decode_base64(blob);
    decoded.len() > 4 + kind.len() && decoded[4..4 + kind.len()] == *kind.as_bytes()
}

pub(super) fn decode_base64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Vec::new(),
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// Reads an `--sshkeys` file the way `qm` does and returns the URL-encoded text.
pub(super) fn read_sshkeys(cx: &Ctx, path: &str) -> Result<String, Failure> {
    let text = std::fs::read_to_string(cx.root.host_path(&cx.node, path)).map_err(|_| {
        Failure::die(["can't open '", path, "' - No such file or directory"].concat())
    })?;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if !valid_ssh_key(line) {
            return Err(Failure::die("SSH public key validation error"));
        }
    }
    Ok(uri_escape(&text))
}
