//! Injected faults: `ROOT/faults.json` holds rules such as
//! `[{"match": "qm start 105", "nth": 1, "action": "fail", "exit": 255,
//! "message": "...", "seconds": 30}]`.
//!
//! `match` is a prefix of the argv joined by spaces (program name without
//! path); `nth` (default: every time) counts matching invocations. Actions:
//! `fail` exits with the message; `hang` sleeps first, then runs normally;
//! `drop` kills the SSH session that runs the command; `partial` lets a
//! create, clone or import do its first half and then fail; `task-error`
//! fails a task inside its worker (the message on stderr, exit 255 where
//! qm has `$upid_exit`, 0 for `qm template` and `qm disk resize`);
//! `task-warnings` lets the command succeed with `count` (default 1)
//! `WARN: message` lines, a task ending `Task finished with N warning(s)!`
//! (CONTRACT §1.3, §1.4); `kill` kills a `qm create` or `qm clone` after
//! it reserved the VM id and made `disks` of its volumes (default all),
//! `seconds` (default 0) after that: exit 137, no cleanup, the config left
//! holding only `lock: create`/`lock: clone` (CONTRACT §19).

use crate::schema::Failure;
use crate::Ctx;
use serde::Deserialize;
use std::time::Duration;

/// What a rule does to the invocations it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Exit with `message` and `exit` instead of running.
    Fail,
    /// Sleep `seconds`, then run normally.
    Hang,
    /// Kill the SSH session that carries the command.
    Drop,
    /// Let a create, clone or import do its first half, then fail.
    Partial,
    /// Fail the task inside its worker (`TASK ERROR: message`).
    #[serde(rename = "task-error")]
    TaskError,
    /// Succeed with warnings (`TASK WARNINGS: count`).
    #[serde(rename = "task-warnings")]
    TaskWarnings,
    /// Kill a create or clone midway (SIGKILL, OOM, a reboot).
    Kill,
}

/// One fault rule.
#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    /// Prefix of the argv line.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Which matching invocation (1-based); none means every one.
    pub nth: Option<u64>,
    /// What happens.
    pub action: Action,
    /// Exit code for `fail`.
    pub exit: Option<i32>,
    /// Message for `fail`/`partial`.
    pub message: Option<String>,
    /// Seconds for `hang`.
    pub seconds: Option<u64>,
    /// How many warnings `task-warnings` adds (default 1).
    pub count: Option<u64>,
    /// How many volumes a killed create or clone made (default all).
    pub disks: Option<usize>,
}

/// The rules of `ROOT/faults.json` (none when it is absent). A file that
/// does not parse, such as one with an unknown action, fails every
/// invocation, so a test cannot run without the faults it meant to inject.
fn rules(cx: &Ctx) -> Result<Vec<Rule>, Failure> {
    let Ok(text) = std::fs::read_to_string(cx.root.join("faults.json")) else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::die(["pve-sim: broken faults.json: ", &e.to_string()].concat()))
}

/// Checks the rules for this invocation; may fail, hang or drop it.
/// Remembers a `partial` rule for the command to consult.
pub fn before(cx: &mut Ctx, line: &str) -> Result<(), Failure> {
    let rules = rules(cx)?;
    if rules.is_empty() {
        return Ok(());
    }
    let hits = cx.root.update(|st| {
        let mut hits = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if line == r.pattern || line.starts_with(&[r.pattern.as_str(), " "].concat()) {
                let key = format!("{i} {r:?}");
                let n = st.fault_counts.entry(key).or_insert(0);
                *n += 1;
                if r.nth.is_none_or(|nth| nth == *n) {
                    hits.push(r.clone());
                }
            }
        }
        Ok(hits)
    })?;
    for r in hits {
        match r.action {
            Action::Fail => {
                return Err(Failure {
                    stderr: [r.message.as_deref().unwrap_or("injected failure"), "\n"].concat(),
                    exit: r.exit.unwrap_or(255),
                })
            }
            Action::Hang => std::thread::sleep(Duration::from_secs(r.seconds.unwrap_or(30))),
            Action::Drop => {
                drop_session();
                return Err(Failure::die("connection dropped"));
            }
            Action::Partial => cx.partial = Some(r.message.unwrap_or_else(|| "interrupted".into())),
            Action::TaskError => {
                cx.task_error = Some(r.message.unwrap_or_else(|| "injected task failure".into()))
            }
            Action::Kill => cx.kill = Some((r.disks, r.seconds.unwrap_or(0))),
            Action::TaskWarnings => {
                cx.task_warnings = Some((
                    r.message.unwrap_or_else(|| "injected warning".into()),
                    r.count.unwrap_or(1),
                ))
            }
        }
    }
    Ok(())
}

/// True (once) when a `partial` fault applies to this invocation.
pub fn partial(cx: &mut Ctx) -> bool {
    cx.partial.take().is_some()
}

fn parent_of(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(["/proc/", &pid.to_string(), "/stat"].concat()).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let ppid = stat[close + 2..].split_whitespace().nth(1)?.parse().ok()?;
    Some((ppid, comm))
}

/// Kills the nearest `sshd` ancestor: the session process that carries this
/// command, so the client sees its connection drop.
fn drop_session() {
    let mut pid = std::process::id();
    for _ in 0..16 {
        let Some((ppid, _)) = parent_of(pid) else {
            return;
        };
        let Some((_, pcomm)) = parent_of(ppid) else {
            return;
        };
        if pcomm.starts_with("sshd") {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(ppid.to_string())
                .status();
            std::thread::sleep(Duration::from_millis(200));
            return;
        }
        pid = ppid;
    }
}
