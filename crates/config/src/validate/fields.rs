//! Decoders for single values (strings, integers, booleans, lists) and the
//! helpers that report what is wrong with them.
//!
//! Every decoder reports its own error and returns `None`, so callers only
//! need to remember that something failed.

use super::{Cx, Fields};
use crate::error::{ConfigError, ErrorKind, Span};
use crate::keys;
use crate::limits::{self, shown};
use crate::raw::{Key, Node, Value};
use std::collections::HashMap;

impl Cx<'_> {
    /// Records an error of `kind` at `span` with a hint.
    pub(super) fn err(
        &mut self,
        kind: ErrorKind,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.errors
            .push(ConfigError::at(kind, Some(span), message).help(help));
    }

    /// Records `KEY: expected EXPECTED, found KIND`, unless the value was
    /// already refused by the screen (it has its error).
    pub(super) fn type_err(&mut self, key: &str, node: &Node, expected: &str) {
        if matches!(node.value, Value::Refused) {
            return;
        }
        let msg = format!("{key}: expected {expected}, found {}", node.value.kind());
        let help = if matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_))
            && expected.contains("string")
        {
            "put the value in quotes to make it a string".to_string()
        } else {
            format!("write {key} as {expected}")
        };
        self.err(ErrorKind::Type, node.span, msg, help);
    }

    /// The entries of a mapping, or an error.
    pub(super) fn map<'a>(&mut self, key: &str, node: &'a Node) -> Option<&'a [(Key, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            _ => {
                self.type_err(key, node, "a mapping");
                None
            }
        }
    }

    /// Indexes `entries` by key, reporting unknown keys with a hint.
    pub(super) fn fields<'a>(
        &mut self,
        entries: &'a [(Key, Node)],
        known: &[&str],
        section: &str,
    ) -> Fields<'a> {
        let mut out = HashMap::new();
        for (k, v) in entries {
            if known.contains(&k.name.as_str()) {
                out.insert(k.name.as_str(), (k, v));
            } else {
                let mut msg = format!("unknown key {} in {section}", shown(&k.name));
                let help = match keys::suggest(&k.name, known) {
                    Some(s) => {
                        msg.push_str(&format!(" (did you mean '{s}'?)"));
                        format!("rename it to '{s}'")
                    }
                    None => format!("known keys: {}", known.join(", ")),
                };
                self.err(ErrorKind::UnknownKey, k.span, msg, help);
            }
        }
        out
    }

    /// Reports `KEY: 'VALUE' WHAT` at `span` unless `valid`; returns `valid`.
    pub(super) fn expect(
        &mut self,
        valid: bool,
        span: Span,
        key: &str,
        value: &str,
        what: &str,
        help: &str,
    ) -> bool {
        if !valid {
            self.err(
                ErrorKind::Format,
                span,
                format!("{key}: {} {what}", shown(value)),
                help,
            );
        }
        valid
    }

    /// A string that must satisfy `valid`, else `KEY: 'VALUE' WHAT`.
    pub(super) fn checked(
        &mut self,
        key: &str,
        n: &Node,
        valid: fn(&str) -> bool,
        what: &str,
        help: &str,
    ) -> Option<String> {
        self.string(key, n)
            .filter(|s| self.expect(valid(s), n.span, key, s, what, help))
    }

    /// A string scalar.
    pub(super) fn string(&mut self, key: &str, node: &Node) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_err(key, node, "a string");
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub(super) fn int(
        &mut self,
        key: &str,
        node: &Node,
        min: i64,
        max: i64,
        help: &str,
    ) -> Option<i64> {
        match &node.value {
            Value::Int(i) if (min..=max).contains(i) => Some(*i),
            Value::Int(i) => {
                let msg = format!("{key}: {i} is out of range (Proxmox accepts {min} to {max})");
                self.err(ErrorKind::Range, node.span, msg, help);
                None
            }
            _ => {
                self.type_err(key, node, "an integer");
                None
            }
        }
    }

    /// A boolean, also from `0`/`1` and `yes`/`no`/`on`/`off` in any case.
    pub(super) fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        let value = match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" => Some(true),
                "no" | "off" | "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if value.is_none() {
            self.type_err(key, node, "a boolean (true or false)");
        }
        value
    }

    /// A list of strings; a single string is split on `,`, `;` and spaces.
    /// All of it together must fit one value's bound, as it is sent joined.
    pub(super) fn str_list(&mut self, key: &str, node: &Node) -> Option<Vec<(String, Span)>> {
        let list: Vec<(String, Span)> = match &node.value {
            Value::Str(s) => s
                .split([',', ';', ' '])
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_string(), node.span))
                .collect(),
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push((s.clone(), item.span)),
                        _ => self.type_err(key, item, "a string"),
                    }
                }
                out
            }
            Value::Null => Vec::new(),
            _ => {
                self.type_err(key, node, "a list of strings");
                return None;
            }
        };
        let joined: usize = list.iter().map(|(s, _)| s.len() + 1).sum();
        let max = limits::max_value_len(key);
        if joined > max {
            self.err(
                ErrorKind::Range,
                node.span,
                format!(
                    "{key}: {} items of {joined} bytes together, over the limit of {max} bytes",
                    list.len()
                ),
                format!(
                    "the list is sent as one argument of one command line; keep '{key}' under {}",
                    limits::human_size(max)
                ),
            );
            return None;
        }
        Some(list)
    }
}
