//! `status`: each VM of the file as the nodes have it.

use super::Session;
use crate::args::Target;
use crate::output::{self, StatusRow};
use crate::ui;
use crate::ExitStatus;
use pvefleet_exec::runner;
use pvefleet_model::VmStatus;
use pvefleet_plan::{lookup::is_managed, plan, Action, PlanInput};
use serde_json::json;

/// Reads the nodes and prints one row per VM of the file. `Changes` when a
/// VM is not as the file says.
pub async fn run(file: &str, target: &Target) -> ExitStatus {
    let s = match Session::open(file, target, 8, &[]).await {
        Ok(s) => s,
        Err(status) => return status,
    };
    let rows = rows(&s).await;
    s.close().await;
    let ui = ui::ui();
    let differs = rows.iter().any(StatusRow::differs);
    if ui.json {
        ui::print_json(&json!({ "vms": rows, "in_sync": !differs }));
    } else {
        print!("{}", output::status_human(&rows, ui.color_out));
    }
    // Conflicts and duplicates are problems here as in plan and apply.
    let mut problems = false;
    for r in &rows {
        if let Some(p) = &r.problem {
            problems = true;
            if !ui.json {
                eprintln!("{}: {}", r.name, p["message"].as_str().unwrap_or_default());
            }
        }
    }
    if problems {
        ExitStatus::Failed
    } else if differs {
        ExitStatus::Changes
    } else {
        ExitStatus::Ok
    }
}

/// One row per VM of the file.
pub(super) async fn rows(s: &Session) -> Vec<StatusRow> {
    let p = plan(PlanInput {
        desired: &s.desired,
        observed: &s.observed,
        reboot: false,
        only: &[],
        adopt: false,
        allow_data_loss: false,
    });
    let mut rows = Vec::new();
    for v in &p.vms {
        let existing = v
            .vmid
            .and_then(|id| s.observed.vm(id))
            .filter(|_| v.action != Action::Create);
        let managed = existing.is_some_and(is_managed);
        let running = existing.is_some_and(|e| e.status.as_ref().is_some_and(VmStatus::is_up));
        let mut ip = None;
        if running && managed {
            if let (Some(h), Some(id)) = (s.handles.iter().find(|h| h.name == v.node), v.vmid) {
                ip = runner::probe_ip(h.transport.as_ref(), id)
                    .await
                    .ok()
                    .flatten();
            }
        }
        let mut drift: Vec<String> = v.changes.iter().map(|c| c.key.clone()).collect();
        if managed && v.running != running {
            drift.push("state".into());
        }
        rows.push(StatusRow {
            vmid: v.vmid,
            name: v.name.clone(),
            node: v.node.clone(),
            exists: existing.is_some(),
            managed,
            running,
            ip,
            drift,
            reboot_pending: v.reboot_pending.clone(),
            problem: v
                .problem
                .as_ref()
                .map(|p| json!({"code": p.code(), "message": p.to_string()})),
        });
    }
    rows
}
