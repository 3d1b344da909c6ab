//! The conformance table: `qm` command lines run against pve-sim alone, with
//! the expected accept/reject, the message of each reject, and checks of the
//! state after accepted changes. The table is `tests/conformance.table`:
//!
//! ```text
//! init [pve-sim init options]        # a fresh host
//! node NAME                          # act as this node of a cluster
//! faults <JSON>                      # ROOT/faults.json from now on
//! ok   <qm args>                     # must exit 0
//! out  <qm args> => <text>           # must exit 0 and print <text> on stdout
//! err  <qm args> => <text>           # must fail and print <text> on stderr
//! zero <qm args> => <text>           # must exit 0 but print <text> on stderr
//! empty <qm args>                    # must exit 0 and print nothing
//! has  <vmid> <key> <value>          # `qm config` shows key: value
//! lacks <vmid> <key>                 # `qm config` has no key
//! running <vmid> / stopped <vmid>    # power state
//! volume <volid> / novolume <volid>  # a volume exists / does not
//! ```
//!
//! A line whose first word is `pvesh` or a shell tool pve-sim emulates
//! (`mkdir`, `rmdir`, `touch`, `flock`) runs that program instead of `qm`.

use pve_sim::state::Root;
use std::path::Path;

fn run(root: &Root, node: &Option<String>, args: &[String]) -> (i32, String, String) {
    match args.split_first() {
        Some((program, rest))
            if program != "qm" && pve_sim::PROGRAMS.contains(&program.as_str()) =>
        {
            pve_sim::run(root.clone(), node.clone(), program, rest)
        }
        _ => pve_sim::run(root.clone(), node.clone(), "qm", args),
    }
}

fn words(s: &str) -> Vec<String> {
    shlex::split(s).unwrap_or_else(|| panic!("unbalanced quotes: {s}"))
}

fn config(root: &Root, node: &Option<String>, vmid: &str) -> String {
    run(root, node, &words(&["config ", vmid].concat())).1
}

#[test]
fn conformance_table() {
    let table = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance.table"),
    )
    .expect("table");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut qm_lines = 0;
    let mut node: Option<String> = None;
    let mut failures = Vec::new();
    for (n, raw) in table.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (cmd, expect) = match rest.split_once(" => ") {
            Some((c, e)) => (c.trim(), e.trim()),
            None => (rest.trim(), ""),
        };
        let at = n + 1;
        let mut fail = |why: String| failures.push(format!("line {at}: {line}\n    {why}"));
        match verb {
            "node" => node = Some(cmd.to_string()),
            "faults" => std::fs::write(root.join("faults.json"), rest).expect("faults.json"),
            "init" => {
                node = None;
                let _ = std::fs::remove_dir_all(&root.0);
                let mut args = vec![root.0.display().to_string()];
                args.extend(words(cmd));
                assert_eq!(pve_sim::init::init_cli(&args), 0, "line {at}: init failed");
            }
            "ok" | "out" | "err" | "zero" | "empty" => {
                qm_lines += 1;
                let (code, stdout, stderr) = run(&root, &node, &words(cmd));
                match verb {
                    "ok" if code != 0 => fail(format!("exit {code}: {stderr}")),
                    "out" if code != 0 || !stdout.contains(expect) => {
                        fail(format!("exit {code}, stdout {stdout:?}, stderr {stderr:?}"))
                    }
                    "err" if code == 0 || !stderr.contains(expect) => {
                        fail(format!("exit {code}, stderr {stderr:?}"))
                    }
                    "zero" if code != 0 || !stderr.contains(expect) => {
                        fail(format!("exit {code}, stderr {stderr:?}"))
                    }
                    "empty" if code != 0 || !stdout.is_empty() => {
                        fail(format!("exit {code}, stdout {stdout:?}"))
                    }
                    _ => {}
                }
            }
            "has" => {
                let mut p = cmd.splitn(3, ' ');
                let (id, key, value) = (
                    p.next().unwrap_or(""),
                    p.next().unwrap_or(""),
                    p.next().unwrap_or(""),
                );
                let cfg = config(&root, &node, id);
                let want = [key, ": ", value].concat();
                if !cfg.lines().any(|l| l == want) {
                    fail(format!("config lacks `{want}`:\n{cfg}"));
                }
            }
            "lacks" => {
                let mut p = cmd.splitn(2, ' ');
                let (id, key) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
                let cfg = config(&root, &node, id);
                if cfg.lines().any(|l| l.starts_with(&[key, ": "].concat())) {
                    fail(format!("config has {key}:\n{cfg}"));
                }
            }
            "running" | "stopped" => {
                let (_, out, _) = run(&root, &node, &words(&["status ", cmd].concat()));
                if out.trim() != ["status: ", verb].concat() {
                    fail(format!("status is {out:?}"));
                }
            }
            "volume" | "novolume" => {
                let st = pve_sim::init::state_json(&root).expect("state");
                let found = st["storages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|s| s["volumes"].as_array().cloned().unwrap_or_default())
                    .any(|v| v["volid"] == cmd);
                if found != (verb == "volume") {
                    fail(format!("volume present: {found}"));
                }
            }
            other => panic!("line {at}: unknown verb {other}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(qm_lines >= 150, "only {qm_lines} qm lines");
}
