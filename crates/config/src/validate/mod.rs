//! Stage 2: check the raw tree completely and build [`Desired`].
//!
//! Every rule runs even after an earlier one failed, so one pass reports all
//! errors. A value inherited from `defaults:` is reported at its line in
//! `defaults:`.

mod connection;
mod cpu;
mod duplicates;
mod fields;
mod hardware;
mod image_url;
mod lifecycle;
#[cfg(test)]
mod lifecycle_tests;
mod network;
mod primitives;
mod screen;
mod source;
mod ssh_keys;
pub mod user_data;
mod vm;

pub use primitives::is_storage_id;

use crate::error::{ConfigError, ConfigReport, ErrorKind, Span};
use crate::keys;
use crate::limits;
use crate::raw::{parse_yaml, Key, Node, Value};
use crate::span::SpanMap;
use crate::spec::Desired;
use std::collections::HashMap;

/// Reads a file named in the configuration (`ssh_keys_file`), relative to the
/// configuration file. Returns the text or a reason. The reader should stop
/// at [`limits::MAX_KEYS_FILE_BYTES`] and say so; a longer text is refused
/// here too.
pub type FileLoader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses and validates a configuration file.
///
/// `path` is only used in messages; `load` reads `ssh_keys_file`s. A text
/// over [`limits::MAX_CONFIG_BYTES`] is refused unread.
pub fn parse(path: &str, text: &str, load: FileLoader<'_>) -> Result<Desired, ConfigReport> {
    let mut cx = Cx {
        errors: Vec::new(),
        load,
        text,
    };
    let mut secrets = Vec::new();
    let desired = if text.len() > limits::MAX_CONFIG_BYTES {
        cx.errors.push(
            ConfigError::at(
                ErrorKind::Range,
                None,
                format!(
                    "the file is {}",
                    limits::too_large(limits::MAX_CONFIG_BYTES, "a configuration file")
                ),
            )
            .help("a fleet file is a few kilobytes; check that this is the right file"),
        );
        None
    } else {
        match parse_yaml(text) {
            Ok(mut root) => {
                cx.screen("the file", &mut root, &mut secrets);
                cx.root(&root)
            }
            Err(e) => {
                cx.errors.push(e);
                None
            }
        }
    };
    match desired {
        Some(d) if cx.errors.is_empty() => Ok(d),
        _ => {
            cx.errors
                .sort_by_key(|e| e.span.map(|s| (s.line, s.col)).unwrap_or((0, 0)));
            // A value of `defaults:` is decoded for each VM: its error is
            // said once.
            let mut seen = std::collections::HashSet::new();
            cx.errors
                .retain(|e| seen.insert((e.span.map(|s| (s.offset, s.len)), e.message.clone())));
            let text = if text.len() > limits::MAX_CONFIG_BYTES {
                String::new()
            } else {
                redacted(text, &secrets)
            };
            Err(ConfigReport {
                path: path.to_string(),
                text,
                errors: cx.errors,
            })
        }
    }
}

/// `text` as a report shows it when the caller adds errors of its own
/// after [`parse`] (the cloud-init check): every `password` starred out.
pub fn shown_text(text: &str) -> String {
    let mut cx = Cx {
        errors: Vec::new(),
        load: &|_| Err(String::new()),
        text,
    };
    let mut secrets = Vec::new();
    if let Ok(mut root) = parse_yaml(text) {
        cx.screen("the file", &mut root, &mut secrets);
    }
    redacted(text, &secrets)
}

/// `text` with every byte of each span but line breaks replaced by `*`: the
/// report shows snippets of the file, and must not show a password. Offsets
/// and lines stay as they were.
fn redacted(text: &str, secrets: &[Span]) -> String {
    if secrets.is_empty() {
        return text.to_string();
    }
    let mut bytes = text.as_bytes().to_vec();
    for s in secrets {
        let end = s.offset.saturating_add(s.len).min(bytes.len());
        for b in bytes.get_mut(s.offset..end).unwrap_or_default() {
            if *b != b'\n' {
                *b = b'*';
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The validation pass: the errors found so far and the file loader.
struct Cx<'l> {
    errors: Vec<ConfigError>,
    load: FileLoader<'l>,
    /// The file's text, for what a value's span holds as written.
    text: &'l str,
}

/// A mapping's entries by key name.
type Fields<'a> = HashMap<&'a str, (&'a Key, &'a Node)>;

impl Cx<'_> {
    /// The whole file.
    fn root(&mut self, root: &Node) -> Option<Desired> {
        let entries = self.map("the file", root)?;
        let top = self.fields(entries, keys::TOP, "the top level");
        let (nodes, cluster) = match (top.get("proxmox"), top.get("nodes")) {
            (Some((_, p)), None) => (self.proxmox(p), false),
            (None, Some((_, n))) => (self.cluster(n), true),
            (Some(_), Some((k, _))) => {
                self.err(
                    ErrorKind::Conflict,
                    k.span,
                    "both 'proxmox' and 'nodes' are set",
                    "use 'proxmox:' for one host or 'nodes:' for a cluster, not both",
                );
                (None, false)
            }
            (None, None) => {
                self.err(
                    ErrorKind::Missing,
                    root.span,
                    "no connection: neither 'proxmox' nor 'nodes' is set",
                    "add 'proxmox: {host: pve.example.com}' (or 'host: local' on the node itself)",
                );
                (None, false)
            }
        };
        let nodes = nodes.unwrap_or_default();
        let defaults = self.defaults(top.get("defaults").map(|(_, d)| *d));
        let names = vm::NodeNames::new(&nodes);
        let mut vms = Vec::new();
        let mut spans = SpanMap::default();
        match top.get("vms") {
            Some((_, list)) => match &list.value {
                Value::Seq(items) => {
                    for item in items {
                        if let Some((vm, keys)) = self.vm(item, &defaults, &names, cluster) {
                            vms.push(vm);
                            spans.push(item.span, keys);
                        }
                    }
                }
                Value::Null => {}
                _ => self.type_err("vms", list, "a list of VMs"),
            },
            None => self.err(
                ErrorKind::Missing,
                root.span,
                "no 'vms' list",
                "add 'vms:' with one entry per VM (see examples/vm_config.example.yml)",
            ),
        }
        self.duplicates(&vms, &spans);
        Some(Desired {
            nodes,
            cluster,
            vms,
            spans,
        })
    }

    /// `defaults:`: the VM keys every VM inherits. Keys that must differ
    /// between VMs are refused; unknown keys are reported and dropped.
    fn defaults(&mut self, node: Option<&Node>) -> Vec<(Key, Node)> {
        let Some(d) = node else {
            return Vec::new();
        };
        let Some(entries) = self.map("defaults", d) else {
            return Vec::new();
        };
        let f = self.fields(entries, keys::VM, "defaults");
        for only in keys::VM_ONLY {
            if let Some((k, _)) = f.get(only) {
                self.err(
                    ErrorKind::Misplaced,
                    k.span,
                    format!("'{only}' cannot be set in defaults"),
                    format!("set '{only}' on each VM; it must differ between VMs"),
                );
            }
        }
        entries
            .iter()
            .filter(|(k, _)| {
                keys::VM.contains(&k.name.as_str()) && !keys::VM_ONLY.contains(&k.name.as_str())
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
