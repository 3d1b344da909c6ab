//! What a run reports: progress [`Event`]s to a [`Reporter`], and a
//! [`VmResult`] per VM at the end.

use pvefleet_model::VmId;
use pvefleet_plan::{Action, VmPlan};
use serde::Serialize;

/// Progress of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A VM's work starts.
    Started {
        /// The VM.
        name: String,
    },
    /// A command is sent (secrets redacted).
    Command {
        /// The VM (or image-cache template).
        name: String,
        /// The command line.
        line: String,
    },
    /// Something worth saying.
    Note {
        /// The VM or node.
        name: String,
        /// What.
        message: String,
    },
    /// A VM is done.
    Finished {
        /// The VM.
        name: String,
        /// True when it converged.
        ok: bool,
    },
}

/// Receives the events of a run, from any task.
pub trait Reporter: Send + Sync {
    /// Called for every event, in the order each VM's events happen.
    fn report(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> Reporter for F {
    fn report(&self, event: Event) {
        self(event)
    }
}

/// How a VM ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmOutcome {
    /// Converged.
    Ok,
    /// Something failed.
    Failed,
    /// Not touched: managed by someone else, or not plannable.
    Skipped,
}

/// The result of one VM.
#[derive(Clone, Debug, Serialize)]
pub struct VmResult {
    /// Name.
    pub name: String,
    /// VM id.
    pub vmid: Option<VmId>,
    /// Node.
    pub node: String,
    /// Planned action.
    pub action: Action,
    /// Outcome.
    pub result: VmOutcome,
    /// Address from the guest agent.
    pub ip: Option<String>,
    /// Seconds spent.
    pub seconds: f64,
    /// What went wrong.
    pub error: Option<String>,
    /// The half-created VM was destroyed again.
    pub rolled_back: bool,
    /// Keys waiting for a reboot.
    pub reboot_pending: Vec<String>,
    /// Warnings the host printed for commands that succeeded.
    pub warnings: Vec<String>,
    /// Another run made the VM while this one was about to: this run sent
    /// nothing for it, and the caller may finish it once that run is done.
    #[serde(skip)]
    pub made_by_another: bool,
}

impl VmResult {
    /// The result before anything is sent: skipped for a conflict or a
    /// planning problem, else ok so far.
    pub fn of(vp: &VmPlan) -> Self {
        Self {
            name: vp.name.clone(),
            vmid: vp.vmid,
            node: vp.node.clone(),
            action: vp.action,
            result: if vp.is_blocked() {
                VmOutcome::Skipped
            } else {
                VmOutcome::Ok
            },
            ip: None,
            seconds: 0.0,
            error: vp.problem.as_ref().map(ToString::to_string),
            rolled_back: false,
            reboot_pending: vp.reboot_pending.clone(),
            warnings: Vec::new(),
            made_by_another: false,
        }
    }

    /// The result marked failed with `error`.
    pub fn failed(mut self, error: impl Into<String>) -> Self {
        self.result = VmOutcome::Failed;
        self.error = Some(error.into());
        self
    }
}
