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

/// Runs `cloud-init schema -c` on `text`.
fn verdict(program: &Path, text: &str, n: usize) -> Verdict {
    let file = std::env::temp_dir().join(format!(
        "pvefleet-user-data-{}-{n}.yaml",
        std::process::id()
    ));
    if let Err(e) = std::fs::write(&file, text) {
        return Verdict::Unchecked(format!("cannot write {}: {e}", file.display()));
    }
    let out = Command::new(program)
        .args(["schema", "-c"])
        .arg(&file)
        .env("LC_ALL", "C.UTF-8")
        .output();
    let _ = std::fs::remove_file(&file);
    let out = match out {
        Ok(o) => o,
        Err(e) => return Verdict::Unchecked(format!("{}: {e}", program.display())),
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
    for (c, chunk) in texts.chunks(AT_ONCE).enumerate() {
        std::thread::scope(|s| {
            let running: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, t)| s.spawn(move || verdict(program, t, c * AT_ONCE + i)))
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
