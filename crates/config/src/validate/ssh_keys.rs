//! A VM's public SSH keys: listed inline (`ssh_keys`) or read from a file
//! (`ssh_keys_file`) through the caller's loader.

use super::primitives::is_ssh_key;
use super::Cx;
use crate::error::ErrorKind;
use crate::raw::{Node, Value};

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
        for item in items {
            match &item.value {
                Value::Str(s) if is_ssh_key(s.trim()) => out.push(s.trim().to_string()),
                Value::Str(_) => {
                    self.err(
                        ErrorKind::Format,
                        item.span,
                        "ssh_keys: not an OpenSSH public key",
                        "paste the whole line of a .pub file: 'ssh-ed25519 AAAA... comment'",
                    );
                    ok = false;
                }
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
        let path = self.string("ssh_keys_file", n)?;
        let text = match (self.load)(&path) {
            Ok(text) => text,
            Err(why) => {
                self.err(
                    ErrorKind::File,
                    n.span,
                    format!("ssh_keys_file: cannot read '{path}': {why}"),
                    "give a readable file of public keys; relative paths start at the configuration file's folder",
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !is_ssh_key(line) {
                self.err(
                    ErrorKind::File,
                    n.span,
                    format!("ssh_keys_file: '{path}' holds a line that is not an SSH public key"),
                    "the file must contain OpenSSH public keys, one per line (e.g. ~/.ssh/id_ed25519.pub)",
                );
                return None;
            }
            out.push(line.to_string());
        }
        Some(out)
    }
}
