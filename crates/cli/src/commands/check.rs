//! `check`: validate the file offline.

use crate::ExitStatus;

/// Validates `file`; nothing is contacted.
pub fn run(file: &str) -> ExitStatus {
    match super::load(file) {
        Ok(d) => {
            println!(
                "{file}: ok ({} VM(s), {} node(s))",
                d.vms.len(),
                d.nodes.len()
            );
            ExitStatus::Ok
        }
        Err(s) => s,
    }
}
