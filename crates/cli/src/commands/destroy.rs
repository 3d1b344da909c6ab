//! `destroy`: shut down and destroy the managed VMs of the file, planned
//! and run like apply (same checks, same reporting).

use super::Session;
use crate::args::Target;
use crate::output;
use crate::progress::Progress;
use crate::report::JsonReporter;
use crate::ui::{self, Verbosity};
use crate::ExitStatus;
use pvefleet_exec::{runner, ApplyOptions, Reporter, VmOutcome, VmResult};
use pvefleet_plan::{destroy_plan, Action, DestroyInput, VmPlan};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Plans, asks (unless `yes`), destroys the VMs, then the cache templates.
pub async fn run(
    file: &str,
    target: &Target,
    yes: bool,
    only: &[String],
    include_cache: bool,
) -> ExitStatus {
    let s = match Session::open_for_destroy(file, target, 8, only).await {
        Ok(s) => s,
        Err(status) => return status,
    };
    let plan = destroy_plan(DestroyInput {
        desired: &s.desired,
        observed: &s.observed,
        only,
        include_cache,
    });
    let ui = ui::ui();
    let asks = !plan.is_empty() && !yes;
    if (!ui.json && ui.verbosity > Verbosity::Quiet) || (asks && std::io::stdin().is_terminal()) {
        ui::eprint_lines(&output::destroy_human(&plan));
    }
    let mut status = if plan.has_problems() {
        ExitStatus::Failed
    } else {
        ExitStatus::Ok
    };
    let mut report = Report::default();
    if asks {
        match super::confirm("destroy these VMs and their disks?", "destroy anything").await {
            Ok(true) => {}
            Ok(false) => {
                s.close().await;
                report.declined(&plan.vms, &plan.caches);
                report.print();
                return ExitStatus::Ok;
            }
            Err(e) => {
                s.close().await;
                return e;
            }
        }
    }
    // Cache templates last: their linked clones must be gone first.
    for (batch, cache) in [(plan.vms, false), (plan.caches, true)] {
        if !destroy_batch(&s, batch, cache, &mut report).await {
            status = ExitStatus::Failed;
        }
    }
    s.close().await;
    report.print();
    status
}

/// What `destroy --output json` prints: a row per VM and per cache template.
#[derive(Default)]
struct Report {
    vms: Vec<Value>,
    caches: Vec<Value>,
    changed: bool,
}

impl Report {
    fn push(&mut self, cache: bool, row: Value) {
        if cache {
            self.caches.push(row);
        } else {
            self.vms.push(row);
        }
    }

    /// A VM that was not run: refused, absent, or kept.
    fn unrun(&mut self, cache: bool, v: &VmPlan, declined: bool) {
        let (result, error, code) = match (&v.problem, v.action) {
            (Some(p), _) => ("refused", Some(p.to_string()), Some(p.code())),
            (None, Action::Destroy) if declined => ("kept", None, None),
            (None, Action::Destroy) => ("destroyed", None, None),
            (None, _) => ("absent", None, v.notes.first().map(|n| n.code())),
        };
        self.push(
            cache,
            json!({"name": v.name, "vmid": v.vmid, "node": v.node, "result": result, "error": error, "code": code}),
        );
    }

    fn declined(&mut self, vms: &[VmPlan], caches: &[VmPlan]) {
        for v in vms {
            self.unrun(false, v, true);
        }
        for v in caches {
            self.unrun(true, v, true);
        }
    }

    fn print(&self) {
        if ui::ui().json {
            ui::print_json(
                &json!({"changed": self.changed, "vms": self.vms, "caches": self.caches}),
            );
        }
    }
}

/// Runs one batch of destroy plans side by side. False when any failed.
async fn destroy_batch(s: &Session, vms: Vec<VmPlan>, cache: bool, report: &mut Report) -> bool {
    let (todo, rest): (Vec<VmPlan>, Vec<VmPlan>) =
        vms.into_iter().partition(|v| !v.steps.is_empty());
    for v in &rest {
        report.unrun(cache, v, false);
    }
    if todo.is_empty() {
        return true;
    }
    let opts = ApplyOptions {
        wait: false,
        wait_timeout: Duration::ZERO,
        boot_window: Duration::ZERO,
        keep_failed: true,
        parallel: 8,
        parallel_storage: 8,
        cancel: Default::default(),
    };
    let plan = pvefleet_plan::Plan {
        vms: todo,
        ..Default::default()
    };
    let progress = Arc::new(Progress::new(&plan, false));
    let reporter: Arc<dyn Reporter> = if ui::ui().json {
        Arc::new(JsonReporter)
    } else {
        progress.clone()
    };
    let results = runner::apply(plan, &s.transports(), BTreeSet::new(), opts, reporter).await;
    progress.finish();
    let mut all = true;
    for r in &results {
        all &= report_destroyed(r);
        report.changed |= r.result == VmOutcome::Ok;
        let (result, error) = match r.result {
            VmOutcome::Ok => ("destroyed", None),
            _ => ("failed", r.error.clone()),
        };
        report.push(
            cache,
            json!({"name": r.name, "vmid": r.vmid, "node": r.node, "result": result, "error": error, "code": null}),
        );
    }
    all
}

/// Prints how one VM's destroy ended (people only); true when it is gone.
fn report_destroyed(r: &VmResult) -> bool {
    let id = r.vmid.map(|v| v.to_string()).unwrap_or_default();
    let json = ui::ui().json;
    match (r.result, &r.error) {
        (VmOutcome::Ok, _) => {
            if !json {
                println!("{}: destroyed (vmid {id})", r.name);
            }
            true
        }
        (_, Some(e)) => {
            if !json {
                ui::eprint_lines(&format!("{}: destroy failed: {e}\n", r.name));
            }
            false
        }
        (_, None) => false,
    }
}
