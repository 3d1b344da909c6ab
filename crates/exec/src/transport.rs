//! How argv reaches a node: the system OpenSSH client with one multiplexed
//! master connection per node (so `~/.ssh/config`, agents, ProxyJump and
//! known_hosts behave as for `ssh`), or the local shell (`host: local`, and
//! the built-in emulated host of `--simulate`).

use crate::script::{batch_line, concurrent_line, parse_batch, StepOutput};
use openssh::{KnownHosts, Session, SessionBuilder};
use pvefleet_model::shell::quote_argv;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

/// Why a command did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be set up. Nothing ran.
    #[error("cannot connect to {host}: {message}")]
    Connect {
        /// The destination.
        host: String,
        /// What ssh said.
        message: String,
        /// True when the host key was unknown or changed.
        host_key: bool,
    },
    /// The connection broke while a command ran: it may or may not have run.
    #[error("connection to {host} lost: {message}")]
    Disconnected {
        /// The destination.
        host: String,
        /// Details.
        message: String,
    },
    /// A word cannot be sent through a shell.
    #[error(transparent)]
    Quote(#[from] pvefleet_model::shell::QuoteError),
    /// A local process could not be started.
    #[error("{0}")]
    Io(String),
}

/// SSH settings shared by all nodes.
#[derive(Clone, Debug, Default)]
pub struct SshOptions {
    /// `-F FILE`.
    pub config_file: Option<String>,
    /// Accept unknown host keys (`StrictHostKeyChecking accept-new`).
    pub accept_new_host_key: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

/// Commands at once per master connection: below sshd's default
/// `MaxSessions 10`, which Proxmox hosts keep.
pub const SESSIONS_PER_MASTER: usize = 8;

/// One multiplexed master connection and its share of sessions.
struct Master {
    session: Mutex<Option<Arc<Session>>>,
    slots: Arc<Semaphore>,
}

/// A transport to one node.
pub struct Transport {
    kind: Kind,
    /// Caps concurrent local commands.
    local_slots: Arc<Semaphore>,
    /// Round trips made (shell lines sent), for statistics.
    round_trips: AtomicU64,
    /// Per-command timeout on the node, in seconds.
    pub command_timeout: u64,
}

enum Kind {
    Ssh {
        dest: String,
        user: Option<String>,
        port: Option<u16>,
        options: SshOptions,
        masters: Vec<Master>,
        next: AtomicUsize,
    },
    Local {
        env: BTreeMap<String, String>,
    },
}

fn is_host_key_error(msg: &str) -> bool {
    msg.contains("Host key verification failed")
        || msg.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || msg.contains("No ED25519 host key is known")
        || msg.contains("host key is known")
}

impl Transport {
    /// An SSH transport for `concurrency` commands at once: one master
    /// connection per [`SESSIONS_PER_MASTER`] commands, opened on first use.
    pub fn ssh(
        dest: &str,
        user: Option<&str>,
        port: Option<u16>,
        options: SshOptions,
        concurrency: usize,
    ) -> Self {
        let count = concurrency.max(1).div_ceil(SESSIONS_PER_MASTER);
        let masters = (0..count)
            .map(|i| Master {
                session: Mutex::new(None),
                slots: Arc::new(Semaphore::new(if i + 1 < count {
                    SESSIONS_PER_MASTER
                } else {
                    concurrency.max(1) - SESSIONS_PER_MASTER * i
                })),
            })
            .collect();
        Self {
            kind: Kind::Ssh {
                dest: dest.to_string(),
                user: user.map(str::to_string),
                port,
                options,
                masters,
                next: AtomicUsize::new(0),
            },
            local_slots: Arc::new(Semaphore::new(1)),
            round_trips: AtomicU64::new(0),
            command_timeout: 3600,
        }
    }

    /// Round trips made so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// A local `/bin/sh` transport with extra environment.
    pub fn local(env: BTreeMap<String, String>, max_parallel: usize) -> Self {
        Self {
            kind: Kind::Local { env },
            local_slots: Arc::new(Semaphore::new(max_parallel.max(1))),
            round_trips: AtomicU64::new(0),
            command_timeout: 3600,
        }
    }

