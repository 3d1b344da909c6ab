//! pmxcfs's cluster-wide locks (CONTRACT §19; pve-cluster pmxcfs/memdb.c,
//! cfs-plug-memdb.c and Cluster.pm `$cfs_lock`).
//!
//! The lock named `ID` is the directory `/etc/pve/priv/lock/ID`, kept at
//! `ROOT/etc/pve/priv/lock/ID` for every emulated node of the cluster:
//!
//! - `mkdir` takes it; exactly one succeeds, the others get EEXIST. The
//!   parent `priv/lock` exists only once someone made it (Proxmox's code
//!   runs `mkdir /etc/pve/priv/lock` before each lock).
//! - `rmdir` releases it.
//! - Setting its mtime to 0 (`utime(0, 0)`, `touch -d @0`) is an unlock
//!   request: pmxcfs removes a lock it has known for longer than 120 s
//!   (the `cfs_lock_expiry_ms` setting) and refuses the change (EACCES)
//!   otherwise. Setting a later mtime from the node that made the lock
//!   renews it for another 120 s; from another node it is refused.
//!
//! pmxcfs keeps a lock's age in memory from when it first saw it, not in
//! the mtime; pve-sim keeps it in the state, and every operation runs
//! under the state lock, so they are atomic across nodes.

use crate::schema::Failure;
use crate::state::{now_ms, CfsLock, Root, State};
use crate::Ctx;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

impl Root {
    /// `/etc/pve/priv/lock` of the emulated cluster.
    pub fn cfs_lock_dir(&self) -> PathBuf {
        self.join("etc/pve/priv/lock")
    }
}

/// The name of the lock a ROOT path is, if it is one.
pub fn lock_name(root: &Root, path: &std::path::Path) -> Option<String> {
    let parent = path.parent()?;
    (parent == root.cfs_lock_dir())
        .then(|| path.file_name()?.to_str().map(str::to_string))
        .flatten()
}

fn expired(st: &State, lock: &CfsLock) -> bool {
    now_ms().saturating_sub(lock.since_ms) > st.settings.cfs_lock_expiry_ms
}

/// `mkdir /etc/pve/priv/lock/NAME` from `node`.
pub fn mkdir(root: &Root, node: &str, name: &str) -> Result<(), ErrorKind> {
    let path = root.cfs_lock_dir().join(name);
    root.update(|st| match std::fs::create_dir(&path) {
        Ok(()) => {
            st.cfs_locks.insert(
                name.to_string(),
                CfsLock {
                    node: node.to_string(),
                    since_ms: now_ms(),
                    mtime: now_ms() / 1000,
                },
            );
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e.kind())),
    })
    .unwrap_or(Err(ErrorKind::Other))
}

/// `rmdir /etc/pve/priv/lock/NAME`: any node may release any lock.
pub fn rmdir(root: &Root, name: &str) -> Result<(), ErrorKind> {
    let path = root.cfs_lock_dir().join(name);
    root.update(|st| match std::fs::remove_dir(&path) {
        Ok(()) => {
            st.cfs_locks.remove(name);
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e.kind())),
    })
    .unwrap_or(Err(ErrorKind::Other))
}

/// Sets the mtime of the lock directory `NAME` from `node`: `0` is an
/// unlock request, a later time renews the lock.
pub fn utime(root: &Root, node: &str, name: &str, mtime: u64) -> Result<(), ErrorKind> {
    let path = root.cfs_lock_dir().join(name);
    root.update(|st| {
        if !path.is_dir() {
            return Ok(Err(ErrorKind::NotFound));
        }
        // A lock pmxcfs has not seen yet starts its lifetime now.
        let lock = st
            .cfs_locks
            .entry(name.to_string())
            .or_insert_with(|| CfsLock {
                node: node.to_string(),
                since_ms: now_ms(),
                mtime: now_ms() / 1000,
            });
        let lock = lock.clone();
        if mtime == 0 && expired(st, &lock) {
            let _ = std::fs::remove_dir(&path);
            st.cfs_locks.remove(name);
            return Ok(Ok(()));
        }
        if mtime < lock.mtime || lock.node != node {
            return Ok(Err(ErrorKind::PermissionDenied));
        }
        st.cfs_locks.insert(
            name.to_string(),
            CfsLock {
                node: lock.node,
                since_ms: now_ms(),
                mtime,
            },
        );
        Ok(Ok(()))
    })
    .unwrap_or(Err(ErrorKind::Other))
}

/// A cfs lock this process holds; released when dropped.
pub struct Guard {
    root: Root,
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = rmdir(&self.root, &self.name);
    }
}

/// Takes the lock `NAME` as Proxmox's `$cfs_lock` does: `mkdir`; while
/// that fails, an unlock request, `trying to acquire cfs lock 'NAME' ...`
/// at most once a second (on the command's stderr, which a task shows on
/// stdout) and a sleep of a tenth of the remaining seconds (at most 1 s),
/// until `timeout_s` is spent: `cfs-lock 'NAME' error: got lock request
/// timeout`.
pub fn acquire(cx: &mut Ctx, name: &str, timeout_s: u64) -> Result<Guard, Failure> {
    let _ = std::fs::create_dir_all(cx.root.cfs_lock_dir());
    let node = cx.node.clone();
    let mut slept_us: u64 = 0;
    loop {
        let slept_s = slept_us / 1_000_000;
        let remaining_s = timeout_s.saturating_sub(slept_s).max(1);
        if mkdir(&cx.root, &node, name).is_ok() {
            return Ok(Guard {
                root: cx.root.clone(),
                name: name.to_string(),
            });
        }
        let sleep_us = remaining_s.min(10) * 100_000;
        let next_s = (slept_us + sleep_us) / 1_000_000;
        if next_s >= timeout_s {
            return Err(Failure::die(
                ["cfs-lock '", name, "' error: got lock request timeout"].concat(),
            ));
        }
        if next_s > slept_s {
            cx.tool_err(&["trying to acquire cfs lock '", name, "' ..."].concat());
        }
        let _ = utime(&cx.root, &node, name, 0);
        std::thread::sleep(Duration::from_micros(sleep_us));
        slept_us += sleep_us;
    }
}
