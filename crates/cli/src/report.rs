//! What a run shows while it goes: the [`Reporter`]s fed by the runner's
//! events, for people and for programs.

use pvefleet_exec::{Event, Reporter};
use serde_json::json;
use std::io::Write;

/// Plain lines on stderr: notes and each VM's end; with `verbose`, every
/// command sent.
pub struct HumanReporter {
    /// Show each command sent.
    pub verbose: bool,
}

impl Reporter for HumanReporter {
    fn report(&self, event: Event) {
        let line = match event {
            Event::Note { name, message } => format!("{name}: {message}"),
            Event::Command { name, line } if self.verbose => format!("{name}: $ {line}"),
            Event::Finished { name, ok } => {
                format!("{name}: {}", if ok { "done" } else { "failed" })
            }
            _ => return,
        };
        // One write per line, so lines of concurrent VMs never tear.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// One JSON object per event on stderr (stdout keeps the one summary
/// object).
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn report(&self, event: Event) {
        let value = match event {
            Event::Started { name } => json!({"event": "started", "vm": name}),
            Event::Command { name, line } => {
                json!({"event": "command", "vm": name, "command": line})
            }
            Event::Note { name, message } => {
                json!({"event": "note", "vm": name, "message": message})
            }
            Event::Finished { name, ok } => json!({"event": "finished", "vm": name, "ok": ok}),
        };
        let _ = writeln!(std::io::stderr().lock(), "{value}");
    }
}
