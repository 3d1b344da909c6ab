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
    assert!(files.len() >= 70, "only {} invalid configs", files.len());
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

/// A file in a fresh folder, and the folder.
fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.yml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

#[test]
fn valid_forms_proxmox_accepts_pass_check() {
    let key = std::fs::read_to_string(repo().join("examples/ops_keys.pub")).expect("key");
    let (_dir, path) = config(&format!(
        "proxmox: {{host: pve}}\n\
         defaults: {{image: local:iso/x.img}}\n\
         vms:\n\
         \x20 - {{name: a, cpu: 'x86-64-v2-AES,flags=+aes', password: '0', nameserver: [dns.example.com, 10.0.0.1]}}\n\
         \x20 - {{name: b, cpu: custom-mymodel, password: '-x', nameserver: 'ns1.example.com 2001:db8::53'}}\n\
         \x20 - {{name: c, cpu: host, password: 'two words', ip: 10.0.0.5/8, ssh_keys: ['{}']}}\n",
        key.trim()
    ));
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_refused_password_is_never_printed() {
    let (_dir, path) = config(
        "proxmox: {host: pve}\ndefaults: {image: local:iso/x.img}\nvms:\n  - name: a\n    password: \"hunter2\\n\"\n  - name: b_c\n    password: hunter2\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password: contains the control character U+000A"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_endless_file_is_refused_at_its_size_limit() {
    let started = std::time::Instant::now();
    let out = check(Path::new("/dev/zero"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "cannot read /dev/zero: larger than 4 MiB, the limit for a configuration file"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
