//! `plan`: what apply would do.

use crate::args::Target;
use crate::output;
use crate::ui::{self, Failure};
use crate::ExitStatus;
use pvefleet_plan::{plan, Observed, PlanInput};
use serde_json::json;

/// A saved host state (`--host-state`), or why it is not one.
fn host_state(path: &str) -> Result<Observed, ExitStatus> {
    let fail = |message: String, location: serde_json::Value| {
        Failure::new(ExitStatus::Invalid, "host_state", message)
            .at(location)
            .report()
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            format!("cannot read {path}: {}", ui::io_reason(&e)),
            json!({"file": path}),
        )
    })?;
    serde_json::from_str::<Observed>(&text).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax => "it is not JSON",
            Category::Eof => "it ends too early",
            Category::Data => "its JSON does not have the shape of a saved host state",
            Category::Io => "it could not be read",
        };
        fail(
            format!(
                "{path}:{}:{}: not a saved host state: {what}",
                e.line(),
                e.column()
            ),
            json!({"file": path, "line": e.line(), "col": e.column()}),
        )
    })
}

/// The switches of `plan` that change what is planned.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// `--adopt`.
    pub adopt: bool,
    /// `--allow-data-loss`.
    pub allow_data_loss: bool,
}

/// Reads the nodes (or a saved host state) and prints the plan.
/// `Changes` when something would change and nothing stands in the way.
pub async fn run(
    file: &str,
    target: &Target,
    host_state_file: Option<String>,
    only: &[String],
    flags: Flags,
) -> ExitStatus {
    let Flags {
        adopt,
        allow_data_loss,
    } = flags;
    let desired = match super::load_file(file) {
        Ok(d) => d,
        Err(s) => return s,
    };
    if let Err(s) = crate::cloud_init::check(file, &desired) {
        return s;
    }
    if let Err(s) = super::check_only(file, &desired, only) {
        return s;
    }
    let (handles, observed) = match host_state_file {
        Some(path) => match host_state(&path) {
            Ok(o) => (Vec::new(), o),
            Err(s) => return s,
        },
        None => match super::observe_nodes_with(&desired, target, 8, super::ReadsFor::run(adopt))
            .await
        {
            Ok(x) => x,
            Err(s) => return s,
        },
    };
    let p = plan(PlanInput {
        desired: &desired,
        observed: &observed,
        reboot: false,
        only,
        adopt,
        allow_data_loss,
    });
    let ui = ui::ui();
    if ui.json {
        ui::print_json(&output::plan_json(&p));
    } else {
        print!("{}", output::plan_human(&p, true, ui.color_out));
    }
    super::close(&handles).await;
    if p.has_problems() {
        ExitStatus::Failed
    } else if !p.is_converged() {
        ExitStatus::Changes
    } else {
        ExitStatus::Ok
    }
}
