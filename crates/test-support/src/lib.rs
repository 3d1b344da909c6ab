//! Test bed: a private OpenSSH `sshd` per emulated Proxmox node, on
//! loopback, whose sessions find pve-sim's `qm`/`pvesh`/`pvesm`/`pveversion`
//! first on PATH.
//!
//! Each [`SshNode`] gets its own host key, an authorized client key, and an
//! `authorized_keys` entry that sets `PATH`, `PVE_SIM_ROOT` and
//! `PVE_SIM_NODE` for the session. [`TestBed::ssh_config`] is a client
//! configuration that pins every host key (`StrictHostKeyChecking yes`).
//! Everything stops when the bed is dropped.

mod sudo;

pub use sudo::{SudoRule, SUDO_USER};

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's root `.bashrc`, as far as a non-interactive shell reads it.
const STOCK_BASHRC: &str =
    "# ~/.bashrc: executed by bash(1) for non-login shells.\n[ -z \"$PS1\" ] && return\n";

/// Where `sshd` is, or a clear message.
pub fn sshd_path() -> Result<PathBuf, String> {
    for p in ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"] {
        if Path::new(p).exists() {
            return Ok(p.into());
        }
    }
    Err("sshd is not installed: install openssh-server (apt-get install openssh-server); .ci/run and scripts/test do it".into())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn keygen(path: &Path) -> Result<String, String> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pvefleet-test", "-f"])
        .arg(path))?;
    std::fs::read_to_string(path.with_extension("pub")).map_err(|e| e.to_string())
}

/// One emulated node behind its own sshd.
pub struct SshNode {
    /// The Proxmox node name (also the ssh_config alias).
    pub name: String,
    /// The loopback address.
    pub ip: String,
    /// The port.
    pub port: u16,
    /// The host public key line.
    pub host_key: String,
    child: Child,
}

impl Drop for SshNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of emulated nodes sharing one pve-sim ROOT.
pub struct TestBed {
    /// Temporary folder holding everything.
    pub dir: tempfile::TempDir,
    /// The pve-sim state directory.
    pub root: PathBuf,
    /// Folder with the qm/pvesh/pvesm/pveversion links.
    pub bin: PathBuf,
    /// The client configuration (`ssh -F`).
    pub ssh_config: PathBuf,
    /// The nodes.
    pub nodes: Vec<SshNode>,
    /// The client key.
    pub client_key: PathBuf,
}

fn free_port(ip: &str) -> Result<u16, String> {
    let l = TcpListener::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "root".into())
}

impl TestBed {
    /// Starts one sshd per node name on 127.0.0.1 (one node) or 127.0.0.2,
    /// .3, ... (cluster). `sim` is a multi-call binary that acts as `qm` etc.
    /// when linked under those names; `init_args` go to `pve-sim init` (the
    /// nodes are added).
    pub fn start(sim: &Path, nodes: &[&str], init_args: &[&str]) -> Result<Self, String> {
        Self::start_with_sessions(sim, nodes, init_args, 10)
    }

