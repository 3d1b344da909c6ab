//! The system OpenSSH client with a pool of multiplexed master connections
//! per node, so `~/.ssh/config`, agents, ProxyJump and known_hosts behave as
//! for `ssh`.

use super::shell::ShellLine;
use super::TransportError;
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

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

/// Seconds a master connection stays after its last session ended.
pub const MASTER_IDLE_SECS: usize = 10;

/// One multiplexed master connection and its share of sessions.
struct Master {
    session: Mutex<Option<Arc<Session>>>,
    slots: Arc<Semaphore>,
}

/// The system OpenSSH client, with a pool of multiplexed master
/// connections to one node.
pub struct SshTransport {
    dest: String,
    user: Option<String>,
    port: Option<u16>,
    options: SshOptions,
    masters: Vec<Master>,
    next: AtomicUsize,
    /// Round trips made (shell lines sent), for statistics.
    round_trips: AtomicU64,
    /// Per-command timeout on the node, in seconds.
    pub command_timeout: u64,
    /// `become: sudo`: Proxmox commands run through `sudo -n`.
    pub sudo: bool,
}

fn is_host_key_error(msg: &str) -> bool {
    msg.contains("Host key verification failed")
        || msg.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || msg.contains("No ED25519 host key is known")
        || msg.contains("host key is known")
}

impl SshTransport {
    /// An SSH transport for `concurrency` commands at once: one master
    /// connection per [`SESSIONS_PER_MASTER`] commands, opened on first use.
    pub fn new(
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
            dest: dest.to_string(),
            user: user.map(str::to_string),
            port,
            options,
            masters,
            next: AtomicUsize::new(0),
            round_trips: AtomicU64::new(0),
            command_timeout: 3600,
            sudo: false,
        }
    }

    async fn session(&self, master: usize, fresh: bool) -> Result<Arc<Session>, TransportError> {
        let (dest, user, port, options) = (&self.dest, &self.user, &self.port, &self.options);
        let Some(m) = self.masters.get(master) else {
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
        // The master ends once idle for this long, so it does not outlive
        // pvefleet by more than that whatever ends the process (SIGKILL
        // included: sessions are opened over the control socket from this
        // process, and die with it). A master that ended while the run was
        // idle is opened again on the next command.
        if let Some(idle) = std::num::NonZeroUsize::new(MASTER_IDLE_SECS) {
            b.control_persist(ControlPersist::IdleFor(idle));
        }
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

    /// Closes the master connections.
    async fn close_masters(&self) {
        for m in &self.masters {
            if let Some(s) = m.session.lock().await.take() {
                if let Ok(s) = Arc::try_unwrap(s) {
                    let _ = s.close().await;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl ShellLine for SshTransport {
    fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.dest),
            None => self.dest.clone(),
        }
    }

    fn command_timeout(&self) -> u64 {
        self.command_timeout
    }

    fn sudo(&self) -> bool {
        self.sudo
    }

    fn lines_sent(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn open(&self) -> Result<(), TransportError> {
        self.session(0, false).await.map(|_| ())
    }

    async fn run_line(
        &self,
        line: &str,
        stdin: Option<&str>,
    ) -> Result<(Option<i32>, String, String), TransportError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        // A master with a free session, else the next one in turn.
        let (index, _permit) = match self
            .masters
            .iter()
            .enumerate()
            .find_map(|(i, m)| m.slots.clone().try_acquire_owned().ok().map(|p| (i, p)))
        {
            Some(free) => free,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.masters.len();
                let p = self.masters[i]
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
                        host: self.dest.clone(),
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
                    *self.masters[index].session.lock().await = None;
                    Err(TransportError::Disconnected {
                        host: self.dest.clone(),
                        message: e.to_string(),
                    })
                }
            };
        }
        Err(TransportError::Disconnected {
            host: self.dest.clone(),
            message: "session refused".into(),
        })
    }

    async fn shut(&self) {
        self.close_masters().await;
    }
}
