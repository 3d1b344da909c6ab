//! The offline check of `user_data` with the real cloud-init: every
//! `#cloud-config` file pvefleet would write as a snippet goes through
//! `cloud-init schema -c FILE` when the `cloud-init` program is installed
//! (Debian package `cloud-init`); a file it rejects is a configuration
//! error at the `user_data` (or `user_data_file`) key, with cloud-init's
//! message. Without the program, a note says once that nothing was checked.
//!
//! `schema -c` (`--config-file`) validates a file without a cloud-init
//! instance in every version from 22.x to 25.x; the answer is exit 0, or
//! exit 1 with `Cloud config schema errors: …` (22.x) or `Invalid
//! user-data …` / `Error: Cloud config schema errors: …` (23.x on) on
//! stdout or stderr. Scripts (`#!`) and other formats are not cloud-config
//! and are not checked.

use pvefleet_config::{ConfigError, ConfigReport, Desired, ErrorKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What cloud-init said about one file.
enum Verdict {
    /// Valid.
    Valid,
    /// Rejected, with cloud-init's message.
    Rejected(String),
    /// The program did not run or gave no verdict.
    Unchecked(String),
}

/// The `cloud-init` program on PATH, if any (`PVEFLEET_CLOUD_INIT` names
/// another one).
fn program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PVEFLEET_CLOUD_INIT") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("cloud-init"))
        .find(|p| p.is_file())
}

/// cloud-init's answer, without the temporary file's name and the empty
/// section headers.
fn message(out: &str, file: &Path) -> String {
    let name = file.display().to_string();
    out.lines()
        .map(|l| l.replace(&name, "user_data").trim().to_string())
        .filter(|l| !l.is_empty() && l != "Error:" && !l.ends_with("schema deprecations:"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long `cloud-init schema` may take before the data counts as not
/// checked (it takes about a quarter of a second).
const CHECK_SECS: u64 = 60;

/// Runs `cloud-init schema -c` on `text`, written to a private temporary
/// file (made with O_EXCL: never a name another user prepared).
fn verdict(program: &Path, text: &str) -> Verdict {
    let written = tempfile::Builder::new()
        .prefix("pvefleet-user-data-")
        .suffix(".yaml")
        .tempfile()
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()).map(|()| f));
    let tmp = match written {
        Ok(f) => f,
        Err(e) => return Verdict::Unchecked(format!("cannot write a temporary file: {e}")),
    };
    let file = tmp.path().to_path_buf();
    let child = Command::new(program)
        .args(["schema", "-c"])
        .arg(&file)
        .env("LC_ALL", "C.UTF-8")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return Verdict::Unchecked(format!("{}: {e}", program.display())),
    };
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(std::time::Duration::from_secs(CHECK_SECS)) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Verdict::Unchecked(format!("{}: {e}", program.display())),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            return Verdict::Unchecked(format!(
                "{} did not answer within {CHECK_SECS} s",
                program.display()
            ));
        }
    };
    let said = [
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    ]
    .concat();
    if out.status.success() {
        return Verdict::Valid;
    }
    let msg = message(&said, &file);
    let judged = [
        "schema errors",
        "Invalid",
        "not valid yaml",
        "needs to begin with",
    ]
    .iter()
    .any(|w| msg.contains(w));
    if judged {
        Verdict::Rejected(msg)
    } else {
        Verdict::Unchecked(msg)
    }
}

/// How many `cloud-init schema` processes run at once (each takes about a
/// quarter of a second).
const AT_ONCE: usize = 4;

/// The verdict on each text, in order, [`AT_ONCE`] at a time.
fn verdicts(program: &Path, texts: &[&str]) -> Vec<Verdict> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(AT_ONCE) {
        std::thread::scope(|s| {
            let running: Vec<_> = chunk
                .iter()
                .map(|t| s.spawn(move || verdict(program, t)))
                .collect();
            for h in running {
                out.push(
                    h.join()
                        .unwrap_or_else(|_| Verdict::Unchecked("the check panicked".into())),
                );
            }
        });
    }
    out
}

/// Checks every `#cloud-config` file the VMs of `desired` would get;
/// reports the rejected ones as configuration errors (exit 2).
pub fn check(file: &str, desired: &Desired) -> Result<(), crate::ExitStatus> {
    // Each distinct file once, with the VMs (by index) that carry it.
    let mut texts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, vm) in desired.vms.iter().enumerate() {
        if let Some(u) = vm
            .user_data
            .as_ref()
            .filter(|u| u.text.starts_with("#cloud-config"))
        {
            texts.entry(u.text.as_str()).or_default().push(i);
        }
    }
    if texts.is_empty() {
        return Ok(());
    }
    let Some(program) = program() else {
        eprintln!(
            "note: cloud-init is not installed, so the user_data of {} was not checked against its schema (apt-get install cloud-init)",
            crate::ui::count(texts.values().map(Vec::len).sum(), "VM", "VMs")
        );
        return Ok(());
    };
    let verdicts = verdicts(&program, &texts.keys().copied().collect::<Vec<_>>());
    let mut errors = Vec::new();
    for ((_, vms), verdict) in texts.iter().zip(verdicts) {
        match verdict {
            Verdict::Valid => {}
            Verdict::Unchecked(why) => {
                eprintln!("note: cloud-init could not check user_data: {why}");
            }
            Verdict::Rejected(why) => {
                for &i in vms {
                    let span = desired
                        .spans
                        .key(i, "user_data")
                        .or_else(|| desired.spans.key(i, "user_data_file"))
                        .or_else(|| desired.spans.vm(i));
                    errors.push(
                        ConfigError::at(
                            ErrorKind::Format,
                            span,
                            format!("user_data: cloud-init rejects it: {why}"),
                        )
                        .help("fix the cloud-config data ('cloud-init schema -c FILE' shows the same); see https://cloudinit.readthedocs.io/en/latest/reference/modules.html"),
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|e| e.span.map(|s| (s.line, s.col)).unwrap_or((0, 0)));
    let text = std::fs::read_to_string(file).unwrap_or_default();
    Err(crate::diag::config_errors(&ConfigReport {
        path: file.to_string(),
        text: pvefleet_config::validate::shown_text(&text),
        errors,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_lose_the_file_name_and_empty_headers() {
        let f = Path::new("/tmp/x.yaml");
        assert_eq!(
            message("Cloud config schema deprecations: \nError:\nCloud config schema errors: users: 5 is not of type 'string'\n", f),
            "Cloud config schema errors: users: 5 is not of type 'string'"
        );
        assert_eq!(
            message(
                "Invalid user-data /tmp/x.yaml\nError: Cloud config schema errors: users: 5\n",
                f
            ),
            "Invalid user-data user_data Error: Cloud config schema errors: users: 5"
        );
    }
}
