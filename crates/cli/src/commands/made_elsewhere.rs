//! VMs another run is making.
//!
//! The plan may find a VM another run claimed moments ago, and the claim of
//! a name (see `pvefleet_exec::runner::claim`) may find that another run
//! made the VM meanwhile; this run then sends nothing for it.
//! That run may be alive and finishing it, or dead (its connection was lost
//! while the node went on with its claim), leaving a VM with only its
//! first step done. So this run waits until nobody changes those VMs (the
//! plan for them is the same in two reads [`POLL`] apart and none is being
//! made), then does what is still missing: the run converges either way.

use super::Session;
use crate::args::RunArgs;
use crate::progress::Progress;
use crate::report::JsonReporter;
use crate::ui;
use pvefleet_exec::{runner, ApplyOptions, Reporter, VmOutcome, VmResult};
use pvefleet_plan::update::BEING_MADE_SECS;
use pvefleet_plan::{plan, Plan, PlanInput, PlanNote, VmPlan};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time between two reads of the VMs another run made.
const POLL: Duration = Duration::from_secs(2);

/// How long another run may keep changing a VM before this one gives up on
/// it: a claimed VM counts as being made for [`BEING_MADE_SECS`].
const GIVE_UP: Duration = Duration::from_secs(BEING_MADE_SECS + 30);

/// The names of the VMs another run is making: those the plan found being
/// made, and those whose claim found them made, of the VMs this run left
/// alone.
pub(super) fn names(being_made: &[String], results: &[VmResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| {
            r.result == VmOutcome::Ok && (r.made_by_another || being_made.contains(&r.name))
        })
        .map(|r| r.name.clone())
        .collect()
}

/// The names of the VMs of `p` another run is making.
pub(super) fn being_made_in(p: &Plan) -> Vec<String> {
    p.vms
        .iter()
        .filter(|v| is_being_made(v))
        .map(|v| v.name.clone())
        .collect()
}

/// Waits until the VMs named `names` are left alone by whoever made them,
/// then does what their plan still asks, and puts the outcome in
/// `results`. Returns true when anything was sent.
pub(super) async fn finish(
    s: &mut Session,
    names: &[String],
    args: &RunArgs,
    opts: impl Fn() -> ApplyOptions,
    results: &mut [VmResult],
) -> bool {
    tracing::info!(
        "{}: made by another run meanwhile; waiting until it is done with them",
        names.join(", ")
    );
    let cancel = crate::interrupt::token();
    let deadline = Instant::now() + GIVE_UP;
    let mut last: Option<Vec<String>> = None;
    while Instant::now() < deadline {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => return false,
        }
        if let Err(e) = s.observe_again(args.parallel).await {
            set_failed(results, names, &format!("reading it again failed: {e}"));
            return false;
        }
        let p = plan(PlanInput {
            desired: &s.desired,
            observed: &s.observed,
            reboot: args.reboot,
            only: names,
            adopt: false,
            allow_data_loss: args.allow_data_loss,
        });
        if p.is_converged() && !p.has_problems() {
            return false;
        }
        if being_made(&p) {
            last = None;
            continue;
        }
        let now = signature(&p);
        if last.as_ref() != Some(&now) {
            last = Some(now);
            continue;
        }
        let used: BTreeSet<u32> = s.observed.all_vms().iter().map(|v| v.vmid.get()).collect();
        let progress = Arc::new(Progress::new(&p, !args.no_wait));
        let reporter: Arc<dyn Reporter> = if ui::ui().json {
            Arc::new(JsonReporter)
        } else {
            progress.clone()
        };
        let again = runner::apply(p, &s.transports(), used, opts(), reporter).await;
        progress.finish();
        for r in again {
            if let Some(slot) = results.iter_mut().find(|x| x.name == r.name) {
                *slot = r;
            }
        }
        return true;
    }
    set_failed(
        results,
        names,
        &format!(
            "another run made it and was still changing it after {} s; run apply again once it is done",
            GIVE_UP.as_secs()
        ),
    );
    false
}

/// True when a VM of the plan is being made by another run.
fn being_made(p: &Plan) -> bool {
    p.vms.iter().any(is_being_made)
}

fn is_being_made(v: &VmPlan) -> bool {
    v.notes
        .iter()
        .any(|n| matches!(n, PlanNote::BeingMade { .. }))
}

/// What the plan would send, VM by VM: equal in two reads when nobody
/// changed the VMs in between.
fn signature(p: &Plan) -> Vec<String> {
    p.vms
        .iter()
        .flat_map(|v| {
            std::iter::once(v.name.clone()).chain(v.steps.iter().map(|s| s.command.redacted()))
        })
        .collect()
}

fn set_failed(results: &mut [VmResult], names: &[String], why: &str) {
    for r in results.iter_mut().filter(|r| names.contains(&r.name)) {
        r.result = VmOutcome::Failed;
        r.error = Some(why.to_string());
    }
}
