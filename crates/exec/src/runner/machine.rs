//! The rules of a VM's run as a state machine over [`StepOutcome`]s: what
//! follows each step's outcome (go on, take another VM id, wait for a lock,
//! fail), and whether a failed VM is this run's to roll back. Pure: the
//! driver in [`super::steps`] sends and sleeps.

use super::outcome::StepOutcome;
use pvefleet_plan::Check;
use std::time::Duration;

/// VM ids tried after the planned one was taken.
pub const MAX_ID_RETRIES: u32 = 20;
/// Lock timeouts waited out per VM.
pub const MAX_LOCK_RETRIES: u32 = 6;
/// The first pause after a lock timeout; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause after a lock timeout.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Go on with the next step.
    Next,
    /// The id was taken: take the next free one and send the round trip
    /// again from its start.
    Reallocate,
    /// A lock timed out: wait, then send this step and the rest again.
    RetryAfter(Duration),
    /// Stop: the VM failed. `ours` when this run may have created it, so
    /// rollback is its to do.
    Fail {
        /// What went wrong.
        error: String,
        /// True when this run made (part of) the VM.
        ours: bool,
    },
}

/// The state of one VM's run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunState {
    /// True once a step that reserves the VM id succeeded.
    pub reserved: bool,
    /// True when pvefleet chose the id, so another may be taken.
    pub allocated: bool,
    /// Ids taken so far after a clash.
    pub id_retries: u32,
    /// Lock timeouts waited out so far.
    pub lock_retries: u32,
    /// The next pause after a lock timeout.
    pub backoff: Duration,
}

impl RunState {
    /// The state before the first step; `allocated` when pvefleet chose the id.
    pub fn new(allocated: bool) -> Self {
        Self {
            reserved: false,
            allocated,
            id_retries: 0,
            lock_retries: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// What follows `outcome` of a step judged by `check`.
    pub fn on_outcome(&mut self, check: Check, outcome: &StepOutcome) -> Transition {
        match outcome {
            StepOutcome::Done { .. } => {
                if check == Check::Reserve {
                    self.reserved = true;
                }
                Transition::Next
            }
            StepOutcome::IdTaken(_) if self.allocated && self.id_retries < MAX_ID_RETRIES => {
                self.id_retries += 1;
                Transition::Reallocate
            }
            // Someone else's VM has the id the file names: not ours.
            StepOutcome::IdTaken(f) => Transition::Fail {
                error: f.to_string(),
                ours: self.reserved,
            },
            StepOutcome::LockTimeout(_) if self.lock_retries < MAX_LOCK_RETRIES => {
                self.lock_retries += 1;
                let pause = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Transition::RetryAfter(pause)
            }
            // The create never happened when its lock timed out.
            StepOutcome::LockTimeout(f) => Transition::Fail {
                error: f.to_string(),
                ours: self.reserved,
            },
            StepOutcome::NotRun => Transition::Fail {
                error: "not run".into(),
                ours: self.reserved,
            },
            // A reserving step that failed may have left a half-made VM
            // (e.g. an import that failed inside `qm create`).
            StepOutcome::Failed(f) => Transition::Fail {
                error: f.to_string(),
                ours: self.reserved || check == Check::Reserve,
            },
        }
    }

    /// The connection was lost during a round trip: the VM failed, and is
    /// ours when the round trip could have reserved its id.
    pub fn on_lost(&self, error: String, segment_reserves: bool) -> Transition {
        Transition::Fail {
            error,
            ours: self.reserved || segment_reserves,
        }
    }
}
