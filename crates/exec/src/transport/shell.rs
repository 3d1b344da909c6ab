//! What the SSH and local transports share: they send one shell line per
//! round trip ([`ShellLine`]), and every [`Transport`] operation is built
//! from such lines here.

use super::{Judge, StepOutput, Transport, TransportError};
use crate::script::{batch_line, checked_line, concurrent_line, parse_batch};
use pvefleet_model::shell::quote_argv;
use std::borrow::Cow;

/// The environment variable through which the cluster-lock script
/// ([`pvefleet_model::Command::CfsLock`], a `sh -c` of pvefleet's own) runs
/// its `mkdir`/`touch` of `/etc/pve/priv` through sudo.
const SUDO_VAR: &str = "PVEFLEET_SUDO=sudo -n";

/// `argvs` as the node runs them. With `sudo`, each goes through `sudo -n`
/// (never asking for a password: a refusal is an error at once), except
/// that pvefleet's own `sh -c` scripts run as the user and call sudo for
/// their privileged commands only, and the lock probe (`flock -n` of a VM's
/// config lock, CONTRACT §19) runs as the user: a sudoers rule cannot
/// allow it safely, and a probe that cannot open the lock file leaves the
/// VM alone.
fn as_run(argvs: &[Vec<String>], sudo: bool) -> Cow<'_, [Vec<String>]> {
    if !sudo {
        return Cow::Borrowed(argvs);
    }
    let wrap = |argv: &Vec<String>| -> Vec<String> {
        let prefix: &[&str] = match argv.first().map(String::as_str) {
            Some("flock") => &[],
            Some("sh") => &["env", SUDO_VAR],
            _ => &["sudo", "-n"],
        };
        prefix
            .iter()
            .map(|w| w.to_string())
            .chain(argv.iter().cloned())
            .collect()
    };
    Cow::Owned(argvs.iter().map(wrap).collect())
}

/// The first refusal of sudo in `outs` (sudo's own messages start with
/// `sudo: `, also where the lock script quotes them), as an error.
fn sudo_refusal(host: String, sudo: bool, outs: &[StepOutput]) -> Result<(), TransportError> {
    if !sudo {
        return Ok(());
    }
    match outs
        .iter()
        .flat_map(|o| o.stderr.lines())
        .find(|l| l.contains("sudo: ") || l.contains(" is not allowed to execute "))
    {
        Some(line) => Err(TransportError::Sudo {
            host,
            message: line.trim().to_string(),
        }),
        None => Ok(()),
    }
}

/// A transport that runs one `/bin/sh` line per round trip.
#[async_trait::async_trait]
pub trait ShellLine: Send + Sync {
    /// Where the lines go, for messages.
    fn destination(&self) -> String;

    /// Seconds a single command may run on the node.
    fn command_timeout(&self) -> u64;

    /// True when Proxmox commands go through `sudo -n` (`become: sudo`).
    fn sudo(&self) -> bool {
        false
    }

    /// Lines sent so far.
    fn lines_sent(&self) -> u64;

    /// Opens the connection (nothing for a local shell).
    async fn open(&self) -> Result<(), TransportError>;

    /// Runs `line` with `stdin`; returns the shell's exit status, stdout and
    /// stderr.
    async fn run_line(
        &self,
        line: &str,
        stdin: Option<&str>,
    ) -> Result<(Option<i32>, String, String), TransportError>;

    /// Closes the connection.
    async fn shut(&self);
}

/// `argv` as a shell line under `timeout -k 5 N`, like every command of a
/// batch: a command the client gives up on does not keep running.
fn bounded_line<T: ShellLine + ?Sized>(t: &T, argv: &[&str]) -> Result<String, TransportError> {
    let timeout = t.command_timeout().max(1).to_string();
    let mut words = vec!["timeout", "-k", "5", timeout.as_str()];
    words.extend_from_slice(argv);
    Ok(quote_argv(&words)?)
}

/// Removes upload folders that earlier runs left behind (a run killed before
/// its cleanup): `/tmp/pvefleet-<run>-<node>`, older than two hours.
const SWEEP: &str = "find /tmp -maxdepth 1 -type d -name 'pvefleet-????????????-*' -mmin +120 -exec rm -rf {} + 2>/dev/null;";

/// Seconds the client waits for a line beyond its commands' own timeouts
/// (the connection, the remote shell, `timeout -k`'s grace).
const CLIENT_GRACE: u64 = 15;

/// Waits for `line` at most as long as its `commands` may run on the node,
/// plus [`CLIENT_GRACE`]: a node that stops answering ends the wait.
async fn bounded<T: ShellLine + ?Sized, F>(
    t: &T,
    commands: usize,
    line: F,
) -> Result<(Option<i32>, String, String), TransportError>
where
    F: std::future::Future<Output = Result<(Option<i32>, String, String), TransportError>>,
{
    let per = t.command_timeout().max(1);
    let n = u64::try_from(commands.max(1)).unwrap_or(u64::MAX);
    let limit = per
        .saturating_add(5)
        .saturating_mul(n)
        .saturating_add(CLIENT_GRACE);
    match tokio::time::timeout(std::time::Duration::from_secs(limit), line).await {
        Ok(r) => r,
        Err(_) => Err(TransportError::Disconnected {
            host: t.destination(),
            message: format!("no answer within {limit} s (--command-timeout {per})"),
        }),
    }
}

