//! `plan`: what apply would do.

use crate::args::{Output, Target};
use crate::output;
use crate::ExitStatus;
use pvefleet_plan::{plan, Observed, PlanInput};

/// Reads the nodes (or a saved host state) and prints the plan.
pub async fn run(
    file: &str,
    target: &Target,
    host_state: Option<String>,
    format: Output,
    only: &[String],
) -> ExitStatus {
    let desired = match super::load(file) {
        Ok(d) => d,
        Err(s) => return s,
    };
    let (handles, observed) = match host_state {
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Observed>(&t).map_err(|e| e.to_string()))
        {
            Ok(o) => (Vec::new(), o),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitStatus::Invalid;
            }
        },
        None => match super::observe_nodes(&desired, target, 8).await {
            Ok(x) => x,
            Err(s) => return s,
        },
    };
    let p = plan(PlanInput {
        desired: &desired,
        observed: &observed,
        reboot: false,
        only,
    });
    match format {
        Output::Json => println!("{}", output::plan_json(&p)),
        Output::Human => print!("{}", output::plan_human(&p)),
    }
    super::close(&handles).await;
    if p.has_problems() {
        ExitStatus::Failed
    } else {
        ExitStatus::Ok
    }
}
