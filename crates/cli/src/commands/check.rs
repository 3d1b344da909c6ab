//! `check`: validate the file offline.

use crate::ui;
use crate::ExitStatus;
use serde_json::json;

/// Validates `file`; nothing is contacted.
pub fn run(file: &str) -> ExitStatus {
    match super::load_file(file) {
        Ok(d) => {
            if let Err(s) = crate::cloud_init::check(file, &d) {
                return s;
            }
            if ui::ui().json {
                ui::print_json(&json!({
                    "file": file,
                    "ok": true,
                    "vms": d.vms.len(),
                    "nodes": d.nodes.len(),
                }));
            } else {
                println!(
                    "{file}: ok ({}, {})",
                    ui::count(d.vms.len(), "VM", "VMs"),
                    ui::count(d.nodes.len(), "node", "nodes")
                );
            }
            ExitStatus::Ok
        }
        Err(s) => s,
    }
}
