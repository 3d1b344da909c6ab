//! The driver of one VM's steps: sends them in as few round trips as is
//! safe, classifies each answer ([`classify`]) and follows the rules of
//! [`RunState`]; and the rollback of a VM this run made, as planned steps.

use super::machine::{RunState, Transition};
use super::outcome::{classify, StepOutcome};
use super::Lane;
use crate::event::Event;
use crate::script::Judge;
use pvefleet_model::{Command, Qm, VmId, OWNER_TAG};
use pvefleet_plan::{Check, InputSource, Step, VmPlan};

/// Why a VM's steps stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepsFailed {
    /// What went wrong.
    pub error: String,
    /// True when this run may have made (part of) the VM.
    pub ours: bool,
    /// True when this run surely made it: its `qm create`/`qm clone`
    /// succeeded (a clone carries neither pvefleet's tag nor a lock until
    /// its settings are written).
    pub made: bool,
}

/// The rollback of a VM this run created: a guard read, then the steps sent
/// only when the guard shows the VM is ours (it carries pvefleet's tag, or
/// the `lock: create`/`lock: clone` of an unfinished create).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollback {
    /// Reads the VM's configuration.
    pub guard: Command,
    /// Stop and destroy, skipping the VM's lock.
    pub steps: Vec<Command>,
}

impl Rollback {
    /// The rollback of `vmid`.
    pub fn of(vmid: VmId) -> Self {
        Self {
            guard: Command::Qm(Qm::Config { vmid }),
            steps: vec![
                Command::Qm(Qm::Stop {
                    vmid,
                    skiplock: true,
                }),
                Command::Qm(Qm::Destroy {
                    vmid,
                    skiplock: true,
                }),
            ],
        }
    }

    /// True when the configuration `qm config` printed is this run's to
    /// remove.
    pub fn is_ours(config: &str) -> bool {
        config
            .lines()
            .any(|l| l.starts_with("tags:") && l.contains(OWNER_TAG))
            || config
                .lines()
                .any(|l| l == "lock: create" || l == "lock: clone")
    }
}

/// Where the next round trip ends: after the next import (whose volume the
/// following step needs), else at the end; and no later than the last
/// allocating step when the storage lock is bounded.
fn segment_end(steps: &[Step], from: usize, alloc_end: Option<usize>) -> usize {
    let end = steps[from..]
        .iter()
        .position(|s| s.check == Check::Import)
        .map(|p| from + p + 1)
        .unwrap_or(steps.len());
    match alloc_end {
        Some(a) if from < a => end.min(a),
        _ => end,
    }
}

