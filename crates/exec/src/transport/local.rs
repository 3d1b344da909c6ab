//! The local shell: `host: local` (pvefleet runs on the node itself) and
//! the built-in emulated host of `--simulate` (extra environment).

use super::shell::ShellLine;
use super::TransportError;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Runs lines with the local `/bin/sh`.
pub struct LocalTransport {
    env: BTreeMap<String, String>,
    /// Caps concurrent commands.
    slots: Arc<Semaphore>,
    lines: AtomicU64,
    /// Per-command timeout, in seconds.
    pub command_timeout: u64,
    /// `become: sudo`: Proxmox commands run through `sudo -n`.
    pub sudo: bool,
}

impl LocalTransport {
    /// A local `/bin/sh` transport with extra environment, at most
    /// `max_parallel` lines at once.
    pub fn new(env: BTreeMap<String, String>, max_parallel: usize) -> Self {
        Self {
            env,
            slots: Arc::new(Semaphore::new(max_parallel.max(1))),
            lines: AtomicU64::new(0),
            command_timeout: 3600,
            sudo: false,
        }
    }
}

#[async_trait::async_trait]
impl ShellLine for LocalTransport {
    fn destination(&self) -> String {
        "local".into()
    }

    fn command_timeout(&self) -> u64 {
        self.command_timeout
    }

    fn sudo(&self) -> bool {
        self.sudo
    }

    fn lines_sent(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    async fn open(&self) -> Result<(), TransportError> {
        Ok(())
    }

    async fn run_line(
        &self,
        line: &str,
        stdin: Option<&str>,
    ) -> Result<(Option<i32>, String, String), TransportError> {
        self.lines.fetch_add(1, Ordering::Relaxed);
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(line)
            .envs(&self.env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .map_err(|e| TransportError::Io(format!("cannot run /bin/sh: {e}")))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .await
                .map_err(|e| TransportError::Io(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        ))
    }

    async fn shut(&self) {}
}
