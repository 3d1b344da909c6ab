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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::outcome::StepFailure;

    fn failure(stderr: &str) -> StepFailure {
        StepFailure {
            argv: vec!["qm".into(), "create".into(), "100".into()],
            exit: Some(255),
            stderr: stderr.into(),
        }
    }

    const DONE: StepOutcome = StepOutcome::Done {
        imported: None,
        warnings: Vec::new(),
    };
    const TAKEN: &str = "unable to create VM 100 - VM 100 already exists on node 'pve'";
    const LOCKED: &str = "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout";

    #[test]
    fn starts_unreserved_with_the_first_backoff() {
        let s = RunState::new(true);
        assert_eq!(
            s,
            RunState {
                reserved: false,
                allocated: true,
                id_retries: 0,
                lock_retries: 0,
                backoff: FIRST_BACKOFF,
            }
        );
        assert!(!RunState::new(false).allocated);
    }

    #[test]
    fn done_goes_on_and_only_a_reserving_step_reserves() {
        let mut s = RunState::new(true);
        for check in [Check::Exit, Check::Import, Check::QuietStderr] {
            assert_eq!(s.on_outcome(check, &DONE), Transition::Next);
            assert!(!s.reserved, "{check:?} does not reserve the id");
        }
        let imported = StepOutcome::Done {
            imported: Some("local-lvm:vm-100-disk-0".into()),
            warnings: Vec::new(),
        };
        assert_eq!(s.on_outcome(Check::Import, &imported), Transition::Next);
        assert!(!s.reserved);
        assert_eq!(s.on_outcome(Check::Reserve, &DONE), Transition::Next);
        assert!(s.reserved);
        // Nothing else of the state moves on success.
        assert_eq!((s.id_retries, s.lock_retries), (0, 0));
        assert_eq!(s.backoff, FIRST_BACKOFF);
    }

    #[test]
    fn a_taken_allocated_id_is_reallocated_up_to_the_limit() {
        let mut s = RunState::new(true);
        let taken = StepOutcome::IdTaken(failure(TAKEN));
        for n in 1..=MAX_ID_RETRIES {
            assert_eq!(s.on_outcome(Check::Reserve, &taken), Transition::Reallocate);
            assert_eq!(s.id_retries, n);
        }
        assert_eq!(
            s.on_outcome(Check::Reserve, &taken),
            Transition::Fail {
                error: format!("qm create 100: {TAKEN}"),
                ours: false,
            }
        );
        assert_eq!(s.id_retries, MAX_ID_RETRIES);
    }

    #[test]
    fn a_taken_file_given_id_fails_and_is_not_ours() {
        let mut s = RunState::new(false);
        assert_eq!(
            s.on_outcome(Check::Reserve, &StepOutcome::IdTaken(failure(TAKEN))),
            Transition::Fail {
                error: format!("qm create 100: {TAKEN}"),
                ours: false,
            }
        );
        assert_eq!(s.id_retries, 0);
    }

    #[test]
    fn a_taken_id_after_a_reservation_is_ours() {
        let mut s = RunState::new(false);
        s.on_outcome(Check::Reserve, &DONE);
        let t = s.on_outcome(Check::Reserve, &StepOutcome::IdTaken(failure(TAKEN)));
        assert!(matches!(t, Transition::Fail { ours: true, .. }), "{t:?}");
    }

    #[test]
    fn lock_timeouts_back_off_doubling_to_the_cap_then_fail() {
        let mut s = RunState::new(true);
        let locked = StepOutcome::LockTimeout(failure(LOCKED));
        let mut pauses = Vec::new();
        for _ in 0..MAX_LOCK_RETRIES {
            match s.on_outcome(Check::Exit, &locked) {
                Transition::RetryAfter(p) => pauses.push(p.as_millis()),
                other => panic!("expected a retry, got {other:?}"),
            }
        }
        assert_eq!(pauses, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(s.lock_retries, MAX_LOCK_RETRIES);
        assert_eq!(s.backoff, MAX_BACKOFF);
        assert_eq!(
            s.on_outcome(Check::Exit, &locked),
            Transition::Fail {
                error: format!("qm create 100: {LOCKED}"),
                ours: false,
            }
        );
    }

    #[test]
    fn lock_timeouts_are_counted_across_steps_and_keep_ownership() {
        let mut s = RunState::new(true);
        let locked = StepOutcome::LockTimeout(failure(LOCKED));
        // A lock timeout on the create itself is retried, never reallocated.
        assert_eq!(
            s.on_outcome(Check::Reserve, &locked),
            Transition::RetryAfter(FIRST_BACKOFF)
        );
        assert_eq!(s.id_retries, 0);
        s.on_outcome(Check::Reserve, &DONE);
        for _ in 1..MAX_LOCK_RETRIES {
            assert!(matches!(
                s.on_outcome(Check::Exit, &locked),
                Transition::RetryAfter(_)
            ));
        }
        // The create happened: the VM that is left is this run's.
        assert!(matches!(
            s.on_outcome(Check::Exit, &locked),
            Transition::Fail { ours: true, .. }
        ));
    }

    #[test]
    fn a_step_not_run_fails_with_the_ownership_so_far() {
        let mut s = RunState::new(true);
        assert_eq!(
            s.on_outcome(Check::Exit, &StepOutcome::NotRun),
            Transition::Fail {
                error: "not run".into(),
                ours: false,
            }
        );
        s.on_outcome(Check::Reserve, &DONE);
        assert_eq!(
            s.on_outcome(Check::Exit, &StepOutcome::NotRun),
            Transition::Fail {
                error: "not run".into(),
                ours: true,
            }
        );
    }

    #[test]
    fn a_failure_is_ours_after_a_reservation_or_when_it_reserves() {
        let failed = StepOutcome::Failed(failure("import-from: could not open"));
        let error = "qm create 100: import-from: could not open".to_string();
        let mut s = RunState::new(false);
        assert_eq!(
            s.on_outcome(Check::Exit, &failed),
            Transition::Fail {
                error: error.clone(),
                ours: false,
            }
        );
        // A failed create may have left a half-made VM behind.
        let mut s = RunState::new(false);
        assert_eq!(
            s.on_outcome(Check::Reserve, &failed),
            Transition::Fail {
                error: error.clone(),
                ours: true,
            }
        );
        let mut s = RunState::new(true);
        s.on_outcome(Check::Reserve, &DONE);
        for check in [Check::Exit, Check::Import, Check::QuietStderr] {
            assert_eq!(
                s.on_outcome(check, &failed),
                Transition::Fail {
                    error: error.clone(),
                    ours: true,
                }
            );
        }
    }

    #[test]
    fn a_lost_connection_is_ours_when_the_round_trip_could_reserve() {
        let s = RunState::new(true);
        let lost = |s: &RunState, reserves| s.on_lost("connection lost".into(), reserves);
        assert_eq!(
            lost(&s, false),
            Transition::Fail {
                error: "connection lost".into(),
                ours: false,
            }
        );
        assert!(matches!(
            lost(&s, true),
            Transition::Fail { ours: true, .. }
        ));
        let mut s = s;
        s.on_outcome(Check::Reserve, &DONE);
        assert!(matches!(
            lost(&s, false),
            Transition::Fail { ours: true, .. }
        ));
    }
}
