//! What people see: live progress under a pseudo-terminal, plain lines
//! without escape sequences in a pipe, no colour with NO_COLOR or
//! `--color never`, each configuration error printed exactly once, "no
//! changes" once, and how -q, -v, PVEFLEET_VERBOSE and PVEFLEET_LOG change
//! what is said. Terminals are made with util-linux `script`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_pvefleet")
}

/// A copy of examples/ in a fresh folder, where `--simulate` keeps its host.
fn examples_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(repo().join("examples")).expect("examples") {
        let path = entry.expect("entry").path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, dir.path().join(name)).expect("copy");
        }
    }
    dir
}

/// An emulated host whose every command takes `latency_ms`, so a run lasts
/// long enough to be watched.
fn slow_host(dir: &Path, latency_ms: u32) {
    let link = dir.join("pve-sim");
    std::os::unix::fs::symlink(exe(), &link).expect("link pve-sim");
    let out = Command::new(&link)
        .args(["init", ".pvefleet-sim", "--latency-ms"])
        .arg(latency_ms.to_string())
        .current_dir(dir)
        .output()
        .expect("pve-sim init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs pvefleet with `args` in `dir`, stdout and stderr piped.
fn piped(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(exe());
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .env_remove("PVEFLEET_LOG")
        .env_remove("PVEFLEET_VERBOSE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run pvefleet")
}

/// Runs pvefleet under a pseudo-terminal (stdin, stdout and stderr all on
/// it); returns everything the terminal received and the exit status.
fn on_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, Option<i32>) {
    let line = std::iter::once(exe())
        .chain(args.iter().copied())
        .map(|a| shlex::try_quote(a).expect("quote").into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("PVEFLEET_LOG")
        .env_remove("PVEFLEET_VERBOSE");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("util-linux script");
    (
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
        out.status.code(),
    )
}

const ESC: char = '\x1b';

#[test]
fn a_terminal_shows_live_progress_before_the_summary() {
    let dir = examples_copy();
    slow_host(dir.path(), 150);
    let (text, status) = on_terminal(
        dir.path(),
        &["apply", "vm_config.example.yml", "--simulate", "--yes"],
        &[],
    );
    assert_eq!(status, Some(0), "{text}");
    let summary = text.find("RESULT").expect("the summary table");
    let step = text
        .find("web-01  step ")
        .or_else(|| text.find("web-01  starting"))
        .unwrap_or_else(|| panic!("no live line for web-01:\n{text:?}"));
    assert!(step < summary, "progress comes before the summary");
    assert!(text[..summary].contains("VMs done"), "an overall line");
    assert!(text.contains(ESC), "the live display moves the cursor");
    // Cleared before the summary: no live line is drawn after it.
    assert!(
        !text[summary..].contains("VMs done") && !text[summary..].contains(" step "),
        "{:?}",
        &text[summary..]
    );
}

#[test]
fn a_pipe_gets_one_plain_line_per_event_and_no_escape_codes() {
    let dir = examples_copy();
    let out = piped(
        dir.path(),
        &["apply", "vm_config.example.yml", "--simulate", "--yes"],
        &[],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains(ESC) && !stdout.contains(ESC), "{stderr:?}");
    for vm in ["web-01", "web-02", "db-01"] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{vm}: ")))
            .collect();
        assert_eq!(
            lines,
            vec![
                format!("{vm}: started"),
                format!("{vm}: step 1/3 qm create"),
                format!("{vm}: step 2/3 qm disk resize"),
                format!("{vm}: step 3/3 qm start, then waits for the guest agent"),
                format!("{vm}: done"),
            ],
            "{stderr}"
        );
    }
    assert!(
        stdout.starts_with("VMID"),
        "the summary on stdout: {stdout}"
    );
}

#[test]
fn no_color_and_color_never_mean_no_escape_codes_anywhere() {
    let dir = examples_copy();
    let d = dir.path();
    let invalid = repo().join("tests/invalid/duplicate-vmid.yml");
    let invalid = invalid.to_str().expect("utf8");
    let runs: [&[&str]; 3] = [
        &["apply", "vm_config.example.yml", "--simulate", "--yes"],
        &["status", "vm_config.example.yml", "--simulate"],
        &["check", invalid],
    ];
    for args in runs {
        let (text, _) = on_terminal(d, args, &[("NO_COLOR", "1")]);
        assert!(!text.contains(ESC), "NO_COLOR {args:?}: {text:?}");
        assert!(text.contains("web-01") || text.contains("duplicate vmid"));
        let mut never = args.to_vec();
        never.extend(["--color", "never"]);
        let (text, _) = on_terminal(d, &never, &[]);
        assert!(!text.contains(ESC), "--color never {args:?}: {text:?}");
    }
    // Without either, a terminal gets colour.
    let (text, _) = on_terminal(d, &["status", "vm_config.example.yml", "--simulate"], &[]);
    assert!(text.contains("\x1b[1m"), "bold headers: {text:?}");
    // And --color always colours a pipe.
    let out = piped(
        d,
        &[
            "status",
            "vm_config.example.yml",
            "--simulate",
            "--color",
            "always",
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(ESC));
}

/// The messages of a file's configuration errors, from its JSON report.
fn messages(dir: &Path, file: &str) -> Vec<String> {
    let out = piped(dir, &["check", file, "--output", "json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_string())
        .collect()
}

#[test]
fn each_config_error_is_printed_exactly_once() {
    let dir = repo().join("tests/invalid");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/invalid")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    files.sort();
    for file in &files {
        let expect = std::fs::read_to_string(dir.join(file)).expect("read");
        let place = expect
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("# expect: L:C")
            .trim()
            .to_string();
        let msgs = messages(&dir, file);
        assert!(!msgs.is_empty(), "{file}");
        // A pipe: the FILE:L:C: error: line, once per error.
        let out = piped(&dir, &["check", file], &[]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.stdout.is_empty());
        for m in &msgs {
            assert_eq!(
                stderr.matches(m.as_str()).count(),
                1,
                "{file}: {m}\n{stderr}"
            );
        }
        assert!(
            stderr.contains(&format!("{file}:{place}: error: ")),
            "{stderr}"
        );
        // A terminal: the box, its header naming FILE:L:C, the message once.
        let (text, status) = on_terminal(&dir, &["check", file], &[("NO_COLOR", "1")]);
        assert_eq!(status, Some(2));
        for m in &msgs {
            assert_eq!(text.matches(m.as_str()).count(), 1, "{file}: {m}\n{text}");
        }
        // The box names FILE:L:C in its header; a source line too long for
        // a box (100 000 brackets) gets the plain, cut form instead.
        assert!(
            text.contains(&format!("[{file}:{place}]"))
                || text.contains(&format!("{file}:{place}: error: ")),
            "{text}"
        );
    }
}

#[test]
fn no_changes_is_said_once_on_stdout() {
    let dir = examples_copy();
    let d = dir.path();
    let args = ["apply", "vm_config.example.yml", "--simulate", "--yes"];
    assert!(piped(d, &args, &[]).status.success());
    let again = piped(d, &args, &[]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stdout.matches("no changes").count(), 1, "{stdout}");
    assert!(!stderr.contains("no changes"), "{stderr}");
    let plan = piped(d, &["plan", "vm_config.example.yml", "--simulate"], &[]);
    let all = [plan.stdout.clone(), plan.stderr.clone()].concat();
    assert_eq!(
        String::from_utf8_lossy(&all).matches("no changes").count(),
        1
    );
}

#[test]
fn quiet_verbose_and_the_log_filter() {
    let dir = examples_copy();
    let d = dir.path();
    let file = "vm_config.example.yml";
    let quiet = piped(d, &["-q", "apply", file, "--simulate", "--yes"], &[]);
    assert!(quiet.status.success());
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "-q: nothing but errors"
    );
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("RESULT"));

    let verbose = piped(d, &["destroy", file, "--simulate", "--yes", "-v"], &[]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        stderr.contains("web-01: step 1/2 $ qm shutdown 201"),
        "{stderr}"
    );
    let env = piped(
        d,
        &["apply", file, "--simulate", "--yes"],
        &[("PVEFLEET_VERBOSE", "1")],
    );
    let stderr = String::from_utf8_lossy(&env.stderr);
    assert!(
        stderr.contains("web-01: step 1/3 $ qm create 201 "),
        "{stderr}"
    );

    let filtered = piped(
        d,
        &["destroy", file, "--simulate", "--yes"],
        &[("PVEFLEET_LOG", "warn")],
    );
    assert!(filtered.status.success());
    let stderr = String::from_utf8_lossy(&filtered.stderr);
    assert!(!stderr.contains(": started"), "{stderr}");
}

#[test]
fn an_unknown_only_name_is_refused_by_name() {
    let dir = examples_copy();
    let out = piped(
        dir.path(),
        &[
            "plan",
            "vm_config.example.yml",
            "--simulate",
            "--only",
            "web-01",
            "--only",
            "web-9",
            "--only",
            "999",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error: --only names VMs that vm_config.example.yml does not have: web-9, 999"
        ),
        "{stderr}"
    );
    assert!(
        !dir.path().join(".pvefleet-sim").exists(),
        "nothing contacted"
    );
}