    /// [`TestBed::start`] with sshd's `MaxSessions` (sessions per
    /// connection) set to `max_sessions` instead of its default 10.
    pub fn start_with_sessions(
        sim: &Path,
        nodes: &[&str],
        init_args: &[&str],
        max_sessions: u32,
    ) -> Result<Self, String> {
        let sshd = sshd_path()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let root = dir.path().join("root");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        for p in pve_sim::PROGRAMS {
            std::os::unix::fs::symlink(sim, bin.join(p)).map_err(|e| e.to_string())?;
        }
        // Called as `pve-sim`/`pvefleet`: `init` is only known to pve-sim, so
        // go through a link named pve-sim.
        let pve_sim = bin.join("pve-sim");
        std::os::unix::fs::symlink(sim, &pve_sim).map_err(|e| e.to_string())?;
        let mut init = Command::new(&pve_sim);
        init.arg("init").arg(&root);
        for n in nodes {
            init.args(["--node", n]);
        }
        init.args(init_args);
        run(&mut init)?;
        if is_root() {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        // The sessions' HOME, with the stock root .bashrc of a Proxmox host
        // (it returns at once for non-interactive shells), instead of this
        // machine's: bash reads ~/.bashrc for every command sshd runs.
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        std::fs::write(home.join(".bashrc"), STOCK_BASHRC).map_err(|e| e.to_string())?;
        // The sessions' TMPDIR, so that tests see what commands leave behind.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let client_key = dir.path().join("client_key");
        let client_pub = keygen(&client_key)?;
        let mut known = String::new();
        let mut cfg = String::new();
        let mut started = Vec::new();
        for (i, name) in nodes.iter().enumerate() {
            let ip = if nodes.len() == 1 {
                "127.0.0.1".to_string()
            } else {
                format!("127.0.0.{}", i + 2)
            };
            let port = free_port(&ip)?;
            let nd = dir.path().join(format!("sshd-{name}"));
            std::fs::create_dir_all(&nd).map_err(|e| e.to_string())?;
            let host_key_path = nd.join("host_key");
            let host_pub = keygen(&host_key_path)?;
            let path = format!(
                "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                bin.display()
            );
            let auth = format!(
                "environment=\"HOME={}\",environment=\"PATH={path}\",environment=\"PVE_SIM_ROOT={}\",environment=\"PVE_SIM_NODE={name}\",environment=\"TMPDIR={}\" {}",
                home.display(),
                root.display(),
                tmp.display(),
                client_pub.trim()
            );
            std::fs::write(nd.join("authorized_keys"), auth + "\n").map_err(|e| e.to_string())?;
            let conf = format!(
                "Port {port}\nListenAddress {ip}\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nPermitUserEnvironment yes\nMaxSessions {max_sessions}\nLogLevel ERROR\n",
                hk = host_key_path.display(),
                pid = nd.join("sshd.pid").display(),
                ak = nd.join("authorized_keys").display(),
            );
            let conf_path = nd.join("sshd_config");
            std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", sshd.display()))?;
            let addr: SocketAddr = format!("{ip}:{port}").parse().map_err(|e| format!("{e}"))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            // sshd writes its pid file once it listens; probing the port
            // instead would make it log every probe as a failed handshake.
            let pid_file = nd.join("sshd.pid");
            while !pid_file.exists() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("sshd on {addr} exited: {status}"));
                }
                if Instant::now() > deadline {
                    return Err(format!("sshd on {addr} did not start"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let mut parts = host_pub.split_whitespace();
            let key = format!(
                "{} {}",
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("")
            );
            let _ = writeln!(known, "{name} {key}");
            let _ = write!(
                cfg,
                "Host {name}\n  HostName {ip}\n  Port {port}\n  User {user}\n  IdentityFile {key_path}\n  IdentitiesOnly yes\n  HostKeyAlias {name}\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n",
                user = user(),
                key_path = client_key.display(),
                kh = dir.path().join("known_hosts").display(),
            );
            started.push(SshNode {
                name: name.to_string(),
                ip,
                port,
                host_key: key,
                child,
            });
        }
        std::fs::write(dir.path().join("known_hosts"), known).map_err(|e| e.to_string())?;
        let ssh_config = dir.path().join("ssh_config");
        std::fs::write(&ssh_config, cfg).map_err(|e| e.to_string())?;
        Ok(Self {
            root,
            bin,
            ssh_config,
            nodes: started,
            client_key,
            dir,
        })
    }

    /// Runs a shell line on `node` with the system ssh client.
    pub fn ssh(&self, node: &str, line: &str) -> std::process::Output {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.ssh_config)
            .arg(node)
            .arg(line)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ssh: {e}"))
    }

    /// Replaces the `.bashrc` every session runs (to test noisy rc files).
    pub fn set_bashrc(&self, text: &str) {
        std::fs::write(self.dir.path().join("home/.bashrc"), text)
            .unwrap_or_else(|e| panic!("bashrc: {e}"));
    }

    /// `pve-sim state ROOT` as JSON.
    pub fn state(&self) -> serde_json::Value {
        let out = Command::new(self.bin.join("pve-sim"))
            .arg("state")
            .arg(&self.root)
            .output()
            .unwrap_or_else(|e| panic!("state: {e}"));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("state is not JSON: {e}"))
    }

    /// Stops the sshd of `node`: it no longer accepts connections, as a
    /// node that is down or unreachable.
    pub fn stop_node(&mut self, node: &str) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.name == node) {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }

    /// The journal, one JSON object per invocation (`node`, `argv`,
    /// `start_ms`, `end_ms`, `exit`).
    pub fn journal_rows(&self) -> Vec<serde_json::Value> {
        self.journal()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The journal lines as raw JSON text.
    pub fn journal(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Forgets the journal (to look at one run only).
    pub fn clear_journal(&self) {
        let _ = std::fs::remove_file(self.root.join("journal.jsonl"));
    }

    /// Writes `ROOT/faults.json`.
    pub fn set_faults(&self, json: &str) {
        std::fs::write(self.root.join("faults.json"), json)
            .unwrap_or_else(|e| panic!("faults: {e}"));
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The argv of one journal row of [`TestBed::journal_rows`].
pub fn argv_of(row: &serde_json::Value) -> Vec<String> {
    row["argv"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
