//! The emulated cluster's state, kept in `ROOT/state.json` and guarded by
//! file locks so that many `qm` processes (on several nodes sharing one
//! ROOT) can run at once.

use crate::schema::Failure;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// True when pve-manager `version` (`8.4.1`, `7.1-10`) is `maj.min` or later.
pub fn version_at_least(version: &str, maj: u32, min: u32) -> bool {
    let mut it = version.split(['.', '-']);
    let major = it.next().and_then(|v| v.parse().ok()).unwrap_or(8);
    let minor = it.next().and_then(|v| v.parse().ok()).unwrap_or(4);
    (major, minor) >= (maj, min)
}

/// Host behaviour knobs, set by `pve-sim init`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// pve-manager version, e.g. `8.4.1`.
    pub version: String,
    /// Start-up cost of every invocation.
    pub latency_ms: u64,
    /// Host CPU slots shared by invocations on one node.
    pub slots: u32,
    /// Import/copy bandwidth per storage in MB/s (0: instant).
    pub import_mbps: u64,
    /// Guest agent answers this long after start.
    pub agent_after_ms: u64,
    /// How long `qm guest cmd` waits for a silent agent (real: 3000).
    pub agent_ping_ms: u64,
    /// How long `/cluster/resources` lags behind for name and status.
    pub rrd_lag_ms: u64,
    /// How long allocating a volume holds the storage's lock (0: instant).
    #[serde(default)]
    pub alloc_ms: u64,
    /// Thin volumes outside pve-sim's model (bytes) on every LVM-thin pool,
    /// as on a homelab host: while they and the modelled volumes add up to
    /// more than the volume group (just under 100 GiB), lvm2 warns about
    /// over-provisioning on each allocation and resize there (CONTRACT §2).
    /// `None`: the pools have room and lvm2 is quiet.
    #[serde(default)]
    pub thin_overprovisioned: Option<u64>,
    /// How long pmxcfs keeps a cluster-wide lock before an unlock request
    /// may remove it (real: 120 s, CONTRACT §19).
    #[serde(default = "default_cfs_lock_expiry_ms")]
    pub cfs_lock_expiry_ms: u64,
}

fn default_cfs_lock_expiry_ms() -> u64 {
    120_000
}

/// What pmxcfs remembers of a lock directory under `/etc/pve/priv/lock`:
/// the node that made it (only it may refresh it) and when its lifetime
/// began (pmxcfs counts from when it first saw the lock, not from the
/// directory's mtime, CONTRACT §19).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CfsLock {
    /// The node that created the lock.
    pub node: String,
    /// When its lifetime began (ms since the epoch).
    pub since_ms: u64,
    /// Its mtime (seconds since the epoch).
    pub mtime: u64,
}

/// A node of the cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeDef {
    /// Node name.
    pub name: String,
    /// Bridges on the node.
    pub bridges: Vec<String>,
    /// Memory in bytes.
    pub memory: u64,
}

/// A storage definition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StorageDef {
    /// Storage id.
    pub id: String,
    /// `dir` or `lvmthin` (or `zfspool`, which behaves like lvmthin).
    pub kind: String,
    /// Content types.
    pub content: Vec<String>,
    /// Shared between nodes.
    pub shared: bool,
}

impl StorageDef {
    /// True for file storages (volumes are files with an extension).
    pub fn is_dir(&self) -> bool {
        matches!(self.kind.as_str(), "dir" | "nfs" | "cifs" | "btrfs")
    }
}

/// A volume on a storage.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Volume {
    /// Storage id.
    pub storage: String,
    /// Node that holds it (for local storages).
    pub node: String,
    /// Volume name within the storage.
    pub volname: String,
    /// Size in bytes.
    pub size: u64,
    /// Content type.
    pub content: String,
    /// Format (`raw`, `qcow2`, `iso`).
    pub format: String,
    /// Owner VM id, for images.
    pub vmid: Option<u32>,
    /// Creation time (epoch seconds).
    pub ctime: u64,
}

impl Volume {
    /// `STORAGE:VOLNAME`.
    pub fn volid(&self) -> String {
        [self.storage.as_str(), ":", &self.volname].concat()
    }
}

/// One VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vm {
    /// Node it lives on.
    pub node: String,
    /// Configuration, keys as `qm config` prints them.
    pub config: BTreeMap<String, String>,
    /// Pending changes.
    pub pending: BTreeMap<String, String>,
    /// Pending deletions.
    pub pending_delete: Vec<String>,
    /// Running or stopped.
    pub running: bool,
    /// When it was started.
    pub started_ms: u64,
    /// When it was created.
    pub created_ms: u64,
}

