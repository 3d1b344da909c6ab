//! `apply`: make the nodes match the file.

use super::{made_elsewhere, Session};
use crate::args::{RunArgs, Target};
use crate::output;
use crate::progress::Progress;
use crate::report::JsonReporter;
use crate::ui::{self, Verbosity};
use crate::ExitStatus;
use pvefleet_exec::{runner, ApplyOptions, Reporter, VmOutcome};
use pvefleet_plan::{plan, PlanInput};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Plans, asks (unless `yes`), runs, and prints the summary.
pub async fn run(
    file: &str,
    target: &Target,
    yes: bool,
    only: &[String],
    args: &RunArgs,
    adopt: bool,
) -> ExitStatus {
    // cloud-init's verdict on the user_data comes before any node is
    // contacted (`vet`).
    let mut s = match Session::open_with(file, target, args.parallel, only, adopt, true).await {
        Ok(s) => s,
        Err(status) => return status,
    };
    let p = plan(PlanInput {
        desired: &s.desired,
        observed: &s.observed,
        reboot: args.reboot,
        only,
        adopt,
        allow_data_loss: args.allow_data_loss,
    });
    let ui = ui::ui();
    let changes = p.has_changes();
    let problems = p.has_problems();
    let asks = changes && !yes;
    // The plan goes to stderr for people; a question needs it whatever -q
    // and --output say.
    let shown =
        (!ui.json && ui.verbosity > Verbosity::Quiet) || (asks && std::io::stdin().is_terminal());
    if shown {
        ui::eprint_lines(&output::plan_human(&p, false, ui.color_err));
    }
    if asks {
        match super::confirm("apply these changes?", "change anything").await {
            Ok(true) => {}
            Ok(false) => {
                s.close().await;
                if ui.json {
                    ui::print_json(
                        &json!({"changed": false, "declined": true, "vms": [], "round_trips": {}}),
                    );
                } else {
                    eprintln!("nothing was changed");
                }
                return ExitStatus::Ok;
            }
            Err(status) => {
                s.close().await;
                return status;
            }
        }
    }
    let used: BTreeSet<u32> = s
        .observed
        .all_vms()
        .iter()
        .map(|v| v.vmid.get())
        .chain(p.vms.iter().filter_map(|v| v.vmid.map(|x| x.get())))
        .chain(p.preludes.iter().map(|x| x.vmid.get()))
        .collect();
    let opts = || ApplyOptions {
        wait: !args.no_wait,
        wait_timeout: Duration::from_secs(args.wait_timeout),
        boot_window: Duration::from_secs(args.agent_grace.min(args.wait_timeout)),
        keep_failed: args.keep_failed,
        parallel: args.parallel,
        parallel_storage: args.parallel_storage,
        cancel: crate::interrupt::token(),
    };
    let progress = Arc::new(Progress::new(&p, !args.no_wait));
    let reporter: Arc<dyn Reporter> = if ui.json {
        Arc::new(JsonReporter)
    } else {
        progress.clone()
    };
    let being_made = made_elsewhere::being_made_in(&p);
    let mut results = runner::apply(p, &s.transports(), used, opts(), reporter).await;
    progress.finish();
    let elsewhere = made_elsewhere::names(&being_made, &results);
    if !elsewhere.is_empty() && !crate::interrupt::interrupted() {
        made_elsewhere::finish(&mut s, &elsewhere, args, opts, &mut results).await;
    }
    s.close().await;
    // Round trips per node, observation included.
    let round_trips: BTreeMap<&str, u64> = s
        .handles
        .iter()
        .map(|h| (h.name.as_str(), h.transport.round_trips()))
        .collect();
    if ui.json {
        ui::print_json(&json!({"changed": changes, "vms": results, "round_trips": round_trips}));
    } else {
        if !changes && !problems {
            println!("no changes");
        }
        print!("{}", output::results_human(&results, ui.color_out));
        let total: u64 = round_trips.values().sum();
        tracing::info!(
            "{} to {}",
            ui::count(total as usize, "round trip", "round trips"),
            ui::count(round_trips.len(), "node", "nodes")
        );
    }
    exit_status(&results)
}

/// Exit 130 after a signal (saying which VMs did not finish), else 0 when
/// every VM is ok, else 1.
fn exit_status(results: &[pvefleet_exec::VmResult]) -> ExitStatus {
    if crate::interrupt::interrupted() {
        let left: Vec<&str> = results
            .iter()
            .filter(|r| r.result != VmOutcome::Ok)
            .map(|r| r.name.as_str())
            .collect();
        if left.is_empty() {
            eprintln!("interrupted: every VM had finished its steps");
        } else {
            eprintln!(
                "interrupted: {} VM(s) not finished ({}); the summary says what was rolled back",
                left.len(),
                left.join(", ")
            );
        }
        return ExitStatus::Interrupted;
    }
    if results.iter().all(|r| r.result == VmOutcome::Ok) {
        ExitStatus::Ok
    } else {
        ExitStatus::Failed
    }
}
