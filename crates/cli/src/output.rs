//! Rendering plans and results for people and for JSON.

use crate::table::{Align, Cell, Table};
use crate::ui::Style;
use pvefleet_exec::{VmOutcome, VmResult};
use pvefleet_plan::{Action, Plan, VmPlan};
use serde_json::json;

/// The commands of one VM, uploads first, as they would be sent (inputs
/// known only at run time shown as placeholders).
pub fn vm_commands(plan: &Plan, vp: &VmPlan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in vp.uploads.iter().filter_map(|u| plan.uploads.get(*u)) {
        match &u.install_to {
            None => {
                let keys = u.content.lines().count();
                out.push(format!(
                    "upload <upload-dir>/{} (mode 0600, {keys} ssh key(s))",
                    u.file_name
                ));
            }
            Some(dest) => {
                out.push(format!(
                    "upload <upload-dir>/{} (cloud-init snippet, {} bytes)",
                    u.file_name,
                    u.content.len()
                ));
                let install = pvefleet_model::Command::InstallFile {
                    src: format!("<upload-dir>/{}", u.file_name),
                    dest: dest.clone(),
                };
                out.push(install.redacted());
            }
        }
    }
    // An image by URL: downloaded once for all the VMs that need it.
    if let Some(d) = vp.download.and_then(|d| plan.downloads.get(d)) {
        out.push(pvefleet_model::Command::DownloadUrl(d.command.clone()).redacted());
    }
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
    let mut out = json!({"vms": vms});
    if !plan.downloads.is_empty() {
        out["downloads"] = plan
            .downloads
            .iter()
            .map(|d| json!({"node": d.node, "volid": d.volid, "url": d.command.url, "shared": d.shared}))
            .collect();
    }
    if !plan.leftovers.is_empty() {
        out["leftovers"] = plan
            .leftovers
            .iter()
            .map(
                |l| json!({"vmid": l.vmid, "node": l.node, "lock": l.lock, "removal": l.removal()}),
            )
            .collect();
    }
    out
}

/// The mark, the word and the colour of an action.
fn action_mark(a: Action) -> (&'static str, &'static str, Style) {
    match a {
        Action::Create => ("+", "create", Style::Good),
        Action::Update => ("~", "change", Style::Warn),
        Action::None => ("=", "unchanged", Style::Dim),
        Action::Conflict => ("!", "conflict", Style::Error),
        Action::Error => ("!", "error", Style::Error),
        Action::Destroy => ("-", "destroy", Style::Error),
        Action::Adopt => ("*", "adopt", Style::Warn),
    }
}

/// The plan for people: a row per VM (`+ create`, `~ change`, `* adopt`,
/// `= unchanged`, `! conflict`) in columns sized to their content, each with its problem,
/// notes, changes and exact commands under it. `no changes` closes a plan
/// that changes nothing when `say_converged`.
pub fn plan_human(plan: &Plan, say_converged: bool, color: bool) -> String {
    let mut t = Table::new(&[
        ("", Align::Left),
        ("NAME", Align::Left),
        ("VMID", Align::Right),
        ("NODE", Align::Left),
        ("ACTION", Align::Left),
    ]);
    for v in &plan.vms {
        let id = v.vmid.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
        let (mark, what, style) = action_mark(v.action);
        t.row(vec![
            Cell::styled(mark, style),
            v.name.as_str().into(),
            id.into(),
            v.node.as_str().into(),
            Cell::styled(what, style),
        ]);
        if let Some(p) = &v.problem {
            t.note(p.to_string());
        }
        for n in &v.notes {
            t.note(n.to_string());
        }
        for c in &v.changes {
            t.note(format!(
                "{}: {} -> {}",
                c.key,
                c.from.as_deref().unwrap_or("-"),
                c.to.as_deref().unwrap_or("-")
            ));
        }
        if !v.reboot_pending.is_empty() {
            t.note(format!(
                "takes effect after a reboot: {} (use --reboot)",
                v.reboot_pending.join(", ")
            ));
        }
        for c in vm_commands(plan, v) {
            t.note(format!("$ {c}"));
        }
    }
    let mut s = if t.is_empty() {
        String::new()
    } else {
        t.render(color)
    };
    for l in &plan.leftovers {
        s.push_str(&format!(
            "warning: VM {} on node {} looks like an interrupted {} that this file does not name; it is left alone (if nothing runs there any more: {})\n",
            l.vmid,
            l.node,
            l.lock,
            l.removal()
        ));
    }
    if say_converged && plan.is_converged() && !plan.has_problems() {
        s.push_str("no changes\n");
    }
    s
}

