//! A scripted transport for tests: it answers each command by the first
//! rule whose words start its argv, and records everything it was sent. No
//! process, no shell, no network.

use super::{Judge, StepOutput, Transport, TransportError};
use crate::script::errors_in;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What a scripted command answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeReply {
    /// Exit 0 with this stdout.
    Ok(String),
    /// Exit 0 with this stdout and stderr (warnings).
    OkWithStderr(String, String),
    /// A non-zero exit with this stderr.
    Fail(i32, String),
    /// The connection drops while this command runs.
    Lost,
}

struct Rule {
    prefix: Vec<String>,
    reply: FakeReply,
    /// Used up after one answer.
    once: bool,
    used: bool,
}

/// A transport that answers from a script.
#[derive(Default)]
pub struct FakeTransport {
    rules: Mutex<Vec<Rule>>,
    sent: Mutex<Vec<Vec<String>>>,
    uploads: Mutex<Vec<(String, String)>>,
    removed: Mutex<Vec<String>>,
    round_trips: AtomicU64,
}

impl FakeTransport {
    /// A transport on which every command succeeds with no output, until
    /// rules say otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, prefix: &[&str], reply: FakeReply, once: bool) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.push(Rule {
                prefix: prefix.iter().map(|w| w.to_string()).collect(),
                reply,
                once,
                used: false,
            });
        }
    }

    /// Commands starting with `prefix` answer `reply` every time (after
    /// any earlier matching rule).
    pub fn always(&self, prefix: &[&str], reply: FakeReply) -> &Self {
        self.add(prefix, reply, false);
        self
    }

    /// The next command starting with `prefix` answers `reply`, once.
    pub fn once(&self, prefix: &[&str], reply: FakeReply) -> &Self {
        self.add(prefix, reply, true);
        self
    }

    /// Every argv sent so far, in order.
    pub fn sent(&self) -> Vec<Vec<String>> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The argvs sent so far, each joined with spaces.
    pub fn sent_lines(&self) -> Vec<String> {
        self.sent().iter().map(|a| a.join(" ")).collect()
    }

    /// The files uploaded: (path, content).
    pub fn uploads(&self) -> Vec<(String, String)> {
        self.uploads.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// The folders removed.
    pub fn removed(&self) -> Vec<String> {
        self.removed.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn reply(&self, argv: &[String]) -> FakeReply {
        let Ok(mut rules) = self.rules.lock() else {
            return FakeReply::Lost;
        };
        let hit = rules
            .iter_mut()
            .find(|r| !(r.once && r.used) && argv.starts_with(&r.prefix));
        match hit {
            Some(rule) => {
                rule.used = true;
                rule.reply.clone()
            }
            None => FakeReply::Ok(String::new()),
        }
    }

    /// The scripted answer to `argv`, or the scripted drop.
    fn answer(&self, argv: &[String]) -> Result<StepOutput, TransportError> {
        Ok(match self.reply(argv) {
            FakeReply::Ok(stdout) => StepOutput {
                exit: Some(0),
                stdout,
                stderr: String::new(),
            },
            FakeReply::OkWithStderr(stdout, stderr) => StepOutput {
                exit: Some(0),
                stdout,
                stderr,
            },
            FakeReply::Fail(code, stderr) => StepOutput {
                exit: Some(code),
                stdout: String::new(),
                stderr,
            },
            FakeReply::Lost => return Err(lost()),
        })
    }

    fn record(&self, argv: &[String]) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(argv.to_vec());
        }
    }
}

fn lost() -> TransportError {
    TransportError::Disconnected {
        host: "fake".into(),
        message: "scripted drop".into(),
    }
}

#[async_trait::async_trait]
impl Transport for FakeTransport {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn connect(&self) -> Result<(), TransportError> {
        Ok(())
    }

    async fn run_batch(
        &self,
        argvs: &[Vec<String>],
        stop_on_error: bool,
    ) -> Result<Vec<StepOutput>, TransportError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut outs = Vec::new();
        let mut stopped = false;
        for argv in argvs {
            if stopped {
                outs.push(StepOutput::default());
                continue;
            }
            self.record(argv);
            let out = self.answer(argv)?;
            stopped = stop_on_error && !out.success();
            outs.push(out);
        }
        Ok(outs)
    }

    async fn run_checked(
        &self,
        argvs: &[Vec<String>],
        judges: &[Judge],
    ) -> Result<Vec<StepOutput>, TransportError> {
        // As the shell line does: a command judged by stderr too stops the
        // line when it printed more than warnings.
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut outs = Vec::new();
        let mut stopped = false;
        for (i, argv) in argvs.iter().enumerate() {
            if stopped {
                outs.push(StepOutput::default());
                continue;
            }
            self.record(argv);
            let out = self.answer(argv)?;
            let by_stderr = judges.get(i) == Some(&Judge::ExitAndStderr);
            stopped = !out.success() || (by_stderr && !errors_in(&out.stderr).is_empty());
            outs.push(out);
        }
        Ok(outs)
    }

    async fn run_concurrent(
        &self,
        argvs: &[Vec<String>],
    ) -> Result<Vec<StepOutput>, TransportError> {
        self.run_batch(argvs, false).await
    }

    async fn upload(&self, _dir: &str, path: &str, content: &str) -> Result<(), TransportError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let argv = vec!["upload".to_string(), path.to_string()];
        self.record(&argv);
        match self.reply(&argv) {
            FakeReply::Ok(_) | FakeReply::OkWithStderr(..) => {
                if let Ok(mut u) = self.uploads.lock() {
                    u.push((path.to_string(), content.to_string()));
                }
                Ok(())
            }
            FakeReply::Fail(_, stderr) => Err(TransportError::Io(stderr)),
            FakeReply::Lost => Err(lost()),
        }
    }

    async fn remove_dir(&self, dir: &str) {
        if let Ok(mut r) = self.removed.lock() {
            r.push(dir.to_string());
        }
    }

    async fn close(&self) {}
}
