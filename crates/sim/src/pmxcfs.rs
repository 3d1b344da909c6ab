//! The cluster file system's lock directory (CONTRACT §19): a root shell
//! takes the cluster-wide lock `ID` with `mkdir /etc/pve/priv/lock/ID`
//! (exactly one `mkdir` succeeds; pmxcfs lets a lock expire after 120 s)
//! and releases it with `rmdir`.
//!
//! pve-sim answers as `mkdir` and `rmdir` (links in its bin folder): paths
//! under `/etc/pve` live in `ROOT/pmxcfs`, shared by every emulated node of
//! the root. It also answers as `flock` for the per-VM config locks
//! `/var/lock/qemu-server/lock-ID.conf`, which its `qm` holds in
//! `ROOT/locks` while a create runs. Any other call is handed to the
//! system's program unchanged.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The programs this module answers as.
pub const PROGRAMS: &[&str] = &["mkdir", "rmdir", "flock"];

/// Where `qm` keeps its per-VM config locks.
const QEMU_LOCKS: &str = "/var/lock/qemu-server/";

/// Where `/etc/pve` is.
const PVE: &str = "/etc/pve";

/// How long a lock lasts (pmxcfs: 120 s; `PVE_SIM_CFS_LOCK_SECS` overrides it
/// so tests need not wait).
fn lock_lifetime() -> Duration {
    let secs = std::env::var("PVE_SIM_CFS_LOCK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// `path` inside the emulated `/etc/pve`, when it is one of its paths.
fn mapped(root: &Path, path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix(PVE)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(root.join("pmxcfs").join(rest.trim_start_matches('/')))
}

/// Runs `prog` (`mkdir`, `rmdir` or `flock`) with `args`.
pub fn main(prog: &str, args: &[String]) -> i32 {
    let root = std::env::var_os("PVE_SIM_ROOT").map(PathBuf::from);
    if prog == "flock" {
        return flock(root.as_deref(), args);
    }
    let ours = root
        .as_deref()
        .and_then(|r| args.iter().find_map(|a| mapped(r, a).map(|m| (a, m))));
    let Some((path, target)) = ours else {
        return pass_through(prog, args);
    };
    if args.len() != 1 {
        eprintln!("{prog}: pve-sim emulates only '{prog} /etc/pve/PATH'");
        return 1;
    }
    match prog {
        "mkdir" => mkdir(path, &target),
        _ => rmdir(path, &target),
    }
}

fn mkdir(path: &str, target: &Path) -> i32 {
    if let Some(parent) = target.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::create_dir(target) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let age = std::fs::metadata(target)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let is_lock = path.starts_with("/etc/pve/priv/lock/");
            if is_lock && age >= lock_lifetime() {
                // An expired lock is free again: this mkdir takes it.
                let _ = std::fs::remove_dir(target);
                if std::fs::create_dir(target).is_ok() {
                    return 0;
                }
            }
            eprintln!("mkdir: cannot create directory '{path}': File exists");
            1
        }
        Err(e) => {
            eprintln!("mkdir: cannot create directory '{path}': {e}");
            1
        }
    }
}

fn rmdir(path: &str, target: &Path) -> i32 {
    match std::fs::remove_dir(target) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("rmdir: failed to remove '{path}': No such file or directory");
            1
        }
        Err(e) => {
            eprintln!("rmdir: failed to remove '{path}': {e}");
            1
        }
    }
}

/// `flock ... /var/lock/qemu-server/lock-ID.conf ...` on the emulated
/// lock file (the one pve-sim's `qm` holds), other files as they are.
fn flock(root: Option<&Path>, args: &[String]) -> i32 {
    let mapped: Vec<String> = args
        .iter()
        .map(|a| match (root, a.strip_prefix(QEMU_LOCKS)) {
            (Some(r), Some(name)) if !name.contains('/') => {
                let dir = r.join("locks");
                let _ = std::fs::create_dir_all(&dir);
                dir.join(name).display().to_string()
            }
            _ => a.clone(),
        })
        .collect();
    pass_through("flock", &mapped)
}

/// Hands the call to the system's own program.
fn pass_through(prog: &str, args: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    let Some(real) = ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.exists())
    else {
        eprintln!("{prog}: not found");
        return 127;
    };
    let err = std::process::Command::new(real).args(args).exec();
    eprintln!("{prog}: {err}");
    126
}
