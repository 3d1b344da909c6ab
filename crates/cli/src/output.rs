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
            Action::Destroy => ("-", "destroy"),
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
        for w in &r.warnings {
            s.push_str(&format!("           warning: {w}\n"));
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

/// One VM of `status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatusRow {
    /// The VM id, when known.
    pub vmid: Option<pvefleet_model::VmId>,
    /// The name from the file.
    pub name: String,
    /// Its node.
    pub node: String,
    /// It exists.
    pub exists: bool,
    /// It carries pvefleet's tag.
    pub managed: bool,
    /// It runs.
    pub running: bool,
    /// The address its guest agent reports.
    pub ip: Option<String>,
    /// Keys that differ from the file (`state` when the power state does).
    pub drift: Vec<String>,
    /// Keys waiting for a reboot.
    pub reboot_pending: Vec<String>,
}

/// The `status` table.
pub fn status_human(rows: &[StatusRow]) -> String {
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut s = format!(
        "{:>9}  {:<20} {:<10} {:<7} {:<8} {:<8} {:<16} DRIFT\n",
        "VMID", "NAME", "NODE", "EXISTS", "MANAGED", "RUNNING", "IP"
    );
    for r in rows {
        let drift = if r.drift.is_empty() {
            "-".to_string()
        } else {
            r.drift.join(",")
        };
        s.push_str(&format!(
            "{:>9}  {:<20} {:<10} {:<7} {:<8} {:<8} {:<16} {}\n",
            r.vmid.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            r.name,
            r.node,
            yn(r.exists),
            yn(r.managed),
            yn(r.running),
            r.ip.as_deref().unwrap_or("-"),
            drift
        ));
    }
    s
}

/// The destroy plan for people.
pub fn destroy_human(plan: &pvefleet_plan::DestroyPlan) -> String {
    let mut s = String::new();
    for v in plan.vms.iter().chain(&plan.caches) {
        let id = v.vmid.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        match (&v.problem, v.action) {
            (Some(p), _) => s.push_str(&format!("{}: refusing to destroy: {p}\n", v.name)),
            (None, Action::Destroy) => s.push_str(&format!(
                "- {} (vmid {id}, node {}): destroy\n",
                v.name, v.node
            )),
            (None, _) => {
                for n in &v.notes {
                    s.push_str(&format!("{}: {n}\n", v.name));
                }
            }
        }
    }
    s
}
