//! The first rule, over the whole tree before any key is read: every text
//! value must be one that a command line can carry. A NUL byte ends a C
//! string, so no argv word holds one; a value over its length bound would
//! not fit on the line (see [`crate::limits`]). Such a value is reported
//! once, here, and replaced by [`Value::Refused`] so that no decoder
//! reports it again.
//!
//! The pass also notes where each `password` value stands, so that the
//! report can show the file without it.

use super::Cx;
use crate::error::{ErrorKind, Span};
use crate::limits::{self, shown};
use crate::raw::{Node, Value};

/// The key whose value is never quoted or shown.
const SECRET: &str = "password";

impl Cx<'_> {
    /// Screens `node`, the value of `key`, and everything below it.
    ///
    /// Keys inside `user_data` are named `user_data.KEY`: the data travels
    /// as a file, so the snippet's bound applies, not a command line's, and
    /// a `password` there is hidden too.
    pub(super) fn screen(&mut self, key: &str, node: &mut Node, secrets: &mut Vec<Span>) {
        if key == SECRET || key.ends_with(".password") {
            secrets.push(node.span);
        }
        match &mut node.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let name = if key == "user_data" || key.starts_with("user_data.") {
                        format!("user_data.{}", k.name)
                    } else {
                        k.name.clone()
                    };
                    self.screen(&name, v, secrets);
                }
            }
            Value::Seq(items) => {
                for item in items {
                    self.screen(key, item, secrets);
                }
            }
            Value::Str(s) => {
                if let Some((kind, message, help)) = refusal(key, s) {
                    self.err(kind, node.span, message, help);
                    node.value = Value::Refused;
                }
            }
            _ => {}
        }
    }
}

/// Why the text `value` of `key` cannot be sent, if it cannot.
fn refusal(key: &str, value: &str) -> Option<(ErrorKind, String, String)> {
    let secret = key == SECRET || key.ends_with(".password");
    if value.contains('\0') {
        let message = if secret {
            format!("{key}: contains a NUL byte, which no command line can carry")
        } else {
            format!(
                "{key}: {} contains a NUL byte, which no command line can carry",
                shown(value)
            )
        };
        return Some((
            ErrorKind::Format,
            message,
            "remove the \\0 (or \\x00, \\u0000) escape from the quoted string".to_string(),
        ));
    }
    let max = limits::max_value_len(key);
    if value.len() > max {
        let message = if secret {
            format!("{key}: {} bytes long, over the limit of {max}", value.len())
        } else {
            format!(
                "{key}: {} is longer than the limit of {max} bytes",
                shown(value)
            )
        };
        let help = match key {
            "description" => "Proxmox keeps at most 8192 characters of description; shorten it".to_string(),
            _ => format!(
                "each value is passed as one argument of one command line on the host (Linux allows 128 KiB per argument); keep '{key}' under {}",
                limits::human_size(max)
            ),
        };
        return Some((ErrorKind::Range, message, help));
    }
    None
}
