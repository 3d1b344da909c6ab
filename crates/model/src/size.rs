//! Disk sizes as Proxmox writes and reads them.
//!
//! Proxmox units are binary (`G` = GiB) and a size without unit is bytes
//! (CONTRACT §6). `format_size` prints the largest exact unit, as
//! `PVE::JSONSchema::format_size` does (`32G`, `2252M`, or plain bytes).

/// Why a size string did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a size (use a number with K, M, G or T, e.g. 20G)")]
pub struct SizeError(pub String);

const UNITS: [(char, u64); 4] = [
    ('T', 1 << 40),
    ('G', 1 << 30),
    ('M', 1 << 20),
    ('K', 1 << 10),
];

/// Parses `20G`, `512M`, `1.5T` or a plain byte count into bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let err = || SizeError(text.to_string());
    let t = text.trim();
    let (number, factor) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let factor = UNITS
                .iter()
                .find(|(u, _)| *u == c.to_ascii_uppercase())
                .map(|(_, f)| *f)
                .ok_or_else(err)?;
            (&t[..t.len() - 1], factor)
        }
        _ => (t, 1),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err());
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// Prints `bytes` with the largest binary unit that divides it exactly.
pub fn format_size(bytes: u64) -> String {
    for (unit, factor) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            let mut s = (bytes / factor).to_string();
            s.push(unit);
            return s;
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("2252M"), Ok(2252 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("20GB").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("").is_err());
        assert_eq!(format_size(20 << 30), "20G");
        assert_eq!(format_size(2252 << 20), "2252M");
        assert_eq!(format_size(1 << 40), "1T");
        assert_eq!(format_size(1000), "1000");
    }
}