    /// Where this transport goes, for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Ssh { dest, user, .. } => match user {
                Some(u) => [u.as_str(), "@", dest].concat(),
                None => dest.clone(),
            },
            Kind::Local { .. } => "local".into(),
        }
    }

    async fn session(&self, master: usize, fresh: bool) -> Result<Arc<Session>, TransportError> {
        let Kind::Ssh {
            dest,
            user,
            port,
            options,
            masters,
            ..
        } = &self.kind
        else {
            return Err(TransportError::Io("not an ssh transport".into()));
        };
        let Some(m) = masters.get(master) else {
            return Err(TransportError::Io("no such master connection".into()));
        };
        let mut st = m.session.lock().await;
        if let Some(s) = st.as_ref() {
            if !fresh {
                return Ok(s.clone());
            }
        }
        let mut b = SessionBuilder::default();
        if let Some(u) = user {
            b.user(u.clone());
        }
        if let Some(p) = port {
            b.port(*p);
        }
        if let Some(f) = &options.config_file {
            b.config_file(f);
        }
        b.known_hosts_check(if options.accept_new_host_key {
            KnownHosts::Add
        } else {
            KnownHosts::Strict
        });
        if !options.connect_timeout.is_zero() {
            b.connect_timeout(options.connect_timeout);
        }
        b.server_alive_interval(Duration::from_secs(15));
        let session = b.connect_mux(dest).await.map_err(|e| {
            let mut message = e.to_string();
            let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            TransportError::Connect {
                host: dest.clone(),
                host_key: is_host_key_error(&message),
                message,
            }
        })?;
        let s = Arc::new(session);
        *st = Some(s.clone());
        Ok(s)
    }

    /// Opens the connection now (SSH), so that a refused host key stops the
    /// run before anything is sent.
    pub async fn connect(&self) -> Result<(), TransportError> {
        match &self.kind {
            Kind::Ssh { .. } => self.session(0, false).await.map(|_| ()),
            Kind::Local { .. } => Ok(()),
        }
    }

    async fn run_line(
        &self,
        line: &str,
        stdin: Option<&str>,
    ) -> Result<(Option<i32>, String, String), TransportError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match &self.kind {
            Kind::Local { env } => {
                let _permit = self
                    .local_slots
                    .acquire()
                    .await
                    .map_err(|e| TransportError::Io(e.to_string()))?;
                let mut cmd = tokio::process::Command::new("/bin/sh");
                cmd.arg("-c")
                    .arg(line)
                    .envs(env)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                cmd.stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
                let mut child = cmd.spawn().map_err(|e| {
                    TransportError::Io(["cannot run /bin/sh: ", &e.to_string()].concat())
                })?;
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
            Kind::Ssh {
                dest,
                masters,
                next,
                ..
            } => {
                // A master with a free session, else the next one in turn.
                let (index, _permit) = match masters
                    .iter()
                    .enumerate()
                    .find_map(|(i, m)| m.slots.clone().try_acquire_owned().ok().map(|p| (i, p)))
                {
                    Some(free) => free,
                    None => {
                        let i = next.fetch_add(1, Ordering::Relaxed) % masters.len();
                        let p = masters[i]
                            .slots
                            .clone()
                            .acquire_owned()
                            .await
                            .map_err(|e| TransportError::Io(e.to_string()))?;
                        (i, p)
                    }
                };
                let mut session = self.session(index, false).await?;
                let mut pause = Duration::from_millis(200);
                for attempt in 0..4 {
                    let mut cmd = session.raw_command(line);
                    cmd.stdout(openssh::Stdio::piped())
                        .stderr(openssh::Stdio::piped());
                    cmd.stdin(if stdin.is_some() {
                        openssh::Stdio::piped()
                    } else {
                        openssh::Stdio::null()
                    });
                    let child = cmd.spawn().await;
                    let mut child = match child {
                        Ok(c) => c,
                        Err(e) => {
                            // The session could not be opened, so nothing ran
                            // and trying again is safe: reconnect first (the
                            // master may have died), then wait a little
                            // between tries (sshd refuses sessions beyond
                            // MaxSessions).
                            if attempt == 0 {
                                session = self.session(index, true).await?;
                                continue;
                            }
                            if attempt < 3 {
                                tokio::time::sleep(pause).await;
                                pause *= 2;
                                continue;
                            }
                            return Err(TransportError::Disconnected {
                                host: dest.clone(),
                                message: e.to_string(),
                            });
                        }
                    };
                    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin().take()) {
                        let _ = pipe.write_all(text.as_bytes()).await;
                        drop(pipe);
                    }
                    return match child.wait_with_output().await {
                        Ok(out) => Ok((
                            out.status.code(),
                            String::from_utf8_lossy(&out.stdout).into(),
                            String::from_utf8_lossy(&out.stderr).into(),
                        )),
                        Err(e) => {
                            // Drop the broken master so the next command reconnects.
                            *masters[index].session.lock().await = None;
                            Err(TransportError::Disconnected {
                                host: dest.clone(),
                                message: e.to_string(),
                            })
                        }
                    };
                }
                Err(TransportError::Disconnected {
                    host: dest.clone(),
                    message: "session refused".into(),
                })
            }
        }
    }

    /// Runs commands in one round trip. With `stop_on_error`, commands after
    /// the first failure do not run (their `exit` is `None`).
    pub async fn run_batch(
        &self,
        argvs: &[Vec<String>],
        stop_on_error: bool,
    ) -> Result<Vec<StepOutput>, TransportError> {
        let line = batch_line(argvs, stop_on_error, self.command_timeout)?;
        let (exit, stdout, stderr) = self.run_line(&line, None).await?;
        let outs = parse_batch(&stdout, &stderr, argvs.len());
        if outs.iter().all(|o| o.exit.is_none()) && exit != Some(0) {
            // The shell itself failed (e.g. ssh exit 255 on a dropped connection).
            return Err(self.lost(exit, &stderr));
        }
        Ok(outs)
    }

    /// Runs commands at the same time on the node, in one round trip.
    pub async fn run_concurrent(
        &self,
        argvs: &[Vec<String>],
    ) -> Result<Vec<StepOutput>, TransportError> {
        let line = concurrent_line(argvs, self.command_timeout)?;
        let (exit, stdout, stderr) = self.run_line(&line, None).await?;
        let outs = parse_batch(&stdout, &stderr, argvs.len());
        if outs.iter().any(|o| o.exit.is_none()) {
            return Err(self.lost(exit, &stderr));
        }
        Ok(outs)
    }

    /// A line whose commands did not all report back: the connection or
    /// the remote shell was lost, with what it said and how it ended.
    fn lost(&self, exit: Option<i32>, stderr: &str) -> TransportError {
        let how = exit
            .map(|e| e.to_string())
            .unwrap_or_else(|| "signal".into());
        TransportError::Disconnected {
            host: self.describe(),
            message: [stderr.trim(), " (exit ", &how, ")"].concat(),
        }
    }

    /// Runs one command.
    pub async fn run(&self, argv: Vec<String>) -> Result<StepOutput, TransportError> {
        let mut v = self.run_batch(&[argv], false).await?;
        Ok(v.pop().unwrap_or_default())
    }

    /// Writes `content` to `dir/name` with mode 0600 in a private folder
    /// (created with mode 0700 and checked to be ours).
    pub async fn upload(&self, dir: &str, path: &str, content: &str) -> Result<(), TransportError> {
        let qdir = quote_argv(&[dir])?;
        let qpath = quote_argv(&[path])?;
        let mut line = String::from("umask 077; mkdir -m 700 ");
        line.push_str(&qdir);
        line.push_str(" 2>/dev/null; [ -d ");
        line.push_str(&qdir);
        line.push_str(" ] && [ ! -L ");
        line.push_str(&qdir);
        line.push_str(" ] && [ -O ");
        line.push_str(&qdir);
        line.push_str(" ] && cat > ");
        line.push_str(&qpath);
        let (exit, _, stderr) = self.run_line(&line, Some(content)).await?;
        if exit == Some(0) {
            Ok(())
        } else {
            Err(TransportError::Io(
                [
                    "cannot write ",
                    path,
                    " on ",
                    &self.describe(),
                    ": ",
                    stderr.trim(),
                ]
                .concat(),
            ))
        }
    }

    /// Removes the private upload folder.
    pub async fn remove_dir(&self, dir: &str) {
        if let Ok(q) = quote_argv(&["rm", "-rf", "--", dir]) {
            let _ = self.run_line(&q, None).await;
        }
    }

    /// Closes the master connections.
    pub async fn close(&self) {
        if let Kind::Ssh { masters, .. } = &self.kind {
            for m in masters {
                if let Some(s) = m.session.lock().await.take() {
                    if let Ok(s) = Arc::try_unwrap(s) {
                        let _ = s.close().await;
                    }
                }
            }
        }
    }
}
