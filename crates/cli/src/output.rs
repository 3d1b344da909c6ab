//! Rendering plans and results for people and for JSON.

use pvefleet_exec::VmResult;
use pvefleet_plan::{Action, Plan};
use serde_json::json;

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::None => "none",
        Action::Conflict => "conflict",
        Action::Error => "error",
    }
}

/// The commands of one VM, uploads first, as they would be sent.
pub fn vm_commands(plan: &Plan, i: usize) -> Vec<String> {
    let vp = &plan.vms[i];
    let mut out: Vec<String> = vp
        .uploads
        .iter()
        .filter_map(|u| plan.uploads.get(*u))
        .map(|u| {
            let keys = u.content.lines().count();
            [
                "upload ",
                &u.path,
                " (mode 0600, ",
                &keys.to_string(),
                " ssh key(s))",
            ]
            .concat()
        })
        .collect();
    if let Some(p) = vp.prelude.and_then(|p| plan.preludes.get(p)) {
        out.extend(p.steps.iter().map(|s| s.command.redacted()));
    }
    out.extend(vp.steps.iter().map(|s| s.command.redacted()));
    out
}

/// The plan as JSON.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let vms: Vec<_> = plan
        .vms
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut o = json!({"vmid": v.vmid, "name": v.name, "node": v.node, "action": action_name(v.action), "commands": vm_commands(plan, i)});
            if let Some(m) = &v.message {
                o["message"] = json!(m);
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
    for (i, v) in plan.vms.iter().enumerate() {
        let id = v.vmid.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        let (mark, what) = match v.action {
            Action::Create => ("+", "create"),
            Action::Update => ("~", "change"),
            Action::None => ("=", "unchanged"),
            Action::Conflict => ("!", "conflict"),
            Action::Error => ("!", "error"),
        };
        s.push_str(
            &[
                mark, " ", &v.name, " (vmid ", &id, ", node ", &v.node, "): ", what, "\n",
            ]
            .concat(),
        );
        if let Some(m) = &v.message {
            s.push_str(&["    ", m, "\n"].concat());
        }
        for c in &v.changes {
            s.push_str(
                &[
                    "    ",
                    &c.key,
                    ": ",
                    c.from.as_deref().unwrap_or("-"),
                    " -> ",
                    c.to.as_deref().unwrap_or("-"),
                    "\n",
                ]
                .concat(),
            );
        }
        if !v.reboot_pending.is_empty() {
            s.push_str(
                &[
                    "    takes effect after a reboot: ",
                    &v.reboot_pending.join(", "),
                    " (use --reboot)\n",
                ]
                .concat(),
            );
        }
        for c in vm_commands(plan, i) {
            s.push_str(&["    $ ", &c, "\n"].concat());
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
            pvefleet_exec::VmOutcome::Ok => "ok",
            pvefleet_exec::VmOutcome::Failed => "FAILED",
            pvefleet_exec::VmOutcome::Skipped => "skipped",
        };
        s.push_str(&format!(
            "{:>9}  {:<20} {:<10} {:<9} {:<8} {:<16} {:>7.1}\n",
            id,
            r.name,
            r.node,
            action_name(r.action),
            result,
            r.ip.as_deref().unwrap_or("-"),
            r.seconds
        ));
        if let Some(e) = &r.error {
            s.push_str(
                &[
                    "           ",
                    e,
                    if r.rolled_back { " (rolled back)" } else { "" },
                    "\n",
                ]
                .concat(),
            );
        }
        if !r.reboot_pending.is_empty() {
            s.push_str(
                &[
                    "           waits for a reboot: ",
                    &r.reboot_pending.join(", "),
                    " (apply --reboot)\n",
                ]
                .concat(),
            );
        }
    }
    s
}
