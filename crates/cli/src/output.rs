//! Rendering plans and results for people and for JSON.

use pvefleet_exec::{VmOutcome, VmResult};
use pvefleet_plan::{Action, Plan, VmPlan};
use serde_json::json;

/// The commands of one VM, uploads first, as they would be sent (inputs
/// known only at run time shown as placeholders).
pub fn vm_commands(plan: &Plan, vp: &VmPlan) -> Vec<String> {
    let mut out: Vec<String> = vp
        .uploads
        .iter()
        .filter_map(|u| plan.uploads.get(*u))
        .map(|u| {
            let keys = u.content.lines().count();
            format!(
                "upload <upload-dir>/{} (mode 0600, {keys} ssh key(s))",
                u.file_name
            )
        })
        .collect();
    if let Some(p) = vp.prelude.and_then(|p| plan.preludes.get(p)) {
        out.extend(p.steps.iter().map(|s| s.display(&plan.uploads)));
    }
    out.extend(vp.steps.iter().map(|s| s.display(&plan.uploads)));
    out
}

/// The plan as JSON.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let vms: Vec<_> = plan
        .vms
        .iter()
        .map(|v| {
            let mut o = json!({"vmid": v.vmid, "name": v.name, "node": v.node, "action": v.action.name(), "commands": vm_commands(plan, v)});
            if let Some(p) = &v.problem {
                o["message"] = json!(p.to_string());
                o["code"] = json!(p.code());
            }
            if !v.notes.is_empty() {
                o["notes"] = v
                    .notes
                    .iter()
                    .map(|n| json!({"code": n.code(), "message": n.to_string()}))
                    .collect();
            }
            if !v.changes.is_empty() {
                o["changes"] = json!(v.changes);
            }
            if !v.reboot_pending.is_empty() {
                o["reboot_pending"] = json!(v.reboot_pending);
            }
            o
        })
        .collect();
    json!({"vms": vms})
}

/// The plan for people: `+ create`, `~ change`, `! conflict`.
pub fn plan_human(plan: &Plan) -> String {
    let mut s = String::new();
    for v in &plan.vms {
        let id = v.vmid.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        let (mark, what) = match v.action {
            Action::Create => ("+", "create"),
            Action::Update => ("~", "change"),
            Action::None => ("=", "unchanged"),
            Action::Conflict => ("!", "conflict"),
            Action::Error => ("!", "error"),
        };
        s.push_str(&format!(
            "{mark} {} (vmid {id}, node {}): {what}\n",
            v.name, v.node
        ));
        if let Some(p) = &v.problem {
            s.push_str(&format!("    {p}\n"));
        }
        for n in &v.notes {
            s.push_str(&format!("    {n}\n"));
        }
        for c in &v.changes {
            s.push_str(&format!(
                "    {}: {} -> {}\n",
                c.key,
                c.from.as_deref().unwrap_or("-"),
                c.to.as_deref().unwrap_or("-")
            ));
        }
        if !v.reboot_pending.is_empty() {
            s.push_str(&format!(
                "    takes effect after a reboot: {} (use --reboot)\n",
                v.reboot_pending.join(", ")
            ));
        }
        for c in vm_commands(plan, v) {
            s.push_str(&format!("    $ {c}\n"));
        }
    }
    if plan.is_converged() && !plan.has_problems() {
        s.push_str("no changes\n");
    }
    s
}

/// The summary table.
pub fn results_human(results: &[VmResult]) -> String {
    let mut s = format!(
        "{:>9}  {:<20} {:<10} {:<9} {:<8} {:<16} {:>7}\n",
        "VMID", "NAME", "NODE", "ACTION", "RESULT", "IP", "SECONDS"
    );
    for r in results {
        let id = r.vmid.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let result = match r.result {
            VmOutcome::Ok => "ok",
            VmOutcome::Failed => "FAILED",
            VmOutcome::Skipped => "skipped",
        };
        s.push_str(&format!(
            "{:>9}  {:<20} {:<10} {:<9} {:<8} {:<16} {:>7.1}\n",
            id,
            r.name,
            r.node,
            r.action.name(),
            result,
            r.ip.as_deref().unwrap_or("-"),
            r.seconds
        ));
        if let Some(e) = &r.error {
            let rolled = if r.rolled_back { " (rolled back)" } else { "" };
            s.push_str(&format!("           {e}{rolled}\n"));
        }
        if !r.reboot_pending.is_empty() {
            s.push_str(&format!(
                "           waits for a reboot: {} (apply --reboot)\n",
                r.reboot_pending.join(", ")
            ));
        }
    }
    s
}
