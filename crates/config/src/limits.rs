//! Bounds on what a configuration may hold, and how a value is quoted in an
//! error.
//!
//! Every value that reaches the host travels as one argument of one shell
//! line, sent through SSH and run by the remote shell as `sh -c LINE`. Linux
//! refuses any single argv word longer than `MAX_ARG_STRLEN` (32 pages, 128
//! KiB on 4 KiB pages) with `E2BIG`, so the whole `qm create` line of a VM,
//! every option together, must stay under 128 KiB. The bounds below keep one
//! VM's line well under that: 64 KiB of description (Proxmox itself keeps
//! 8192 characters, checked separately), 16 KiB per SSH key (keys travel in
//! a file, not on the line), and 4 KiB for any other value (`PATH_MAX`).
//!
//! The files themselves are read with a size limit, so that a mistaken path
//! (`/dev/zero`, a disk image) fails at once instead of filling memory.

/// The largest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// The largest `ssh_keys_file` read, in bytes.
pub const MAX_KEYS_FILE_BYTES: usize = 1 << 20;

/// The deepest nesting of YAML collections accepted. A configuration nests
/// four levels (`vms`, a VM, `tags`); the bound stops a file of ten thousand
/// `[` from exhausting the stack.
pub const MAX_DEPTH: usize = 32;

/// The most YAML nodes (scalars, mappings, sequences) a file may hold,
/// aliases expanded.
pub const MAX_NODES: usize = 250_000;

/// The most alias uses (`*name`) a file may hold.
pub const MAX_ALIASES: usize = 10_000;

/// The most events alias expansion may replay: bounds "billion laughs". A
/// fleet that merges one `&defaults` anchor into each of a thousand VMs
/// replays some 50,000.
pub const MAX_REPLAYED_EVENTS: usize = 100_000;

/// The most bytes of text values a file may hold, aliases expanded.
pub const MAX_SCALAR_BYTES: usize = 2 * MAX_CONFIG_BYTES;

/// The longest description sent, in bytes (the transport bound; Proxmox's
/// own 8192-character limit is checked by the `description` rule).
pub const MAX_DESCRIPTION_BYTES: usize = 64 << 10;

/// The longest single SSH public key line, in bytes. A 16384-bit RSA key,
/// the largest OpenSSH makes, is about 2.8 KiB of base64.
pub const MAX_SSH_KEY_BYTES: usize = 16 << 10;

/// The longest value of any other key, in bytes.
pub const MAX_VALUE_BYTES: usize = 4 << 10;

/// How many characters of a value an error message quotes.
pub const QUOTED_CHARS: usize = 80;

/// The longest text value accepted for `key`.
pub fn max_value_len(key: &str) -> usize {
    match key {
        "description" => MAX_DESCRIPTION_BYTES,
        "ssh_keys" => MAX_SSH_KEY_BYTES,
        k if k == "user_data" || k.starts_with("user_data.") => {
            crate::validate::user_data::MAX_USER_DATA_BYTES
        }
        _ => MAX_VALUE_BYTES,
    }
}

/// `4 MiB`, `1 KiB`, `300 bytes`.
pub fn human_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes & ((1 << 20) - 1) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes & ((1 << 10) - 1) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// The reason a file over `limit` is refused, e.g. `larger than 1 MiB, the
/// limit for an ssh_keys_file`.
pub fn too_large(limit: usize, what: &str) -> String {
    format!("larger than {}, the limit for {what}", human_size(limit))
}

/// A value as an error quotes it: in single quotes, control characters
/// escaped (`\0`, `\n`, `\u{1b}`), and when longer than [`QUOTED_CHARS`]
/// characters only its start, followed by `…' (N bytes)`.
pub fn shown(value: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in value.chars().enumerate() {
        if i == QUOTED_CHARS {
            out.push_str(&format!("…' ({} bytes)", value.len()));
            return out;
        }
        match c {
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_quotes_short_values_whole_and_long_ones_by_their_start() {
        assert_eq!(shown("web-01"), "'web-01'");
        assert_eq!(shown("a\0b\n"), "'a\\0b\\n'");
        let long = "x".repeat(100_000);
        let s = shown(&long);
        assert_eq!(s, format!("'{}…' (100000 bytes)", "x".repeat(80)));
        assert_eq!(
            shown(&"é".repeat(81)),
            format!("'{}…' (162 bytes)", "é".repeat(80))
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(MAX_CONFIG_BYTES), "4 MiB");
        assert_eq!(human_size(MAX_VALUE_BYTES), "4 KiB");
        assert_eq!(human_size(300), "300 bytes");
        assert_eq!(
            too_large(MAX_KEYS_FILE_BYTES, "an ssh_keys_file"),
            "larger than 1 MiB, the limit for an ssh_keys_file"
        );
    }
}
