//! `destroy`: shut down and destroy the managed VMs of the file, planned
//! and run like apply (same checks, same reporting).

use super::Session;
use crate::args::Target;
use crate::output;
use crate::ExitStatus;
use pvefleet_exec::{runner, ApplyOptions, Event, Reporter, VmOutcome, VmResult};
use pvefleet_plan::{destroy_plan, DestroyInput, VmPlan};
use std::collections::BTreeSet;
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
    let s = match Session::open(file, target, 8).await {
        Ok(s) => s,
        Err(status) => return status,
    };
    let plan = destroy_plan(DestroyInput {
        desired: &s.desired,
        observed: &s.observed,
        only,
        include_cache,
    });
    eprint!("{}", output::destroy_human(&plan));
    let mut status = if plan.has_problems() {
        ExitStatus::Failed
    } else {
        ExitStatus::Ok
    };
    if plan.is_empty() {
        s.close().await;
        return status;
    }
    if !yes {
        match super::confirm("destroy these VMs and their disks?", "destroy anything").await {
            Ok(true) => {}
            Ok(false) => {
                s.close().await;
                return ExitStatus::Ok;
            }
            Err(e) => {
                s.close().await;
                return e;
            }
        }
    }
    // Cache templates last: their linked clones must be gone first.
    for batch in [plan.vms, plan.caches] {
        if !destroy_batch(&s, batch).await {
            status = ExitStatus::Failed;
        }
    }
    s.close().await;
    status
}

/// Runs one batch of destroy plans side by side. False when any failed.
async fn destroy_batch(s: &Session, vms: Vec<VmPlan>) -> bool {
    let todo: Vec<VmPlan> = vms.into_iter().filter(|v| !v.steps.is_empty()).collect();
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
    // Each VM's end is printed from its result; only notes go on the way.
    let reporter: Arc<dyn Reporter> = Arc::new(|e: Event| {
        if let Event::Note { name, message } = e {
            eprintln!("{name}: {message}");
        }
    });
    let results = runner::apply(plan, &s.transports(), BTreeSet::new(), opts, reporter).await;
    results.iter().all(report_destroyed)
}

/// Prints how one VM's destroy ended; true when it is gone.
fn report_destroyed(r: &VmResult) -> bool {
    let id = r.vmid.map(|v| v.to_string()).unwrap_or_default();
    match (r.result, &r.error) {
        (VmOutcome::Ok, _) => {
            println!("{}: destroyed (vmid {id})", r.name);
            true
        }
        (_, Some(e)) => {
            eprintln!("{}: destroy failed: {e}", r.name);
            false
        }
        (_, None) => false,
    }
}
