//! A VM's public SSH keys: listed inline (`ssh_keys`) or read from a file
//! (`ssh_keys_file`) through the caller's loader.
//!
//! Each key is one `authorized_keys` line, `[OPTIONS] TYPE BASE64
//! [COMMENT]`, decoded by the RustCrypto `ssh-key` crate: the base64 must
//! decode to a public key blob, and the type the blob names must be the
//! type the line names.

use super::Cx;
use crate::error::ErrorKind;
use crate::keys;
use crate::limits::{self, shown};
use crate::raw::{Node, Value};
use base64ct::Encoding;
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

/// Key types a guest's OpenSSH accepts in `authorized_keys`.
const ALLOWED: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// OpenSSH refuses RSA keys with a shorter modulus
/// (`SSH_RSA_MINIMUM_MODULUS_SIZE`).
const MIN_RSA_BITS: usize = 1024;

/// How many bad lines of one keys file are reported one by one.
const REPORTED_LINES: usize = 5;

/// Whether `word` names a key type (rather than starting the options).
fn is_type_word(word: &str) -> bool {
    ALLOWED.contains(&word)
        || word.starts_with("ssh-")
        || word.starts_with("ecdsa-")
        || word.starts_with("sk-")
        || word.ends_with("@openssh.com")
}

/// Splits the options off a line whose first word is not a key type: they
/// end at the first blank outside double quotes.
fn split_options(line: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

/// Why one `authorized_keys` line is not a usable public key; `None` when
/// it is one.
pub(super) fn key_problem(line: &str) -> Option<String> {
    if line.contains(['\n', '\r']) {
        return Some("holds more than one line; give each key as its own item".into());
    }
    let first = line.split_whitespace().next().unwrap_or("");
    let rest = if is_type_word(first) || line.split_whitespace().count() < 2 {
        line
    } else {
        let (options, rest) = split_options(line);
        if ssh_key::authorized_keys::ConfigOpts::new(options).is_err() {
            return Some(format!(
                "the options {} before the key are malformed",
                shown(options)
            ));
        }
        rest
    };
    let mut words = rest.split_whitespace();
    let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
        return Some("not an OpenSSH public key: expected 'TYPE BASE64 [COMMENT]'".into());
    };
    if kind == "ssh-dss" {
        return Some(
            "a DSA (ssh-dss) key, which OpenSSH refuses (disabled since 7.0, removed in 10.0)"
                .into(),
        );
    }
    if kind.contains("-cert-v01@") {
        return Some(format!(
            "{} is an SSH certificate type, not a public key",
            shown(kind)
        ));
    }
    if !ALLOWED.contains(&kind) {
        let mut why = format!("unknown key type {}", shown(kind));
        if let Some(s) = keys::suggest(kind, ALLOWED) {
            why.push_str(&format!(" (did you mean '{s}'?)"));
        }
        return Some(why);
    }
    let Ok(bytes) = base64ct::Base64::decode_vec(blob) else {
        return Some("the key data is not valid base64".into());
    };
    let key = match PublicKey::from_bytes(&bytes) {
        Ok(key) => key,
        Err(e) => return Some(format!("the key data is not an SSH public key ({e})")),
    };
    let inner = key.algorithm();
    if inner.as_str() != kind {
        return Some(format!(
            "the key data is of type '{}', but the line says '{kind}'",
            inner.as_str()
        ));
    }
    if let KeyData::Rsa(rsa) = key.key_data() {
        let n = rsa.n.as_positive_bytes().unwrap_or_default();
        let bits = n.first().map_or(0, |top| {
            (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
        });
        if bits < MIN_RSA_BITS {
            return Some(format!(
                "a {bits}-bit RSA key; OpenSSH refuses RSA keys under {MIN_RSA_BITS} bits"
            ));
        }
    }
    None
}

const KEY_HELP: &str =
    "paste the whole line of a .pub file: 'ssh-ed25519 AAAA... comment' (ssh-keygen -y -f KEY prints it)";

impl Cx<'_> {
    /// The keys of `ssh_keys` followed by those of `ssh_keys_file`, without
    /// consecutive repeats. Clears `ok` on any error.
    pub(super) fn ssh_keys(
        &mut self,
        inline: Option<&Node>,
        file: Option<&Node>,
        ok: &mut bool,
    ) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(n) = inline {
            match self.ssh_key_list(n) {
                Some(k) => keys.extend(k),
                None => *ok = false,
            }
        }
        if let Some(n) = file {
            match self.ssh_keys_file(n) {
                Some(k) => keys.extend(k),
                None => *ok = false,
            }
        }
        keys.dedup();
        keys
    }

    /// `ssh_keys`: one key or a list of them.
    fn ssh_key_list(&mut self, n: &Node) -> Option<Vec<String>> {
        let items = match &n.value {
            Value::Seq(items) => items.iter().collect::<Vec<_>>(),
            Value::Str(_) => vec![n],
            _ => {
                self.type_err("ssh_keys", n, "a list of public keys");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            match &item.value {
                Value::Str(s) => match key_problem(s.trim()) {
                    None => out.push(s.trim().to_string()),
                    Some(why) => {
                        self.err(
                            ErrorKind::Format,
                            item.span,
                            format!("ssh_keys: key {}: {why}", i + 1),
                            KEY_HELP,
                        );
                        ok = false;
                    }
                },
                _ => {
                    self.type_err("ssh_keys", item, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// `ssh_keys_file`: a file of public keys, one per line; blank lines and
    /// `#` comments are skipped.
    fn ssh_keys_file(&mut self, n: &Node) -> Option<Vec<String>> {
        const WHAT: &str = "an ssh_keys_file";
        let path = self.string("ssh_keys_file", n)?;
        let text = (self.load)(&path).and_then(|text| {
            if text.len() > limits::MAX_KEYS_FILE_BYTES {
                Err(limits::too_large(limits::MAX_KEYS_FILE_BYTES, WHAT))
            } else {
                Ok(text)
            }
        });
        let text = match text {
            Ok(text) => text,
            Err(why) => {
                self.err(
                    ErrorKind::File,
                    n.span,
                    format!("ssh_keys_file: cannot read {}: {why}", shown(&path)),
                    "give a readable file of public keys; relative paths start at the configuration file's folder",
                );
                return None;
            }
        };
        let mut out = Vec::new();
        let mut bad = 0usize;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match key_problem(line) {
                None => out.push(line.to_string()),
                Some(why) => {
                    bad += 1;
                    if bad <= REPORTED_LINES {
                        self.err(
                            ErrorKind::File,
                            n.span,
                            format!("ssh_keys_file: {}:{}: {why}", path, i + 1),
                            "the file must contain OpenSSH public keys, one per line (e.g. ~/.ssh/id_ed25519.pub)",
                        );
                    }
                }
            }
        }
        if bad > REPORTED_LINES {
            self.err(
                ErrorKind::File,
                n.span,
                format!(
                    "ssh_keys_file: {path}: {} more lines are not public keys",
                    bad - REPORTED_LINES
                ),
                "is this the right file? it should be a .pub file or an authorized_keys file",
            );
        }
        (bad == 0).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti user@example.com";

    #[test]
    fn accepts_keys_with_comments_and_options() {
        assert_eq!(key_problem(ED25519), None);
        let no_comment = ED25519.rsplit_once(' ').map(|(k, _)| k).unwrap_or("");
        assert_eq!(key_problem(no_comment), None);
        let with_options = format!("from=\"10.0.0.0/8\",no-pty {ED25519}");
        assert_eq!(key_problem(&with_options), None);
        let spaced = format!("{ED25519} with a long comment");
        assert_eq!(key_problem(&spaced), None);
    }

    #[test]
    fn refuses_what_does_not_decode_or_does_not_match() {
        let why = |l: &str| key_problem(l).unwrap_or_default();
        assert_eq!(
            why("not-a-key"),
            "not an OpenSSH public key: expected 'TYPE BASE64 [COMMENT]'"
        );
        assert_eq!(
            why("ssh-ed25519 AAAA!!!!"),
            "the key data is not valid base64"
        );
        assert!(why("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")
            .starts_with("the key data is not an SSH public key"));
        let swapped = ED25519.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert_eq!(
            why(&swapped),
            "the key data is of type 'ssh-ed25519', but the line says 'ssh-rsa'"
        );
        assert_eq!(
            why("ssh-ed2551 AAAA"),
            "unknown key type 'ssh-ed2551' (did you mean 'ssh-ed25519'?)"
        );
        assert!(why("ssh-dss AAAA").starts_with("a DSA (ssh-dss) key"));
        assert!(why("ssh-ed25519-cert-v01@openssh.com AAAA").contains("certificate"));
        assert!(why("a\nb").starts_with("holds more than one line"));
    }

    #[test]
    fn refuses_short_rsa_keys() {
        // A well-formed RSA key with a 512-bit modulus.
        let mut blob = Vec::new();
        for part in [&b"ssh-rsa"[..], &[1, 0, 1][..], &[0x80; 64][..]] {
            let part: Vec<u8> = if part.first().is_some_and(|b| b & 0x80 != 0) {
                std::iter::once(0).chain(part.iter().copied()).collect()
            } else {
                part.to_vec()
            };
            blob.extend((part.len() as u32).to_be_bytes());
            blob.extend(part);
        }
        let line = format!("ssh-rsa {}", base64ct::Base64::encode_string(&blob));
        assert_eq!(
            key_problem(&line).unwrap_or_default(),
            "a 512-bit RSA key; OpenSSH refuses RSA keys under 1024 bits"
        );
    }
}
