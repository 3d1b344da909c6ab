//! Hostile input: files made to exhaust time, memory or the terminal. Each
//! is refused by `check` (exit 2) with a short report; none is read to the
//! end. `scripts/reliability` measures the time and peak memory of each
//! (docs/RELIABILITY.md).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One hostile input: its name, and how to make it in `dir` (returns the
/// config file to check).
pub struct Case {
    /// What it is.
    pub name: &'static str,
    /// Writes it; returns the file to check.
    pub make: fn(&Path) -> PathBuf,
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn alias_bomb(dir: &Path) -> PathBuf {
    // Each level refers to the one before nine times: 9^9 nodes if expanded.
    let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        let items = [prev.as_str(); 9].join(", ");
        y.push_str(&format!("a{i}: &a{i} [{items}]\n"));
    }
    y.push_str("proxmox: {host: local}\nvms: *a9\n");
    write(dir, "alias-bomb.yml", y.as_bytes())
}

fn deep_nesting(dir: &Path) -> PathBuf {
    let depth = 100_000;
    let y = format!(
        "proxmox: {{host: local}}\nvms: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    write(dir, "deep.yml", y.as_bytes())
}

fn huge_value(dir: &Path) -> PathBuf {
    let y = format!(
        "proxmox: {{host: local}}\nvms:\n  - {{name: a, image: /x.img, description: \"{}\"}}\n",
        "x".repeat(50 << 20)
    );
    write(dir, "huge-value.yml", y.as_bytes())
}

fn zero_key_file(dir: &Path) -> PathBuf {
    let y =
        "proxmox: {host: local}\nvms:\n  - {name: a, image: /x.img, ssh_keys_file: /dev/zero}\n";
    write(dir, "dev-zero-keys.yml", y.as_bytes())
}

fn many_keys(dir: &Path) -> PathBuf {
    let mut y = String::from("proxmox: {host: local}\nvms:\n  - name: a\n    image: /x.img\n");
    for i in 0..100_000 {
        y.push_str(&format!("    unknown{i}: 1\n"));
    }
    write(dir, "many-keys.yml", y.as_bytes())
}

fn binary(dir: &Path) -> PathBuf {
    let bytes: Vec<u8> = (0u64..(1 << 20)).map(|i| (i * 7919 % 256) as u8).collect();
    write(dir, "binary.yml", &bytes)
}

fn nul(dir: &Path) -> PathBuf {
    write(
        dir,
        "nul.yml",
        b"proxmox: {host: local}\nvms:\n  - {name: \"a\0b\", image: /x.img}\n",
    )
}

/// Every hostile case.
pub const CASES: &[Case] = &[
    Case {
        name: "alias bomb (9^9 nodes)",
        make: alias_bomb,
    },
    Case {
        name: "nesting 100 000 deep",
        make: deep_nesting,
    },
    Case {
        name: "a 50 MB value",
        make: huge_value,
    },
    Case {
        name: "/dev/zero as ssh_keys_file",
        make: zero_key_file,
    },
    Case {
        name: "100 000 unknown keys",
        make: many_keys,
    },
    Case {
        name: "1 MiB of binary",
        make: binary,
    },
    Case {
        name: "a NUL byte in a value",
        make: nul,
    },
];

#[test]
fn every_hostile_input_is_refused_with_a_short_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    for case in CASES {
        let file = (case.make)(dir.path());
        let out = Command::new(env!("CARGO_BIN_EXE_pvefleet"))
            .arg("check")
            .arg(&file)
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.len() < 64 << 10,
            "{}: {} bytes of stderr",
            case.name,
            out.stderr.len()
        );
        let _ = std::fs::remove_file(&file);
    }
}
