//! Several commands in one remote shell line, with each one's output and
//! exit status reported back separately.
//!
//! After every command the line prints a marker (`\n` + `\x1f` +
//! `PVEFLEET-STEP <i> <status>`) to both stdout and stderr, so the outputs
//! can be split per command. Every word of every command is quoted by
//! [`pvefleet_model::shell`]; the glue is fixed text. Each command runs
//! under `timeout -k 5 N`, so a command the client gave up on does not keep
//! running on the node.

use pvefleet_model::shell::{quote_argv, QuoteError};

const MARK: &str = "\u{1f}PVEFLEET-STEP ";

/// Printed first on both streams: whatever the remote user's shell rc files
/// print before it is not a command's output.
const BEGIN: &str = "\u{1f}PVEFLEET-BEGIN\n";
const BEGIN_SHELL: &str = "printf '\\037PVEFLEET-BEGIN\\n'; printf '\\037PVEFLEET-BEGIN\\n' >&2; ";

/// How the remote shell judges a command of a line that stops at the first
/// failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// By its exit status.
    Exit,
    /// By its exit status, and as failed when it printed anything on stderr
    /// but warnings ([`is_warning`]): tasks that exit 0 when they failed
    /// inside (`qm disk resize`, `qm template`, CONTRACT §1.4).
    ExitAndStderr,
}

/// Beginnings of the stderr lines that successful Proxmox commands print:
/// the task summary of a task with warnings, and lvm2's notices and
/// thin-pool over-provisioning warnings (CONTRACT §1.3, §2).
const WARNING_STARTS: &[&str] = &[
    "WARNING: ",
    "WARN: ",
    "Task finished with ",
    "For thin pool auto extension",
    "Logical volume ",
    "Size of logical volume ",
    "Image resized.",
    "trying to acquire cfs lock",
];

/// True for a stderr line a successful command may print (blank lines too).
pub fn is_warning(line: &str) -> bool {
    let l = line.trim();
    l.is_empty() || WARNING_STARTS.iter().any(|w| l.starts_with(w.trim_end()))
}

/// The stderr lines that are not warnings.
pub fn errors_in(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !is_warning(l)).collect()
}

