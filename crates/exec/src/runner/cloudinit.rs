//! `wait: cloud-init`: once the guest agent reported the address, runs
//! `cloud-init status --wait --format json` in the guest and reports its
//! verdict: `done` is fine, `error` fails the VM with the failing module's
//! message, a degraded run (`extended_status: degraded done`, recoverable
//! errors) is fine with a warning.
//!
//! Host facts (qemu-server `src/PVE/CLI/qm.pm` `exec`,
//! `src/PVE/QemuServer/Agent.pm`): `qm guest exec` waits at most
//! `--timeout` (30 s) and then only returns the pid, so the command is
//! started with `--synchronous 0` and `qm guest exec-status VMID PID` is
//! polled until `exited` is 1; `out-data` holds the command's stdout,
//! decoded. cloud-init's JSON (cloud-init `cloudinit/cmd/status.py`):
//! `status` (`done`, `error`, `running`, `disabled`), `extended_status`
//! (`degraded done` ...), `errors` (list of strings naming the module),
//! `recoverable_errors` (level → list of messages).

use super::agent::Stop;
use super::Lane;
use pvefleet_model::{Command, Qm, VmId};
use pvefleet_plan::VmPlan;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What cloud-init said.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `done`.
    Done,
    /// Finished, with what went wrong but did not stop it.
    Degraded(String),
    /// Failed, with the failing module's message.
    Error(String),
}

/// The pid `qm guest exec --synchronous 0` printed.
pub fn parse_pid(stdout: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(stdout.trim()).ok()?;
    v.get("pid")?.as_u64()
}

/// `qm guest exec-status`: `None` while the command runs, else its exit
/// code and stdout and stderr.
pub fn parse_exec_status(stdout: &str) -> Result<Option<(i64, String, String)>, String> {
    let v: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("unreadable answer of qm guest exec-status: {e}"))?;
    let exited = v.get("exited").and_then(Value::as_i64).unwrap_or(0) == 1
        || v.get("exited").and_then(Value::as_bool) == Some(true);
    if !exited {
        return Ok(None);
    }
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let code = v.get("exitcode").and_then(Value::as_i64).unwrap_or(0);
    Ok(Some((code, text("out-data"), text("err-data"))))
}

