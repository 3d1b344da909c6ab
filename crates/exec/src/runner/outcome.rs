//! What one step's answer means: each [`StepOutput`] is classified once
//! into a [`StepOutcome`], by its exit status, its check and the host's
//! words (CONTRACT §11 locks, §4.2 import output).

use crate::script::{errors_in, is_warning, StepOutput};
use pvefleet_plan::{Check, Step};

/// How one sent step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// It succeeded; an import names the volume it made.
    Done {
        /// The volume an import reported.
        imported: Option<String>,
        /// Warnings it printed on stderr (a task with warnings, lvm2's
        /// thin-pool notices).
        warnings: Vec<String>,
    },
    /// It was not run: an earlier command of its round trip failed.
    NotRun,
    /// Its VM id was taken since the node was read (`already exists`).
    IdTaken(StepFailure),
    /// A lock timed out: the command surely did not run.
    LockTimeout(StepFailure),
    /// It failed.
    Failed(StepFailure),
}

/// A step that failed, with what the host said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", self.argv.iter().take(3).cloned().collect::<Vec<_>>().join(" "), self.reason())]
pub struct StepFailure {
    /// What was sent.
    pub argv: Vec<String>,
    /// Its exit status (0 for a task that failed inside).
    pub exit: Option<i32>,
    /// What it printed on stderr, or why it counts as failed.
    pub stderr: String,
}

impl StepFailure {
    /// The host's words, else the exit status.
    pub fn reason(&self) -> String {
        let msg = self.stderr.trim();
        match (msg.is_empty(), self.exit) {
            (false, _) => msg.to_string(),
            (true, Some(code)) => format!("exit {code}"),
            (true, None) => "no answer".into(),
        }
    }
}

/// Lock answers after which the operation surely did not happen (CONTRACT
/// §11): the config flock or the storage lock timed out, or the VM carries a
/// `lock:` of another operation.
pub fn is_lock_timeout(stderr: &str) -> bool {
    (stderr.contains("can't lock file") && stderr.contains("got timeout"))
        || stderr.contains("got lock request timeout")
        || stderr.starts_with("VM is locked")
}

/// `qm create`/`qm clone` found the id taken.
pub fn already_exists(stderr: &str) -> bool {
    stderr.contains("already exists")
}

/// The volume named by an import (both output formats, CONTRACT §4.2).
pub fn imported_volume(stdout: &str) -> Option<String> {
    for line in stdout.lines().rev() {
        if let Some(rest) = line.split("successfully imported disk '").nth(1) {
            return rest.split('\'').next().map(str::to_string);
        }
        if let Some(rest) = line.split("Successfully imported disk as '").nth(1) {
            let inner = rest.split('\'').next()?;
            return inner.split_once(':').map(|(_, v)| v.to_string());
        }
    }
    None
}

/// The warning lines of a successful command's stderr.
/// The warnings of a successful command: on stderr (a direct command's
/// lvm2 warnings, a task's `Task finished with N warning(s)!`) and, for a
/// task, on stdout, where its worker's `WARN:`/`WARNING:` lines go
/// (CONTRACT §1.3). lvm2's notices (`Logical volume ... created.`) are not
/// warnings worth showing.
fn warnings(out: &StepOutput) -> Vec<String> {
    let shown = |l: &&str| {
        l.starts_with("WARNING:") || l.starts_with("WARN:") || l.starts_with("Task finished with ")
    };
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && is_warning(l))
        .filter(shown)
        .map(str::to_string)
        .collect()
}

/// Classifies the answer `out` of `step`, sent as `argv`.
pub fn classify(step: &Step, argv: &[String], out: &StepOutput) -> StepOutcome {
    let failure = |stderr: String| StepFailure {
        argv: argv.to_vec(),
        exit: out.exit,
        stderr,
    };
    let failed = |stderr: String| StepOutcome::Failed(failure(stderr));
    match out.exit {
        None => StepOutcome::NotRun,
        Some(0) if step.check == Check::QuietStderr && !errors_in(&out.stderr).is_empty() => {
            failed(errors_in(&out.stderr).join("\n").trim().to_string())
        }
        Some(0) if step.check == Check::Import => match imported_volume(&out.stdout) {
            Some(v) => StepOutcome::Done {
                imported: Some(v),
                warnings: warnings(out),
            },
            None => failed("cannot find the imported volume in the output of qm importdisk".into()),
        },
        Some(0) => StepOutcome::Done {
            imported: None,
            warnings: warnings(out),
        },
        Some(_) => {
            let msg = out.stderr.trim().to_string();
            if step.check == Check::Reserve && already_exists(&msg) {
                StepOutcome::IdTaken(failure(msg))
            } else if is_lock_timeout(&msg) {
                StepOutcome::LockTimeout(failure(msg))
            } else {
                failed(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvefleet_model::{Command, Qm, VmId};

    fn vmid() -> VmId {
        VmId::new(100).unwrap_or_else(|e| panic!("{e}"))
    }

    fn out(exit: Option<i32>, stdout: &str, stderr: &str) -> StepOutput {
        StepOutput {
            exit,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn parses_both_import_formats() {
        assert_eq!(
            imported_volume("x\nunused0: successfully imported disk 'local-lvm:vm-100-disk-0'\n")
                .as_deref(),
            Some("local-lvm:vm-100-disk-0")
        );
        assert_eq!(
            imported_volume(
                "Successfully imported disk as 'unused0:local:100/vm-100-disk-1.raw'\n"
            )
            .as_deref(),
            Some("local:100/vm-100-disk-1.raw")
        );
        assert_eq!(imported_volume("nothing"), None);
    }

    #[test]
    fn classifies_each_answer_once() {
        let start = Step::exit(Command::Qm(Qm::Start { vmid: vmid() }));
        let create = Step::checked(
            Command::Qm(Qm::Create {
                vmid: vmid(),
                options: Default::default(),
            }),
            Check::Reserve,
        );
        let resize = Step::checked(Command::Qm(Qm::Start { vmid: vmid() }), Check::QuietStderr);
        let argv = vec!["qm".to_string(), "start".into(), "100".into()];
        assert_eq!(
            classify(&start, &argv, &out(None, "", "")),
            StepOutcome::NotRun
        );
        assert_eq!(
            classify(&start, &argv, &out(Some(0), "", "WARNING: thin pool")),
            StepOutcome::Done {
                imported: None,
                warnings: vec!["WARNING: thin pool".into()]
            }
        );
        assert!(matches!(
            classify(
                &resize,
                &argv,
                &out(Some(0), "", "Task finished with 1 warning(s)!")
            ),
            StepOutcome::Done { .. }
        ));
        assert!(matches!(
            classify(&resize, &argv, &out(Some(0), "", "task failed")),
            StepOutcome::Failed(_)
        ));
        assert!(matches!(
            classify(
                &create,
                &argv,
                &out(
                    Some(255),
                    "",
                    "unable to create VM 100: config file already exists"
                )
            ),
            StepOutcome::IdTaken(_)
        ));
        assert!(matches!(
            classify(
                &start,
                &argv,
                &out(
                    Some(255),
                    "",
                    "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
                )
            ),
            StepOutcome::LockTimeout(_)
        ));
        let StepOutcome::Failed(f) = classify(&start, &argv, &out(Some(2), "", "")) else {
            panic!("a non-zero exit is a failure");
        };
        assert_eq!(f.to_string(), "qm start 100: exit 2");
    }
}
