//! `apply`: make the nodes match the file.

use super::Session;
use crate::args::{Output, RunArgs, Target};
use crate::output;
use crate::report::{HumanReporter, JsonReporter};
use crate::ExitStatus;
use pvefleet_exec::{runner, ApplyOptions, Reporter, VmOutcome};
use pvefleet_plan::{plan, PlanInput};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Plans, asks (unless `yes`), runs, and prints the summary.
pub async fn run(
    file: &str,
    target: &Target,
    yes: bool,
    only: &[String],
    args: &RunArgs,
    format: Output,
) -> ExitStatus {
    let s = match Session::open(file, target, args.parallel).await {
        Ok(s) => s,
        Err(status) => return status,
    };
    let p = plan(PlanInput {
        desired: &s.desired,
        observed: &s.observed,
        reboot: args.reboot,
        only,
    });
    eprint!("{}", output::plan_human(&p));
    let changes = !p.is_converged();
    let problems = p.has_problems();
    if changes && !yes {
        match super::confirm("apply these changes?", "change anything").await {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("nothing was changed");
                s.close().await;
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
    let reporter: Arc<dyn Reporter> = match format {
        Output::Json => Arc::new(JsonReporter),
        Output::Human => Arc::new(HumanReporter {
            verbose: std::env::var_os("PVEFLEET_VERBOSE").is_some(),
        }),
    };
    let opts = ApplyOptions {
        wait: !args.no_wait,
        wait_timeout: Duration::from_secs(args.wait_timeout),
        boot_window: Duration::from_secs(60.min(args.wait_timeout)),
        keep_failed: args.keep_failed,
        parallel: args.parallel,
        parallel_storage: args.parallel_storage,
        cancel: crate::interrupt::token(),
    };
    let results = runner::apply(p, &s.transports(), used, opts, reporter).await;
    s.close().await;
    // Round trips per node, observation included.
    let round_trips: BTreeMap<&str, u64> = s
        .handles
        .iter()
        .map(|h| (h.name.as_str(), h.transport.round_trips()))
        .collect();
    match format {
        Output::Json => println!(
            "{}",
            serde_json::json!({"changed": changes, "vms": results, "round_trips": round_trips})
        ),
        Output::Human => {
            if !changes && !problems {
                println!("no changes");
            }
            print!("{}", output::results_human(&results));
            let total: u64 = round_trips.values().sum();
            eprintln!("{total} round trip(s) to {} node(s)", round_trips.len());
        }
    }
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
