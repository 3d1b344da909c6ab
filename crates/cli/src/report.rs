//! What a run shows while it goes, for programs: with `--output json`, one
//! JSON object per runner event on stderr (docs/json.md); stdout keeps the
//! one summary object. For people, see [`crate::progress`].

use pvefleet_exec::{Event, Reporter};
use serde_json::json;
use std::io::Write;

/// One JSON object per event on stderr.
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