/// The verdict of `cloud-init status --format json` (its stdout, exit code
/// and stderr).
pub fn verdict(out: &str, code: i64, err: &str) -> Verdict {
    let json = out
        .find('{')
        .and_then(|i| serde_json::from_str::<Value>(&out[i..]).ok());
    let Some(v) = json else {
        let why = [err.trim(), out.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("no output");
        return Verdict::Error(format!(
            "cloud-init status failed in the guest (exit {code}): {why}"
        ));
    };
    let strings = |x: Option<&Value>| -> Vec<String> {
        x.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    let extended = v
        .get("extended_status")
        .and_then(Value::as_str)
        .unwrap_or(status);
    let errors = strings(v.get("errors"));
    let mut recoverable = Vec::new();
    if let Some(levels) = v.get("recoverable_errors").and_then(Value::as_object) {
        for (level, msgs) in levels {
            for m in strings(Some(msgs)) {
                recoverable.push(format!("{level}: {m}"));
            }
        }
    }
    match status {
        "error" => Verdict::Error(if errors.is_empty() {
            "cloud-init reports an error (see /var/log/cloud-init.log in the guest)".into()
        } else {
            errors.join("; ")
        }),
        "done" if extended.starts_with("degraded") || !recoverable.is_empty() => {
            let what = if recoverable.is_empty() {
                errors
            } else {
                recoverable
            };
            Verdict::Degraded(if what.is_empty() {
                "cloud-init finished degraded".into()
            } else {
                format!("cloud-init finished degraded: {}", what.join("; "))
            })
        }
        "done" => Verdict::Done,
        "disabled" => Verdict::Degraded("cloud-init is disabled in the guest".into()),
        other => Verdict::Error(format!("cloud-init reports status '{other}'")),
    }
}

fn status_argv(vmid: VmId, pid: u64) -> Vec<String> {
    Command::Qm(Qm::GuestExecStatus { vmid, pid }).argv()
}

impl Lane {
    /// Waits for cloud-init's verdict in the guest of a VM whose agent
    /// answered: `Ok(warning)` when it finished, `Err` when it failed or
    /// did not finish within the wait timeout.
    pub(super) async fn cloud_init(&self, vp: &VmPlan) -> Result<Option<String>, String> {
        let Some(vmid) = vp.vmid else { return Ok(None) };
        let command = ["cloud-init", "status", "--wait", "--format", "json"]
            .map(String::from)
            .to_vec();
        let start = Command::Qm(Qm::GuestExec { vmid, command }).argv();
        // The agent just answered; a moment's silence (3 s guest-ping
        // timeout) is tried again, anything else is final.
        let mut tries = 0;
        let out = loop {
            let out = self
                .transport
                .run(start.clone())
                .await
                .map_err(|e| e.to_string())?;
            tries += 1;
            if out.success() || tries >= 3 || !out.stderr.contains("guest agent is not running") {
                break out;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        if !out.success() {
            return Err(format!(
                "cloud-init status could not be started through the guest agent: {}",
                out.stderr.trim()
            ));
        }
        let pid = parse_pid(&out.stdout).ok_or_else(|| {
            format!(
                "qm guest exec printed no pid: {}",
                out.stdout.trim().chars().take(200).collect::<String>()
            )
        })?;
        self.say(&vp.name, "waiting for cloud-init to finish".into());
        let started = Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            let last = match self.transport.run(status_argv(vmid, pid)).await {
                Ok(out) if out.success() => match parse_exec_status(&out.stdout)? {
                    Some((code, stdout, stderr)) => {
                        return match verdict(&stdout, code, &stderr) {
                            Verdict::Done => Ok(None),
                            Verdict::Degraded(w) => Ok(Some(w)),
                            Verdict::Error(e) => Err(format!("cloud-init failed: {e}")),
                        }
                    }
                    None => "cloud-init is still running".to_string(),
                },
                Ok(out) => out.stderr.trim().to_string(),
                Err(e) => e.to_string(),
            };
            delay = match self.pause(started, delay).await {
                Ok(next) => next,
                Err(Stop::TimedOut) => {
                    return Err(format!(
                        "cloud-init did not finish within {} s: {last}",
                        self.opts.wait_timeout.as_secs()
                    ))
                }
                Err(Stop::Interrupted) => {
                    return Err(format!(
                        "{} while waiting for cloud-init",
                        super::INTERRUPTED
                    ))
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cloud_init_verdicts() {
        let done = r#"{"errors": [], "extended_status": "done", "recoverable_errors": {}, "status": "done"}"#;
        assert_eq!(verdict(done, 0, ""), Verdict::Done);
        let err = r#"{"errors": ["('scripts_user', RuntimeError('Runparts: 1 failures (runcmd)'))"], "extended_status": "error - done", "status": "error"}"#;
        assert!(matches!(verdict(err, 1, ""), Verdict::Error(m) if m.contains("scripts_user")));
        let degraded = r#"{"errors": [], "extended_status": "degraded done", "recoverable_errors": {"WARNING": ["Invalid cloud-config"]}, "status": "done"}"#;
        assert!(
            matches!(verdict(degraded, 2, ""), Verdict::Degraded(m) if m.contains("Invalid cloud-config"))
        );
        assert!(
            matches!(verdict("", 127, "sh: cloud-init: not found"), Verdict::Error(m) if m.contains("not found"))
        );
    }

    #[test]
    fn reads_exec_answers() {
        assert_eq!(parse_pid("{\n   \"pid\" : 1234\n}\n"), Some(1234));
        assert_eq!(parse_exec_status(r#"{"exited": 0}"#), Ok(None));
        assert_eq!(
            parse_exec_status(r#"{"exitcode": 1, "exited": 1, "out-data": "x"}"#),
            Ok(Some((1, "x".into(), String::new())))
        );
    }
}