/// The extended regular expression of [`is_warning`] for `grep -E`.
fn warning_ere() -> String {
    let alts: Vec<String> = WARNING_STARTS
        .iter()
        .map(|w| {
            w.trim_end()
                .chars()
                .map(|c| match c {
                    '(' | ')' | '.' | '!' | '*' | '+' | '?' | '[' | ']' | '^' | '$' | '|'
                    | '\\' | '{' | '}' => format!("\\{c}"),
                    ' ' => "[[:space:]]".into(),
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    format!("^[[:space:]]*({}|$)", alts.join("|"))
}

/// One command's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOutput {
    /// Exit status (`None`: it did not run, an earlier command failed).
    pub exit: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl StepOutput {
    /// True when it ran and exited 0.
    pub fn success(&self) -> bool {
        self.exit == Some(0)
    }
}

/// Builds the shell line for `argvs`. With `stop_on_error`, the first
/// failing command ends the line.
pub fn batch_line(
    argvs: &[Vec<String>],
    stop_on_error: bool,
    timeout_secs: u64,
) -> Result<String, QuoteError> {
    let judges = vec![Judge::Exit; argvs.len()];
    line_of(
        argvs,
        stop_on_error.then_some(judges.as_slice()),
        timeout_secs,
    )
}

/// Builds the shell line for `argvs` that stops at the first failure, each
/// command judged by `judges[i]`: a command judged by its stderr too has
/// that stderr kept in a private file, checked, then passed on.
pub fn checked_line(
    argvs: &[Vec<String>],
    judges: &[Judge],
    timeout_secs: u64,
) -> Result<String, QuoteError> {
    line_of(argvs, Some(judges), timeout_secs)
}

fn line_of(
    argvs: &[Vec<String>],
    stop: Option<&[Judge]>,
    timeout_secs: u64,
) -> Result<String, QuoteError> {
    let timeout = timeout_secs.max(1).to_string();
    let mut line = String::from(BEGIN_SHELL);
    // A line that does not stop at a failure (a claim and its lock
    // release, a rollback, reads) runs to its end when the session is lost
    // (each command bounded by its timeout) instead of dying on its next
    // write to the closed channel, so a lock it took is released. A line of
    // a VM's steps dies there, as the client that gave up on it may roll
    // the VM back meanwhile.
    if stop.is_none() {
        line.push_str("trap '' PIPE; ");
    }
    let judge = |i: usize| stop.and_then(|j| j.get(i).copied()).unwrap_or(Judge::Exit);
    if (0..argvs.len()).any(|i| judge(i) == Judge::ExitAndStderr) {
        line.push_str("e=$(mktemp) || exit 1; trap 'rm -f \"$e\"' EXIT; ");
    }
    for (i, argv) in argvs.iter().enumerate() {
        let mut words: Vec<String> =
            vec!["timeout".into(), "-k".into(), "5".into(), timeout.clone()];
        words.extend(argv.iter().cloned());
        line.push_str(&quote_argv(&words)?);
        line.push_str(" </dev/null");
        let by_stderr = judge(i) == Judge::ExitAndStderr;
        if by_stderr {
            line.push_str(&format!(
                " 2>\"$e\"; s=$?; cat \"$e\" >&2; f=0; [ \"$s\" -eq 0 ] && grep -qvE {} \"$e\" && f=1",
                quote_argv(&[warning_ere()])?
            ));
        } else {
            line.push_str("; s=$?; f=0");
        }
        line.push_str(&format!(
            "; printf '\\n\\037PVEFLEET-STEP %s %s\\n' {i} \"$s\"; printf '\\n\\037PVEFLEET-STEP %s %s\\n' {i} \"$s\" >&2; "
        ));
        if stop.is_some() {
            line.push_str("[ \"$s\" -eq 0 ] && [ \"$f\" -eq 0 ] || exit 0; ");
        }
    }
    line.push_str("exit 0");
    Ok(line)
}

/// Builds one shell line that runs `argvs` at the same time on the node and
/// reports each one's output and status as [`batch_line`] does: every
/// command runs in the background with its output in a private folder
/// (`mktemp -d`), and after `wait` the outputs are printed in order.
pub fn concurrent_line(argvs: &[Vec<String>], timeout_secs: u64) -> Result<String, QuoteError> {
    let timeout = timeout_secs.max(1).to_string();
    let mut line = String::from(BEGIN_SHELL);
    // The folder goes when the shell ends, also when the connection drops
    // and the shell's next write to it fails.
    line.push_str(
        "d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT; trap 'exit 129' HUP INT PIPE TERM; ",
    );
    for (i, argv) in argvs.iter().enumerate() {
        let n = i.to_string();
        let mut words: Vec<String> =
            vec!["timeout".into(), "-k".into(), "5".into(), timeout.clone()];
        words.extend(argv.iter().cloned());
        line.push_str("( ");
        line.push_str(&quote_argv(&words)?);
        for (redirect, ext) in [(" </dev/null >\"$d/", ".o\""), (" 2>\"$d/", ".e\"")] {
            line.push_str(redirect);
            line.push_str(&n);
            line.push_str(ext);
        }
        line.push_str("; echo $? >\"$d/");
        line.push_str(&n);
        line.push_str(".s\" ) & ");
    }
    line.push_str("wait; for i in");
    for i in 0..argvs.len() {
        line.push(' ');
        line.push_str(&i.to_string());
    }
    line.push_str("; do s=$(cat \"$d/$i.s\"); cat \"$d/$i.o\"; printf '\\n\\037PVEFLEET-STEP %s %s\\n' \"$i\" \"$s\"; cat \"$d/$i.e\" >&2; printf '\\n\\037PVEFLEET-STEP %s %s\\n' \"$i\" \"$s\" >&2; done; exit 0");
    Ok(line)
}

fn split(text: &str, n: usize) -> Vec<(Option<i32>, String)> {
    let mut out = vec![(None, String::new()); n];
    let mut rest = text.split_once(BEGIN).map_or(text, |(_, after)| after);
    while let Some(pos) = rest.find(MARK) {
        let before = &rest[..pos];
        let after = &rest[pos + MARK.len()..];
        let (head, tail) = after.split_once('\n').unwrap_or((after, ""));
        let mut it = head.split_whitespace();
        let idx: Option<usize> = it.next().and_then(|v| v.parse().ok());
        let status: Option<i32> = it.next().and_then(|v| v.parse().ok());
        if let Some(i) = idx.filter(|i| *i < n) {
            let body = before.strip_suffix('\n').unwrap_or(before);
            out[i] = (status, body.to_string());
        }
        rest = tail;
    }
    out
}

/// Splits the outputs of a [`batch_line`] run into per-command results.
pub fn parse_batch(stdout: &str, stderr: &str, n: usize) -> Vec<StepOutput> {
    let outs = split(stdout, n);
    let errs = split(stderr, n);
    outs.into_iter()
        .zip(errs)
        .map(|((exit, stdout), (exit2, stderr))| StepOutput {
            exit: exit.or(exit2),
            stdout,
            stderr,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn run(line: &str) -> (String, String) {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .output()
            .expect("sh runs");
        (
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    #[test]
    fn splits_outputs_and_stops_on_error() {
        let argvs = vec![
            vec!["printf".into(), "a;b".into()],
            vec!["sh".into(), "-c".into(), "echo oops >&2; exit 3".into()],
            vec!["echo".into(), "never".into()],
        ];
        let line = batch_line(&argvs, true, 10).expect("quotable");
        let (o, e) = run(&line);
        let r = parse_batch(&o, &e, 3);
        assert_eq!(r[0].stdout, "a;b");
        assert_eq!(r[0].exit, Some(0));
        assert_eq!(r[1].exit, Some(3));
        assert_eq!(r[1].stderr, "oops\n");
        assert_eq!(r[2].exit, None);
    }

    #[test]
    fn runs_side_by_side_and_keeps_outputs_apart() {
        // The first command can only finish if the second runs meanwhile:
        // it waits (at most 5 s) for the file the second one creates.
        let dir = std::env::temp_dir()
            .join(["pvefleet-script-", &std::process::id().to_string()].concat());
        let flag = dir.display().to_string();
        let argvs = vec![
            vec![
                "sh".into(),
                "-c".into(),
                [
                    "for i in $(seq 100); do [ -e '",
                    &flag,
                    "' ] && break; sleep 0.05; done; [ -e '",
                    &flag,
                    "' ] && echo one && echo err1 >&2",
                ]
                .concat(),
            ],
            vec![
                "sh".into(),
                "-c".into(),
                ["touch '", &flag, "'; printf 'two;$(x)'; exit 4"].concat(),
            ],
            vec!["echo".into(), "three".into()],
        ];
        let line = concurrent_line(&argvs, 10).expect("quotable");
        let (o, e) = run(&line);
        let _ = std::fs::remove_file(&dir);
        let r = parse_batch(&o, &e, 3);
        assert_eq!(
            (r[0].exit, r[0].stdout.as_str(), r[0].stderr.as_str()),
            (Some(0), "one\n", "err1\n")
        );
        assert_eq!((r[1].exit, r[1].stdout.as_str()), (Some(4), "two;$(x)"));
        assert_eq!((r[2].exit, r[2].stdout.as_str()), (Some(0), "three\n"));
    }

    #[test]
    fn ignores_what_comes_before_the_line() {
        let argvs = vec![vec!["echo".into(), "[1]".into()]];
        let line = batch_line(&argvs, true, 10).expect("quotable");
        let noisy = ["echo 'Welcome to pve!'; echo 'motd' >&2; ", &line].concat();
        let (o, e) = run(&noisy);
        let r = parse_batch(&o, &e, 1);
        assert_eq!(
            (r[0].exit, r[0].stdout.as_str(), r[0].stderr.as_str()),
            (Some(0), "[1]\n", "")
        );
    }

    #[test]
    fn continues_without_stop() {
        let argvs = vec![vec!["false".into()], vec!["echo".into(), "$(x)".into()]];
        let line = batch_line(&argvs, false, 10).expect("quotable");
        let (o, e) = run(&line);
        let r = parse_batch(&o, &e, 2);
        assert_eq!(r[0].exit, Some(1));
        assert_eq!(r[1].stdout, "$(x)\n");
    }

    #[test]
    fn a_command_judged_by_stderr_stops_the_line_unless_it_only_warned() {
        let warn = "echo '  WARNING: Sum of all thin volume sizes (181,00 GiB) exceeds the size of thin pool vg/pool' >&2; echo 'Task finished with 1 warning(s)!' >&2";
        let argvs = vec![
            vec!["sh".into(), "-c".into(), warn.into()],
            vec![
                "sh".into(),
                "-c".into(),
                "echo 'resize failed: no space' >&2".into(),
            ],
            vec!["echo".into(), "never".into()],
        ];
        let judges = [Judge::ExitAndStderr, Judge::ExitAndStderr, Judge::Exit];
        let line = checked_line(&argvs, &judges, 10).expect("quotable");
        let (o, e) = run(&line);
        let r = parse_batch(&o, &e, 3);
        assert_eq!(r[0].exit, Some(0));
        assert!(r[0].stderr.contains("Task finished with 1 warning(s)!"));
        assert!(errors_in(&r[0].stderr).is_empty(), "{:?}", r[0].stderr);
        assert_eq!(
            (r[1].exit, r[1].stderr.as_str()),
            (Some(0), "resize failed: no space\n")
        );
        assert_eq!(r[2].exit, None, "the line stopped after the failed task");
    }
}
