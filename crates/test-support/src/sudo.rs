//! A user other than root on the test bed, with or without a sudoers rule
//! that lets it run the emulated Proxmox commands, as docs/real-host.md
//! tells an admin to write it.
//!
//! Needs root (to add the user and the rule); [`TestBed::sudo_user`] says
//! so otherwise.

use crate::{is_root, run, TestBed};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The login of the bed's user other than root.
pub const SUDO_USER: &str = "pvefleet-op";

/// A sudoers rule in `/etc/sudoers.d`, removed when dropped.
pub struct SudoRule {
    file: Option<PathBuf>,
}

impl Drop for SudoRule {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn chmod(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// The rule of docs/real-host.md for `user`, with the bed's program paths
/// in place of /usr/sbin/qm and the others, and the `user_data` lines for
/// the snippets folder of the bed's storage `snippets_storage` (sudo 1.9.10
/// or later reads `^...$` arguments as regular expressions). Sessions keep
/// their environment (the bed's PATH and PVE_SIM_ROOT) through sudo.
fn rule_text(user: &str, bin: &Path, snippets: &Path) -> String {
    let b = bin.display();
    let lock = "/etc/pve/priv/lock";
    let dir = snippets.display().to_string().replace('.', "\\.");
    let hash = "pvefleet-[0-9a-f]{16}\\.yaml";
    format!(
        "Defaults:{user} !env_reset, !secure_path\n\
         {user} ALL=(root) NOPASSWD: {b}/qm, {b}/pvesh, {b}/pvesm, {b}/pveversion, \
         {b}/mkdir {lock}, {b}/mkdir {lock}/pvefleet-names, \
         {b}/touch -c -d @0 {lock}/pvefleet-names, {b}/rmdir {lock}/pvefleet-names, \
         /usr/bin/install ^-D -m 0600 -- /tmp/pvefleet-[a-z]{{12}}-[A-Za-z0-9.-]+/{hash} {dir}/{hash}$, \
         /usr/bin/rm ^-f --( {dir}/{hash})+$\n"
    )
}

impl TestBed {
    /// Lets [`SUDO_USER`] log in to every node with the bed's client key
    /// (made if missing), and, when `rule`, gives it the sudoers rule of
    /// docs/real-host.md. Keep the returned guard while the test runs.
    ///
    /// The rule's `user_data` lines allow the snippets folder of storage
    /// `snippets_storage` (a `dir` storage of the bed).
    pub fn sudo_user(&self, rule: bool, snippets_storage: &str) -> Result<SudoRule, String> {
        if !is_root() {
            return Err("a second user and a sudoers rule need root".into());
        }
        let known = Command::new("id")
            .arg(SUDO_USER)
            .output()
            .map_err(|e| e.to_string())?;
        if !known.status.success() {
            // Another test may add it at the same time: exit 9 is "exists".
            let out = Command::new("useradd")
                // `*`: no password, but not locked (sshd refuses locked
                // accounts even with a key).
                .args(["-M", "-s", "/bin/sh", "-p", "*", SUDO_USER])
                .output()
                .map_err(|e| format!("useradd: {e}"))?;
            if !out.status.success() && out.status.code() != Some(9) {
                return Err(format!("useradd: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        // The user's sessions read the bed's authorized_keys, HOME and
        // TMPDIR, and run the bed's program links.
        let d = self.dir.path();
        chmod(d, 0o711)?;
        for n in &self.nodes {
            let nd = d.join(format!("sshd-{}", n.name));
            chmod(&nd, 0o711)?;
            chmod(&nd.join("authorized_keys"), 0o644)?;
        }
        chmod(&d.join("home"), 0o755)?;
        chmod(&d.join("tmp"), 0o1777)?;
        chmod(&self.bin, 0o755)?;
        if !rule {
            return Ok(SudoRule { file: None });
        }
        let name = format!("pvefleet-bed-{}-{}", std::process::id(), next_suffix());
        let staged = d.join(&name);
        let node = self.nodes.first().map(|n| n.name.as_str()).unwrap_or("pve");
        let snippets = self
            .root
            .join(format!("nodes/{node}/storage/{snippets_storage}/snippets"));
        std::fs::write(&staged, rule_text(SUDO_USER, &self.bin, &snippets))
            .map_err(|e| e.to_string())?;
        chmod(&staged, 0o440)?;
        // A broken file in /etc/sudoers.d breaks sudo for everyone: check first.
        run(Command::new("visudo").arg("-cf").arg(&staged))?;
        let file = Path::new("/etc/sudoers.d").join(&name);
        std::fs::copy(&staged, &file).map_err(|e| format!("{}: {e}", file.display()))?;
        chmod(&file, 0o440)?;
        Ok(SudoRule { file: Some(file) })
    }
}

/// A suffix that differs between beds of one process.
fn next_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}
