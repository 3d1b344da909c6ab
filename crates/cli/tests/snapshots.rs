//! Snapshots of what people and programs read: the human and JSON plan of
//! every example against the built-in emulated host, and the error report
//! of every invalid config. Plans are also checked to be the same bytes on
//! a second run (nothing random or time-dependent is baked into a plan).
//!
//! Review a change with `cargo insta review` (or set `INSTA_UPDATE=always`
//! and read the diff of `tests/snapshots/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pvefleet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pvefleet"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("run pvefleet")
}

/// The files of `dir` ending in `.yml`, sorted.
fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A copy of `examples/` in a fresh folder, where `--simulate` keeps its
/// emulated host.
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

/// The plan of `file` in `format`, with the folder's own path (which the
/// emulated host's image paths contain) written as `<dir>`.
fn plan(dir: &Path, file: &str, format: &str) -> String {
    let out = pvefleet(dir, &["plan", file, "--simulate", "--output", format]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let canonical = dir.canonicalize().expect("canonical");
    text.replace(&canonical.display().to_string(), "<dir>")
        .replace(&dir.display().to_string(), "<dir>")
}

#[test]
fn every_example_plans_the_same_bytes_twice_and_matches_its_snapshot() {
    let files = yml_files(&repo().join("examples"));
    assert!(files.len() >= 4, "examples: {files:?}");
    for f in files {
        let name = stem(&f);
        let file = format!("{name}.yml");
        // A fresh emulated host per example: it is made from the file.
        let dir = examples_copy();
        let human = plan(dir.path(), &file, "human");
        assert_eq!(
            human,
            plan(dir.path(), &file, "human"),
            "{file}: a second plan differs"
        );
        insta::assert_snapshot!(format!("plan-human-{name}"), human);
        let json = plan(dir.path(), &file, "json");
        let value: serde_json::Value = serde_json::from_str(&json).expect("plan JSON");
        insta::assert_json_snapshot!(format!("plan-json-{name}"), value);
    }
}

#[test]
fn every_invalid_config_has_its_report_snapshot() {
    let dir = repo().join("tests/invalid");
    let files = yml_files(&dir);
    assert!(files.len() >= 25, "only {} invalid configs", files.len());
    for f in files {
        let name = stem(&f);
        let out = pvefleet(&dir, &["check", &format!("{name}.yml")]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        insta::assert_snapshot!(
            format!("check-{name}"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