impl Vm {
    /// A VM id reserved on `node` by a create or clone in progress: its
    /// config holds only `lock: <lock>`.
    pub fn reserved(node: &str, lock: &str) -> Self {
        let mut config = BTreeMap::new();
        config.insert("lock".to_string(), lock.to_string());
        Self {
            node: node.to_string(),
            config,
            pending: BTreeMap::new(),
            pending_delete: Vec::new(),
            running: false,
            started_ms: 0,
            created_ms: now_ms(),
        }
    }
}

/// The whole cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    /// Behaviour knobs.
    pub settings: Settings,
    /// Nodes.
    pub nodes: Vec<NodeDef>,
    /// Storages.
    pub storages: Vec<StorageDef>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// VMs by id.
    pub vms: BTreeMap<u32, Vm>,
    /// Custom CPU models of `/etc/pve/virtual-guest/cpu-models.conf`
    /// (names without the `custom-` prefix).
    #[serde(default)]
    pub cpu_models: Vec<String>,
    /// Invocation counts per fault rule, by its place and text in
    /// `faults.json` (a rewritten file starts its rules from zero).
    #[serde(default)]
    pub fault_counts: BTreeMap<String, u64>,
    /// pmxcfs's lock records, by lock name.
    #[serde(default)]
    pub cfs_locks: BTreeMap<String, CfsLock>,
    /// Resource pools and their member VM ids (`user.cfg`).
    #[serde(default)]
    pub pools: BTreeMap<String, std::collections::BTreeSet<u32>>,
    /// HA resources by sid (`vm:ID`), as `ha/resources.cfg` keeps them.
    #[serde(default)]
    pub ha_resources: BTreeMap<String, crate::lifecycle::HaEntry>,
    /// HA groups (`ha/groups.cfg`).
    #[serde(default)]
    pub ha_groups: std::collections::BTreeSet<String>,
}

/// Where the state lives.
#[derive(Clone, Debug)]
pub struct Root(pub PathBuf);

impl Root {
    fn state_file(&self) -> PathBuf {
        self.0.join("state.json")
    }

    /// A path below ROOT.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// The real file behind a volume.
    pub fn volume_path(&self, st: &State, v: &Volume) -> PathBuf {
        let shared = st.storage(&v.storage).is_some_and(|s| s.shared);
        let base = if shared {
            self.0.join("shared").join(&v.storage)
        } else {
            self.0
                .join("nodes")
                .join(&v.node)
                .join("storage")
                .join(&v.storage)
        };
        let dir = st.storage(&v.storage).is_some_and(StorageDef::is_dir);
        if dir {
            let (kind, rest) = v.volname.split_once('/').unwrap_or(("", &v.volname));
            match kind {
                "iso" => base.join("template/iso").join(rest),
                "import" => base.join("import").join(rest),
                "snippets" => base.join("snippets").join(rest),
                _ => base.join("images").join(&v.volname),
            }
        } else {
            base.join(&v.volname)
        }
    }

    /// Where a node's host path lives under ROOT, for the parts of a node's
    /// file system pve-sim emulates: `/etc/pve/priv/lock` (pmxcfs, one for
    /// the cluster) and the node's own `/var/lock/qemu-server` and
    /// `/var/lock/pve-manager` (also as `/run/lock/...`). `None` elsewhere.
    pub fn emulated_path(&self, node: &str, p: &str) -> Option<PathBuf> {
        let p = p.trim_end_matches('/');
        if p == "/etc/pve/priv/lock" || p.starts_with("/etc/pve/priv/lock/") {
            return Some(self.0.join(&p[1..]));
        }
        for dir in ["qemu-server", "pve-manager"] {
            for base in ["/var/lock/", "/run/lock/"] {
                let top = [base, dir].concat();
                if let Some(rest) = p.strip_prefix(top.as_str()) {
                    if rest.is_empty() || rest.starts_with('/') {
                        let mut path = self.0.join("nodes").join(node).join("var/lock").join(dir);
                        if let Some(rest) = rest.strip_prefix('/') {
                            path = path.join(rest);
                        }
                        return Some(path);
                    }
                }
            }
        }
        None
    }

    /// The per-VM config lock file of `node` (CONTRACT §11.1, §19).
    pub fn vm_lock_path(&self, node: &str, vmid: u32) -> PathBuf {
        self.0
            .join("nodes")
            .join(node)
            .join("var/lock/qemu-server")
            .join(["lock-", &vmid.to_string(), ".conf"].concat())
    }