/// The summary table.
pub fn results_human(results: &[VmResult], color: bool) -> String {
    let mut t = Table::new(&[
        ("VMID", Align::Right),
        ("NAME", Align::Left),
        ("NODE", Align::Left),
        ("ACTION", Align::Left),
        ("RESULT", Align::Left),
        ("IP", Align::Left),
        ("SECONDS", Align::Right),
    ]);
    for r in results {
        let id = r.vmid.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let result = match r.result {
            VmOutcome::Ok => Cell::styled("ok", Style::Good),
            VmOutcome::Failed => Cell::styled("FAILED", Style::Error),
            VmOutcome::Skipped => Cell::styled("skipped", Style::Warn),
        };
        t.row(vec![
            id.into(),
            r.name.as_str().into(),
            r.node.as_str().into(),
            r.action.name().into(),
            result,
            r.ip.as_deref().unwrap_or("-").into(),
            format!("{:.1}", r.seconds).into(),
        ]);
        if let Some(e) = &r.error {
            let rolled = if r.rolled_back { " (rolled back)" } else { "" };
            t.note(format!("{e}{rolled}"));
        }
        for w in &r.warnings {
            t.note(format!("warning: {w}"));
        }
        if !r.reboot_pending.is_empty() {
            t.note(format!(
                "waits for a reboot: {} (apply --reboot)",
                r.reboot_pending.join(", ")
            ));
        }
    }
    t.render(color)
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
    /// Why the VM is in conflict or cannot be planned (a duplicate name, a
    /// VM pvefleet does not manage...), with its stable code.
    pub problem: Option<serde_json::Value>,
}

impl StatusRow {
    /// True when the VM is not as the file says: absent, not managed,
    /// drifted settings or power state.
    pub fn differs(&self) -> bool {
        !self.exists || !self.managed || !self.drift.is_empty()
    }
}

/// The `status` table: drift and changes waiting for a reboot included.
pub fn status_human(rows: &[StatusRow], color: bool) -> String {
    let yn = |b: bool, bad: Style| {
        if b {
            Cell::from("yes")
        } else {
            Cell::styled("no", bad)
        }
    };
    let list = |l: &[String]| {
        if l.is_empty() {
            Cell::from("-")
        } else {
            Cell::styled(l.join(","), Style::Warn)
        }
    };
    let mut t = Table::new(&[
        ("VMID", Align::Right),
        ("NAME", Align::Left),
        ("NODE", Align::Left),
        ("EXISTS", Align::Left),
        ("MANAGED", Align::Left),
        ("RUNNING", Align::Left),
        ("IP", Align::Left),
        ("DRIFT", Align::Left),
        ("REBOOT", Align::Left),
    ]);
    for r in rows {
        t.row(vec![
            r.vmid
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into())
                .into(),
            r.name.as_str().into(),
            r.node.as_str().into(),
            yn(r.exists, Style::Warn),
            if r.exists {
                yn(r.managed, Style::Error)
            } else {
                Cell::from("-")
            },
            if r.exists {
                yn(r.running, Style::Dim)
            } else {
                Cell::from("-")
            },
            r.ip.as_deref().unwrap_or("-").into(),
            list(&r.drift),
            list(&r.reboot_pending),
        ]);
    }
    t.render(color)
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
