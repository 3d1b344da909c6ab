//! `--output json`: every command and every error path writes exactly one
//! JSON document on stdout, with only the keys docs/json.md shows for it,
//! the exit status unchanged; events on stderr are JSON Lines as
//! documented.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

fn pvefleet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pvefleet"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("PVEFLEET_LOG")
        .env_remove("PVEFLEET_VERBOSE")
        .output()
        .expect("run pvefleet")
}

/// The example of shape `id` in docs/json.md: the JSON block after the
/// heading "### `id`" (one value per line for `events`).
fn documented(id: &str) -> Vec<Value> {
    let doc = std::fs::read_to_string(repo().join("docs/json.md")).expect("docs/json.md");
    let heading = format!("### `{id}`");
    let at = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/json.md has no section {heading}"));
    let rest = &doc[at..];
    let start = rest.find("```json\n").expect("a json block") + 8;
    let end = start + rest[start..].find("```").expect("end of block");
    let block = &rest[start..end];
    if id == "events" {
        return block
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{id}: {e}: {l}")))
            .collect();
    }
    vec![serde_json::from_str(block).unwrap_or_else(|e| panic!("docs/json.md {id}: {e}"))]
}

/// Asserts that every key of `actual` is shown in `doc` (recursively;
/// `<any>` keys stand for every key), at `path`.
fn keys_documented(actual: &Value, doc: &Value, path: &str) {
    match (actual, doc) {
        (Value::Object(a), Value::Object(d)) => {
            let wildcard = d.iter().find(|(k, _)| k.starts_with('<')).map(|(_, v)| v);
            for (k, v) in a {
                let shown = d.get(k).or(wildcard).unwrap_or_else(|| {
                    panic!("{path}.{k} is not in docs/json.md (shown: {:?})", d.keys())
                });
                keys_documented(v, shown, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(d)) => {
            if let Some(item) = d.first() {
                for (i, v) in a.iter().enumerate() {
                    keys_documented(v, item, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

/// The one JSON document on stdout, checked against shape `id`, with the
/// keys `required` present.
fn json_out(out: &Output, id: &str, required: &[&str]) -> Map<String, Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.lines().count(),
        1,
        "{id}: one line of JSON on stdout, got:\n{stdout}\nstderr:\n{stderr}"
    );
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{id}: {e}:\n{stdout}\nstderr:\n{stderr}"));
    keys_documented(&v, &documented(id)[0], id);
    let obj = v.as_object().cloned().expect("an object");
    for k in required {
        assert!(obj.contains_key(*k), "{id}: no key {k} in {stdout}");
    }
    obj
}

/// An error object with `code`, after exit `status`.
fn error_out(out: &Output, status: i32, code: &str) -> Map<String, Value> {
    assert_eq!(
        out.status.code(),
        Some(status),
        "{code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = if code == "invalid_config" {
        "config-error"
    } else {
        "error"
    };
    let obj = json_out(out, id, &["error", "code", "location"]);
    assert_eq!(obj["code"], code, "{obj:?}");
    assert!(obj["error"].as_str().is_some_and(|e| !e.is_empty()));
    obj
}

/// Every stderr line of a JSON run that starts with `{` is an object of
/// the events section; the others are pvefleet's text messages.
fn events_documented(out: &Output) -> Vec<Value> {
    let shown = documented("events");
    let mut seen = Vec::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if !line.starts_with('{') {
            assert!(!line.trim().is_empty(), "an empty line on stderr");
            continue;
        }
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("stderr line {e}: {line}"));
        let kind = v["event"].as_str().expect("event");
        let doc = shown
            .iter()
            .find(|d| d["event"] == kind)
            .unwrap_or_else(|| panic!("event {kind} is not in docs/json.md"));
        keys_documented(&v, doc, kind);
        seen.push(v);
    }
    seen
}

#[test]
fn check_writes_json_for_a_valid_file_and_for_each_error_path() {
    let dir = examples_copy();
    let d = dir.path();
    let ok = pvefleet(d, &["check", "vm_config.example.yml", "--output", "json"]);
    assert!(ok.status.success());
    let obj = json_out(&ok, "check", &["file", "ok", "vms", "nodes"]);
    assert_eq!(obj["vms"], 3);

    // The flag may stand before the subcommand as well.
    let invalid = repo().join("tests/invalid");
    let bad = pvefleet(
        &invalid,
        &["--output", "json", "check", "duplicate-vmid.yml"],
    );
    let obj = error_out(&bad, 2, "invalid_config");
    let errors = obj["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "duplicate");
    assert_eq!(errors[0]["line"], 8);
    assert_eq!(errors[0]["col"], 11);
    assert!(
        bad.stderr.is_empty(),
        "nothing on stderr: the object says it"
    );

    let missing = pvefleet(d, &["check", "nope.yml", "--output", "json"]);
    let obj = error_out(&missing, 2, "file_unreadable");
    assert_eq!(obj["location"]["file"], "nope.yml");

    let usage = pvefleet(d, &["check", "--output", "json"]);
    error_out(&usage, 2, "usage");
    let usage = pvefleet(d, &["--output=json", "frobnicate"]);
    error_out(&usage, 2, "usage");
}

#[test]
fn every_invalid_config_is_one_json_object_listing_its_errors() {
    let dir = repo().join("tests/invalid");
    for entry in std::fs::read_dir(&dir).expect("tests/invalid") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "yml") {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let out = pvefleet(&dir, &["check", name, "--output", "json"]);
        let obj = error_out(&out, 2, "invalid_config");
        for e in obj["errors"].as_array().expect("errors") {
            for k in ["message", "code", "file", "line", "col", "hint"] {
                assert!(e.get(k).is_some(), "{name}: no {k} in {e}");
            }
        }
    }
}

#[test]
fn plan_apply_status_destroy_write_their_documented_shapes() {
    let dir = examples_copy();
    let d = dir.path();
    let file = "vm_config.example.yml";

    let plan = pvefleet(d, &["plan", file, "--simulate", "--output", "json"]);
    assert_eq!(plan.status.code(), Some(0));
    let obj = json_out(&plan, "plan", &["vms"]);
    assert_eq!(obj["vms"][0]["action"], "create");
    let detailed = pvefleet(
        d,
        &[
            "plan",
            file,
            "--simulate",
            "--output",
            "json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(detailed.status.code(), Some(2), "changes: 2");
    json_out(&detailed, "plan", &["vms"]);

    let refused = pvefleet(d, &["apply", file, "--simulate", "--output", "json"]);
    error_out(&refused, 2, "confirmation_required");

    let apply = pvefleet(
        d,
        &["apply", file, "--simulate", "--yes", "--output", "json"],
    );
    assert!(apply.status.success());
    let obj = json_out(&apply, "apply", &["changed", "vms", "round_trips"]);
    assert_eq!(obj["changed"], true);
    assert_eq!(obj["vms"].as_array().map(Vec::len), Some(3));
    let events = events_documented(&apply);
    for kind in ["started", "command", "finished"] {
        assert!(events.iter().any(|e| e["event"] == kind), "no {kind} event");
    }

    let converged = pvefleet(
        d,
        &[
            "plan",
            file,
            "--simulate",
            "--output",
            "json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(converged.status.code(), Some(0), "no changes: 0");

    let status = pvefleet(
        d,
        &[
            "status",
            file,
            "--simulate",
            "--output",
            "json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(status.status.code(), Some(0));
    let obj = json_out(&status, "status", &["vms", "in_sync"]);
    assert_eq!(obj["in_sync"], true);

    // Drift: the file now asks for more memory.
    let text = std::fs::read_to_string(d.join(file)).expect("read");
    std::fs::write(
        d.join("drift.yml"),
        text.replace("memory: 2048 ", "memory: 3072 "),
    )
    .expect("write");
    let drift = pvefleet(
        d,
        &[
            "status",
            "drift.yml",
            "--simulate",
            "--output",
            "json",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(drift.status.code(), Some(2), "drift: 2");
    let obj = json_out(&drift, "status", &["vms", "in_sync"]);
    assert_eq!(obj["in_sync"], false);
    assert!(obj["vms"][0]["drift"]
        .as_array()
        .is_some_and(|d| d.iter().any(|k| k == "memory")));

    let unknown = pvefleet(
        d,
        &[
            "destroy",
            file,
            "--simulate",
            "--yes",
            "--only",
            "nope",
            "--output",
            "json",
        ],
    );
    let obj = error_out(&unknown, 2, "unknown_vm");
    assert_eq!(obj["location"]["only"][0], "nope");

    let destroy = pvefleet(
        d,
        &[
            "destroy",
            file,
            "--simulate",
            "--yes",
            "--only",
            "web-01",
            "--output",
            "json",
        ],
    );
    assert!(destroy.status.success());
    let obj = json_out(&destroy, "destroy", &["changed", "vms", "caches"]);
    assert_eq!(obj["vms"][0]["result"], "destroyed");
    events_documented(&destroy);
    let again = pvefleet(
        d,
        &[
            "destroy",
            file,
            "--simulate",
            "--yes",
            "--only",
            "web-01",
            "--output",
            "json",
        ],
    );
    let obj = json_out(&again, "destroy", &["changed", "vms", "caches"]);
    assert_eq!(obj["vms"][0]["result"], "absent");
    assert_eq!(obj["changed"], false);
}

#[test]
fn plan_error_paths_are_json_objects() {
    let dir = examples_copy();
    let d = dir.path();
    let file = "vm_config.example.yml";
    let only = pvefleet(
        d,
        &[
            "plan",
            file,
            "--simulate",
            "--only",
            "nope",
            "--output",
            "json",
        ],
    );
    error_out(&only, 2, "unknown_vm");
    // Detailed exit codes keep 2 for changes: an error is 1 there.
    let only = pvefleet(
        d,
        &[
            "plan",
            file,
            "--simulate",
            "--only",
            "nope",
            "--output",
            "json",
            "--detailed-exitcode",
        ],
    );
    error_out(&only, 1, "unknown_vm");

    std::fs::write(d.join("state.json"), "{not json").expect("write");
    let state = pvefleet(
        d,
        &[
            "plan",
            file,
            "--host-state",
            "state.json",
            "--output",
            "json",
        ],
    );
    let obj = error_out(&state, 2, "host_state");
    assert_eq!(obj["location"]["line"], 1);

    let version = pvefleet(
        d,
        &[
            "plan",
            file,
            "--simulate",
            "--simulate-version",
            "6.4",
            "--output",
            "json",
        ],
    );
    error_out(&version, 2, "simulate_version");

    // Nothing listens on port 1 of loopback: the one node cannot be reached.
    let text = std::fs::read_to_string(d.join(file)).expect("read");
    std::fs::write(
        d.join("down.yml"),
        text.replace("host: pve1.example.com", "host: 127.0.0.1\n  port: 1"),
    )
    .expect("write");
    let down = pvefleet(
        d,
        &[
            "status",
            "down.yml",
            "--output",
            "json",
            "--connect-timeout",
            "5",
        ],
    );
    let obj = error_out(&down, 1, "connect");
    assert!(obj["location"]["node"].is_string(), "{obj:?}");
}

#[test]
fn sim_man_and_inventory_write_their_documented_shapes() {
    let dir = examples_copy();
    let d = dir.path();
    let none = pvefleet(d, &["sim", "state", "--output", "json"]);
    error_out(&none, 1, "no_simulated_host");

    let reset = pvefleet(
        d,
        &["sim", "reset", "vm_config.example.yml", "--output", "json"],
    );
    assert!(reset.status.success());
    let obj = json_out(&reset, "sim-reset", &["root", "removed", "created"]);
    assert_eq!(obj["created"], true);

    let state = pvefleet(d, &["sim", "state", "--output", "json"]);
    assert!(state.status.success());
    let obj = json_out(
        &state,
        "sim-state",
        &["root", "version", "nodes", "storages", "volumes", "vms"],
    );
    assert_eq!(obj["nodes"][0]["name"], "pve");

    let man = pvefleet(d, &["man", "--dir", "man", "--output", "json"]);
    assert!(man.status.success());
    let obj = json_out(&man, "man", &["written"]);
    assert!(obj["written"].as_array().is_some_and(|w| w.len() > 5));

    let inventory = pvefleet(
        d,
        &["inventory", "vm_config.example.yml", "--format", "json"],
    );
    assert!(inventory.status.success());
    let v: Value = serde_json::from_slice(&inventory.stdout).expect("inventory JSON");
    keys_documented(&v, &documented("inventory")[0], "inventory");
}
