//! How argv reaches a node: the [`Transport`] trait, implemented by the
//! system OpenSSH client with multiplexed master connections ([`ssh`]), the
//! local shell ([`local`]: `host: local` and the built-in emulated host of
//! `--simulate`), and a scripted fake for tests ([`fake`]).
//!
//! The SSH and local transports send shell lines ([`shell`]); every word of
//! every command is quoted by [`pvefleet_model::shell`] there and nowhere
//! else.

pub mod fake;
pub mod local;
pub mod shell;
pub mod ssh;

pub use crate::script::{Judge, StepOutput};
pub use fake::FakeTransport;
pub use local::LocalTransport;
pub use ssh::{SshOptions, SshTransport, SESSIONS_PER_MASTER};

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
    /// sudo refused a command (`become: sudo`): it asked for a password, or
    /// its rules do not allow the command. Nothing of it ran.
    #[error("sudo on {host} refused: {message}")]
    Sudo {
        /// The destination.
        host: String,
        /// What sudo said.
        message: String,
    },
    /// A word cannot be sent through a shell.
    #[error(transparent)]
    Quote(#[from] pvefleet_model::shell::QuoteError),
    /// A local process could not be started.
    #[error("{0}")]
    Io(String),
}

/// A way to run commands on one node.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Where this transport goes, for messages.
    fn describe(&self) -> String;

    /// Round trips made so far.
    fn round_trips(&self) -> u64;

    /// Opens the connection now, so that a refused host key stops the run
    /// before anything is sent.
    async fn connect(&self) -> Result<(), TransportError>;

    /// Runs commands in one round trip. With `stop_on_error`, commands
    /// after the first failure do not run (their `exit` is `None`).
    async fn run_batch(
        &self,
        argvs: &[Vec<String>],
        stop_on_error: bool,
    ) -> Result<Vec<StepOutput>, TransportError>;

    /// Runs commands in one round trip that stops at the first failure,
    /// each judged by its [`Judge`] (by exit status, or also by stderr).
    async fn run_checked(
        &self,
        argvs: &[Vec<String>],
        judges: &[Judge],
    ) -> Result<Vec<StepOutput>, TransportError>;

    /// Runs commands at the same time on the node, in one round trip.
    async fn run_concurrent(
        &self,
        argvs: &[Vec<String>],
    ) -> Result<Vec<StepOutput>, TransportError>;

    /// Writes `content` to `path` with mode 0600 inside the private folder
    /// `dir` (created with mode 0700 and checked to be ours).
    async fn upload(&self, dir: &str, path: &str, content: &str) -> Result<(), TransportError>;

    /// Removes a private upload folder.
    async fn remove_dir(&self, dir: &str);

    /// Closes the connections.
    async fn close(&self);

    /// Runs one command.
    async fn run(&self, argv: Vec<String>) -> Result<StepOutput, TransportError> {
        let mut v = self.run_batch(&[argv], false).await?;
        Ok(v.pop().unwrap_or_default())
    }
}