/// A line whose commands did not all report back: the connection or the
/// remote shell was lost, with what it said and how it ended.
fn lost(host: String, exit: Option<i32>, stderr: &str) -> TransportError {
    let how = exit
        .map(|e| e.to_string())
        .unwrap_or_else(|| "signal".into());
    TransportError::Disconnected {
        host,
        message: format!("{} (exit {how})", stderr.trim()),
    }
}

#[async_trait::async_trait]
impl<T: ShellLine> Transport for T {
    fn describe(&self) -> String {
        self.destination()
    }

    fn round_trips(&self) -> u64 {
        self.lines_sent()
    }

    async fn connect(&self) -> Result<(), TransportError> {
        self.open().await
    }

    async fn run_batch(
        &self,
        argvs: &[Vec<String>],
        stop_on_error: bool,
    ) -> Result<Vec<StepOutput>, TransportError> {
        let line = batch_line(
            &as_run(argvs, self.sudo()),
            stop_on_error,
            self.command_timeout(),
        )?;
        let (exit, stdout, stderr) = bounded(self, argvs.len(), self.run_line(&line, None)).await?;
        let outs = parse_batch(&stdout, &stderr, argvs.len());
        if outs.iter().all(|o| o.exit.is_none()) && exit != Some(0) {
            // The shell itself failed (e.g. ssh exit 255 on a dropped connection).
            return Err(lost(self.destination(), exit, &stderr));
        }
        sudo_refusal(self.destination(), self.sudo(), &outs)?;
        Ok(outs)
    }

    async fn run_checked(
        &self,
        argvs: &[Vec<String>],
        judges: &[Judge],
    ) -> Result<Vec<StepOutput>, TransportError> {
        let line = checked_line(&as_run(argvs, self.sudo()), judges, self.command_timeout())?;
        let (exit, stdout, stderr) = bounded(self, argvs.len(), self.run_line(&line, None)).await?;
        let outs = parse_batch(&stdout, &stderr, argvs.len());
        if outs.iter().all(|o| o.exit.is_none()) && exit != Some(0) {
            return Err(lost(self.destination(), exit, &stderr));
        }
        sudo_refusal(self.destination(), self.sudo(), &outs)?;
        Ok(outs)
    }

    async fn run_concurrent(
        &self,
        argvs: &[Vec<String>],
    ) -> Result<Vec<StepOutput>, TransportError> {
        let line = concurrent_line(&as_run(argvs, self.sudo()), self.command_timeout())?;
        let (exit, stdout, stderr) = bounded(self, 1, self.run_line(&line, None)).await?;
        let outs = parse_batch(&stdout, &stderr, argvs.len());
        if outs.iter().any(|o| o.exit.is_none()) {
            return Err(lost(self.destination(), exit, &stderr));
        }
        sudo_refusal(self.destination(), self.sudo(), &outs)?;
        Ok(outs)
    }

    async fn upload(&self, dir: &str, path: &str, content: &str) -> Result<(), TransportError> {
        let qdir = quote_argv(&[dir])?;
        let qpath = quote_argv(&[path])?;
        // Folders of earlier runs that were killed before their cleanup go
        // first (only ones this user may remove, older than two hours).
        let script = format!(
            "{SWEEP} umask 077; mkdir -m 700 {qdir} 2>/dev/null; [ -d {qdir} ] && [ ! -L {qdir} ] && [ -O {qdir} ] && cat > {qpath}"
        );
        let line = bounded_line(self, &["sh", "-c", &script])?;
        let (exit, _, stderr) = bounded(self, 1, self.run_line(&line, Some(content))).await?;
        if exit == Some(0) {
            Ok(())
        } else {
            Err(TransportError::Io(format!(
                "cannot write {path} on {}: {}",
                self.destination(),
                stderr.trim()
            )))
        }
    }

    async fn remove_dir(&self, dir: &str) {
        if let Ok(line) = bounded_line(self, &["rm", "-rf", "--", dir]) {
            let _ = bounded(self, 1, self.run_line(&line, None)).await;
        }
    }

    async fn close(&self) {
        self.shut().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn sudo_wraps_proxmox_commands_and_leaves_scripts_and_probes_as_the_user() {
        let argvs = vec![
            words(&["qm", "start", "100"]),
            words(&["sh", "-c", "script", "name"]),
            words(&["flock", "-n", "/var/lock/qemu-server/lock-100.conf", "true"]),
        ];
        assert_eq!(as_run(&argvs, false).as_ref(), argvs.as_slice());
        let run = as_run(&argvs, true);
        assert_eq!(run[0], words(&["sudo", "-n", "qm", "start", "100"]));
        assert_eq!(
            run[1],
            words(&["env", "PVEFLEET_SUDO=sudo -n", "sh", "-c", "script", "name"])
        );
        assert_eq!(run[2], argvs[2]);
    }

    #[test]
    fn a_refusal_of_sudo_is_an_error_only_with_sudo() {
        let out = StepOutput {
            exit: Some(2),
            stdout: String::new(),
            stderr: "cannot take the cluster lock x: sudo: a password is required\n".into(),
        };
        let outs = [out];
        assert!(sudo_refusal("h".into(), false, &outs).is_ok());
        let e = sudo_refusal("h".into(), true, &outs).expect_err("refused");
        assert!(e.to_string().contains("sudo on h refused"), "{e}");
    }
}