impl Lane {
    /// Runs a VM's steps; returns the warnings the host printed. `claimed`:
    /// this run already made the VM (its name claim).
    pub(super) async fn run_steps(
        &self,
        vp: &mut VmPlan,
        claimed: bool,
    ) -> Result<Vec<String>, StepsFailed> {
        let mut warnings = Vec::new();
        let mut state = RunState::new(vp.vmid_allocated);
        state.reserved = claimed;
        let mut imported: Option<String> = None;
        let mut i = 0;
        // Where the storage lock is bounded, the allocating steps go in a
        // round trip of their own, holding one of its permits.
        let bound = self.storage_permits(vp.storage_lock.as_ref());
        let alloc_end = bound
            .as_ref()
            .and_then(|_| vp.steps.iter().rposition(|s| s.command.allocates()))
            .map(|p| p + 1);
        'segments: while i < vp.steps.len() {
            // Interrupted: nothing more is sent; what this run made goes.
            if self.opts.cancel.is_cancelled() {
                return Err(StepsFailed {
                    error: format!(
                        "{} after {i} of {} steps",
                        super::INTERRUPTED,
                        vp.steps.len()
                    ),
                    ours: state.reserved,
                    made: state.reserved,
                });
            }
            let end = segment_end(&vp.steps, i, alloc_end);
            let permit = match (&bound, alloc_end) {
                (Some(sem), Some(a)) if i < a => sem.clone().acquire_owned().await.ok(),
                _ => None,
            };
            let segment = &vp.steps[i..end];
            let mut argvs = Vec::new();
            for s in segment {
                let Some(command) = s.resolve(|src| self.input(src, imported.as_deref())) else {
                    return Err(StepsFailed {
                        error: "a step's input is missing".into(),
                        ours: state.reserved,
                        made: state.reserved,
                    });
                };
                self.emit(Event::Command {
                    name: vp.name.clone(),
                    line: command.redacted(),
                });
                argvs.push(command.argv());
            }
            let reserves = segment.iter().any(|s| s.check == Check::Reserve);
            let judges: Vec<Judge> = segment
                .iter()
                .map(|s| match s.check {
                    Check::QuietStderr => Judge::ExitAndStderr,
                    _ => Judge::Exit,
                })
                .collect();
            let outs = match self.transport.run_checked(&argvs, &judges).await {
                Ok(o) => o,
                Err(e) => return Err(fail(state.on_lost(e.to_string(), reserves), state.reserved)),
            };
            drop(permit);
            for (k, ((step, argv), out)) in segment.iter().zip(&argvs).zip(&outs).enumerate() {
                let outcome = classify(step, argv, out);
                match state.on_outcome(step.check, &outcome) {
                    Transition::Next => {
                        if let StepOutcome::Done {
                            imported: made,
                            warnings: w,
                        } = outcome
                        {
                            imported = made.or(imported);
                            warnings.extend(w);
                        }
                    }
                    Transition::Reallocate => {
                        self.reallocate(vp)?;
                        continue 'segments;
                    }
                    Transition::RetryAfter(pause) => {
                        self.say(
                            &vp.name,
                            format!(
                                "{}; retrying in {} ms",
                                out.stderr.trim(),
                                pause.as_millis()
                            ),
                        );
                        tokio::select! {
                            () = tokio::time::sleep(pause) => {}
                            () = self.opts.cancel.cancelled() => {}
                        }
                        i += k;
                        continue 'segments;
                    }
                    t @ Transition::Fail { .. } => return Err(fail(t, state.reserved)),
                }
            }
            i = end;
        }
        Ok(warnings)
    }

    /// The value of a step input.
    fn input(&self, src: &InputSource, imported: Option<&str>) -> Option<String> {
        match src {
            InputSource::ImportedVolume => imported.map(str::to_string),
            InputSource::Upload(i) => self.pre.upload_path(*i),
        }
    }

    /// The id was taken since the node was read: move every step to the
    /// next free id.
    fn reallocate(&self, vp: &mut VmPlan) -> Result<(), StepsFailed> {
        let no_id = |error: &str| StepsFailed {
            error: error.into(),
            ours: false,
            made: false,
        };
        let old = vp.vmid.ok_or_else(|| no_id("no VM id"))?;
        let new = self
            .ids
            .next(old.get())
            .ok_or_else(|| no_id("no free VM id"))?;
        self.say(
            &vp.name,
            format!("vmid {old} was taken meanwhile; using {new}"),
        );
        vp.vmid = Some(new);
        for s in vp.steps.iter_mut() {
            s.command = s.command.retarget(old, new);
        }
        Ok(())
    }

    /// Removes a VM this run created and did not finish. True when it is
    /// gone (or never existed). `made`: this run's create or clone of it
    /// succeeded, so it is ours whatever its configuration says.
    pub(super) async fn rollback(&self, name: &str, vmid: VmId, made: bool) -> bool {
        let plan = Rollback::of(vmid);
        let cfg = self.transport.run(plan.guard.argv()).await;
        let ours = matches!(&cfg, Ok(o) if o.success() && (made || Rollback::is_ours(&o.stdout)));
        if !ours {
            return cfg.is_ok_and(|o| !o.success());
        }
        for c in &plan.steps {
            self.emit(Event::Command {
                name: name.to_string(),
                line: c.redacted(),
            });
        }
        let argvs: Vec<Vec<String>> = plan.steps.iter().map(Command::argv).collect();
        matches!(self.transport.run_batch(&argvs, false).await, Ok(o) if o.last().is_some_and(|x| x.success()))
    }
}

fn fail(t: Transition, made: bool) -> StepsFailed {
    match t {
        Transition::Fail { error, ours } => StepsFailed { error, ours, made },
        other => StepsFailed {
            error: format!("unexpected transition {other:?}"),
            ours: false,
            made,
        },
    }
}