    /// Takes a flock on `path` (created if missing), waiting up to
    /// `timeout`. `None` on timeout. The same lock as util-linux `flock`.
    pub fn try_lock_path(&self, path: &Path, timeout: Duration) -> Option<File> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ok()?;
        let deadline = Instant::now() + timeout;
        loop {
            if f.try_lock().is_ok() {
                return Some(f);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Maps a host path: `/var/lib/vz/...` is the `local` storage of `node`.
    pub fn host_path(&self, node: &str, p: &str) -> PathBuf {
        match p.strip_prefix("/var/lib/vz/") {
            Some(rest) => self
                .0
                .join("nodes")
                .join(node)
                .join("storage/local")
                .join(rest),
            None => PathBuf::from(p),
        }
    }

    /// Runs `f` on the state under the exclusive state lock and saves it.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let _lock = self.lock_file("state.lock")?;
        let mut st = self.load_unlocked()?;
        let out = f(&mut st)?;
        self.save_unlocked(&st)?;
        Ok(out)
    }

    /// Reads the state (under the lock, released at return).
    pub fn read(&self) -> Result<State, Failure> {
        let _lock = self.lock_file("state.lock")?;
        self.load_unlocked()
    }

    fn load_unlocked(&self) -> Result<State, Failure> {
        let text = std::fs::read_to_string(self.state_file()).map_err(|e| {
            Failure::die(
                [
                    "pve-sim: cannot read ",
                    &self.state_file().display().to_string(),
                    ": ",
                    &e.to_string(),
                    " (run 'pve-sim init ROOT')",
                ]
                .concat(),
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::die(["pve-sim: broken state: ", &e.to_string()].concat()))
    }

    /// Writes the state without locking (for `init`).
    pub fn save_unlocked(&self, st: &State) -> Result<(), Failure> {
        let tmp = self.0.join("state.json.tmp");
        let text = serde_json::to_string_pretty(st).map_err(|e| Failure::die(e.to_string()))?;
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, self.state_file()))
            .map_err(|e| Failure::die(["pve-sim: cannot write state: ", &e.to_string()].concat()))
    }

    fn lock_file(&self, name: &str) -> Result<File, Failure> {
        let path = self.0.join(name);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                Failure::die(
                    [
                        "pve-sim: cannot open lock ",
                        &path.display().to_string(),
                        ": ",
                        &e.to_string(),
                    ]
                    .concat(),
                )
            })?;
        f.lock().map_err(|e| Failure::die(e.to_string()))?;
        Ok(f)
    }

    /// Takes `locks/NAME` (pve-sim's own locks) exclusively, waiting up to
    /// `timeout`. `None` on timeout.
    pub fn try_lock_for(&self, name: &str, timeout: Duration) -> Option<File> {
        self.try_lock_path(&self.0.join("locks").join(name), timeout)
    }
}

impl State {
    /// True when the host runs PVE `maj.min` or later.
    pub fn at_least(&self, maj: u32, min: u32) -> bool {
        version_at_least(&self.settings.version, maj, min)
    }

    /// The storage `id`.
    pub fn storage(&self, id: &str) -> Option<&StorageDef> {
        self.storages.iter().find(|s| s.id == id)
    }

    /// The node `name`.
    pub fn node(&self, name: &str) -> Option<&NodeDef> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Volumes of storage `id` visible from `node`.
    pub fn volumes_on<'a>(
        &'a self,
        node: &'a str,
        id: &'a str,
    ) -> impl Iterator<Item = &'a Volume> + 'a {
        let shared = self.storage(id).is_some_and(|s| s.shared);
        self.volumes
            .iter()
            .filter(move |v| v.storage == id && (shared || v.node == node))
    }

    /// Finds a volume by id as seen from `node`.
    pub fn find_volume(&self, node: &str, volid: &str) -> Option<&Volume> {
        let (s, _) = volid.split_once(':')?;
        let shared = self.storage(s).is_some_and(|d| d.shared);
        self.volumes
            .iter()
            .find(|v| v.storage == s && (shared || v.node == node) && v.volid() == volid)
    }

    /// The lowest free `vm-<vmid>-disk-N` on a storage (orphans and `base-`
    /// volumes count).
    pub fn next_disk_name(&self, node: &str, storage: &str, vmid: u32) -> u32 {
        let mut n = 0;
        loop {
            let a = ["vm-", &vmid.to_string(), "-disk-", &n.to_string()].concat();
            let b = ["base-", &vmid.to_string(), "-disk-", &n.to_string()].concat();
            let taken = self.volumes_on(node, storage).any(|v| {
                let name = v.volname.rsplit('/').next().unwrap_or("");
                let stem = name.split('.').next().unwrap_or("");
                stem == a || stem == b
            });
            if !taken {
                return n;
            }
            n += 1;
        }
    }
}
