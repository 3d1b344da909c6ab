//! `pvefleet check`: every file under tests/invalid is refused with exit 2
//! at the line and column its first line names; every example is accepted.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pvefleet"))
        .arg("check")
        .arg(path)
        .output()
        .expect("run pvefleet check")
}

#[test]
fn invalid_configs_are_refused_at_their_place() {
    let dir = repo().join("tests/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/invalid")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} invalid configs", files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks '# expect: L:C'", f.display()))
            .trim()
            .to_string();
        let out = check(&f);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", f.display());
        let needle = [
            f.display().to_string(),
            ":".into(),
            expect.clone(),
            ": error: ".into(),
        ]
        .concat();
        assert!(
            stderr.contains(&needle),
            "{}: expected an error at {expect}, got:\n{stderr}",
            f.display()
        );
    }
}

#[test]
fn examples_are_accepted() {
    for f in std::fs::read_dir(repo().join("examples"))
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
    {
        let out = check(&f);
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
