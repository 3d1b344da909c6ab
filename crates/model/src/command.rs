//! Every invocation pvefleet sends to a Proxmox node, as data.
//!
//! A [`Command`] renders to argv with [`Command::argv`]; nothing else in
//! pvefleet spells a `qm` or `pvesh` flag. Quoting for the remote shell is the
//! transport's job ([`crate::shell`]).

use crate::VmId;

/// The options `qm create` takes and `qm set` refuses (qm-schema.json,
/// `create_only_parameters`).
pub const CREATE_ONLY: &[&str] = &[
    "archive",
    "bwlimit",
    "ha-managed",
    "import-working-storage",
    "live-restore",
    "pool",
    "start",
    "storage",
    "unique",
];

/// `--key value` pairs of `qm create`/`qm set`, in the order they are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QmOptions(Vec<(String, String)>);

impl QmOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `--key value`. A key given twice keeps both (qm keeps the last).
    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        self.0.push((key.to_string(), value.into()));
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The option names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs whose key `keep` accepts, in order.
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> QmOptions {
        QmOptions(self.0.iter().filter(|(k, _)| keep(k)).cloned().collect())
    }

    pub(crate) fn render(&self, argv: &mut Vec<String>) {
        for (k, v) in &self.0 {
            let mut flag = String::from("--");
            flag.push_str(k);
            argv.push(flag);
            argv.push(v.clone());
        }
    }
}

/// A `qm` invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Qm {
    /// `qm create <vmid> [OPTIONS]`.
    Create { vmid: VmId, options: QmOptions },
    /// `qm set <vmid> [OPTIONS] [--delete a,b]`.
    Set {
        vmid: VmId,
        options: QmOptions,
        delete: Vec<String>,
    },
    /// `qm disk import <vmid> <source> <storage>` (`qm importdisk` before PVE 7.3).
    ImportDisk {
        vmid: VmId,
        source: String,
        storage: String,
        /// Spell it `qm importdisk` (PVE < 7.3 has no `disk` group).
        legacy: bool,
    },
    /// `qm disk resize <vmid> <disk> <size>` (`qm resize` before PVE 7.3).
    DiskResize {
        vmid: VmId,
        disk: String,
        size: String,
        legacy: bool,
    },
    /// `qm disk unlink <vmid> --idlist a,b [--force 1]` (`qm unlink`
    /// before PVE 7.3): detaches disks; with `force` it also destroys
    /// their volumes (qemu-server `try_deallocate_drive`).
    DiskUnlink {
        vmid: VmId,
        idlist: Vec<String>,
        force: bool,
        legacy: bool,
    },
    /// `qm start <vmid>`.
    Start { vmid: VmId },
    /// `qm stop <vmid>`: hard stop; a stopped VM is a silent success.
    Stop { vmid: VmId, skiplock: bool },
    /// `qm shutdown <vmid> --timeout N --forceStop 1`.
    Shutdown { vmid: VmId, timeout: u32 },
    /// `qm reboot <vmid>`: applies pending changes.
    Reboot { vmid: VmId },
    /// `qm resume <vmid>`: continues a paused VM.
    Resume { vmid: VmId },
    /// `qm destroy <vmid> --purge 1 --destroy-unreferenced-disks 1`.
    Destroy { vmid: VmId, skiplock: bool },
    /// `qm clone <vmid> <newid> --name N [--full 0|1] [--storage S]`.
    Clone {
        vmid: VmId,
        newid: VmId,
        name: String,
        full: bool,
        storage: Option<String>,
    },
    /// `qm template <vmid>`.
    Template { vmid: VmId },
    /// `qm config <vmid>`.
    Config { vmid: VmId },
    /// `qm guest cmd <vmid> <command>`.
    GuestCmd { vmid: VmId, command: String },
    /// `qm cloudinit update <vmid>` (PVE 7.3+): regenerates the cloud-init
    /// drive of a running VM now, rather than at its next start.
    CloudinitUpdate { vmid: VmId },
    /// `qm guest exec <vmid> --synchronous 0 -- <command...>`: starts a
    /// command in the guest and prints its pid.
    GuestExec { vmid: VmId, command: Vec<String> },
    /// `qm guest exec-status <vmid> <pid>`.
    GuestExecStatus { vmid: VmId, pid: u64 },
}

/// A `pvesh get <path> --output-format json` invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pvesh {
    /// The API path, e.g. `/cluster/resources`.
    pub path: String,
    /// Extra `--key value` parameters.
    pub params: Vec<(String, String)>,
}

impl Pvesh {
    fn get(path: String) -> Self {
        Self {
            path,
            params: Vec::new(),
        }
    }

    fn param(mut self, key: &str, value: &str) -> Self {
        self.params.push((key.to_string(), value.to_string()));
        self
    }

    /// `/version`: the pve-manager version.
    pub fn version() -> Self {
        Self::get("/version".into())
    }

    /// `/cluster/resources --type vm`: every guest of the cluster.
    pub fn cluster_vms() -> Self {
        Self::get("/cluster/resources".into()).param("type", "vm")
    }

    /// `/cluster/resources`: every guest, node (with memory figures) and
    /// storage (with its `shared` flag) of the cluster, in one answer.
    pub fn cluster_resources() -> Self {
        Self::get("/cluster/resources".into())
    }

    /// `/nodes`: the cluster's nodes.
    pub fn get_nodes() -> Self {
        Self::get("/nodes".into())
    }

    /// `/cluster/ha/resources`: every HA resource (`sid`, `state`, `group`).
    pub fn ha_resources() -> Self {
        Self::get("/cluster/ha/resources".into())
    }

    /// `/cluster/nextid`: the lowest free VM id (reserves nothing).
    pub fn next_id() -> Self {
        Self::get("/cluster/nextid".into())
    }

    /// `/nodes/{node}/qemu --full 1`: fresh status of the node's VMs, with
    /// `qmpstatus` (only `--full` queries QEMU, so only it tells a paused
    /// VM from a running one; CONTRACT §12.4).
    pub fn node_vms(node: &str) -> Self {
        Self::get(["/nodes/", node, "/qemu"].concat()).param("full", "1")
    }

    /// `/nodes/{node}/network`: the node's interfaces and bridges.
    pub fn node_network(node: &str) -> Self {
        Self::get(["/nodes/", node, "/network"].concat())
    }

    /// `/nodes/{node}/storage/{storage}/content`.
    pub fn storage_content(node: &str, storage: &str) -> Self {
        Self::get(["/nodes/", node, "/storage/", storage, "/content"].concat())
    }

    /// `/nodes/{node}/qemu/{vmid}/pending`: current and pending config.
    pub fn vm_pending(node: &str, vmid: VmId) -> Self {
        Self::get(["/nodes/", node, "/qemu/", &vmid.to_string(), "/pending"].concat())
    }
}

/// One invocation on a Proxmox node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A `qm` command.
    Qm(Qm),
    /// A `pvesh get` with JSON output.
    Pvesh(Pvesh),
    /// `pvesm path <volid>`: the host path of a volume.
    PvesmPath { volid: String },
    /// An `ha-manager` command on a VM's HA resource.
    HaManager(crate::ha::HaManager),
    /// `pvesh set /pools/{pool} --vms VMID [--delete 1]`: adds the VM to
    /// the pool, or removes it from it. The `/pools/{poolid}` path exists
    /// on PVE 7.x to 9.x (deprecated for `PUT /pools --poolid` once nested
    /// pools came, still served), but cannot name a nested pool (`a/b`):
    /// those, which only hosts with the newer form have, go `pvesh set
    /// /pools --poolid a/b`. Adding a VM that is in another pool fails, so
    /// a move is a removal from the old pool first.
    PoolMember {
        /// The pool.
        pool: String,
        /// The VM.
        vmid: VmId,
        /// Remove instead of add.
        remove: bool,
    },
    /// Takes the cluster-wide pmxcfs lock `name` (CONTRACT §19): `mkdir
    /// /etc/pve/priv/lock/<name>`, tried again every 0.5 s while another
    /// holder has it, for at most `wait_secs`.
    CfsLock { name: String, wait_secs: u32 },
    /// Releases the pmxcfs lock `name`: `rmdir /etc/pve/priv/lock/<name>`.
    CfsUnlock { name: String },
    /// Exits 0 only when no process holds the VM's config flock
    /// (`flock -n /var/lock/qemu-server/lock-<vmid>.conf true`): a live
    /// create holds it, the leftover of an interrupted one does not
    /// (CONTRACT §19).
    LockProbe { vmid: VmId },
    /// Copies the file `src` (an upload of this run) to `dest` with mode
    /// 0600, making `dest`'s folder when missing (`install -D -m 0600`):
    /// how a cloud-init snippet reaches its storage's `snippets/` folder.
    InstallFile { src: String, dest: String },
    /// Removes files (`rm -f --`): the fleet's snippets no VM uses.
    RemoveFiles { paths: Vec<String> },
    /// `pvesh create .../download-url`: downloads an image to a storage.
    DownloadUrl(crate::DownloadUrl),
}

/// Where pmxcfs keeps its cluster-wide locks (CONTRACT §19).
pub const CFS_LOCK_DIR: &str = "/etc/pve/priv/lock/";

/// The fixed script of [`Command::CfsLock`]: `$1` the lock directory, `$2`
/// the number of tries. The lock folder is made first, as Proxmox's own
/// `cfs_lock` does (it may not exist yet). Only "File exists" (another
/// holder) is waited out, each try with pmxcfs's unlock request (`touch -c
/// -d @0`: granted only for a lock older than 120 s, as Proxmox's own
/// `cfs_lock` sends it with utime; `-c` so that a lock released meanwhile
/// does not become a file). Any other failure of `mkdir` (no quorum, no
/// pmxcfs) is an error at once. `$PVEFLEET_SUDO` is empty, or `sudo -n`
/// for a user other than root (the transport sets it for `become: sudo`).
const CFS_LOCK_SCRIPT: &str = "LC_ALL=C $PVEFLEET_SUDO mkdir \"${1%/*}\" 2>/dev/null; i=0; until e=$(LC_ALL=C $PVEFLEET_SUDO mkdir \"$1\" 2>&1); do case \"$e\" in *'File exists'*) $PVEFLEET_SUDO touch -c -d @0 \"$1\" 2>/dev/null ;; *) echo \"cannot take the cluster lock $1: $e\" >&2; exit 2;; esac; i=$((i+1)); if [ \"$i\" -ge \"$2\" ]; then echo \"cannot take the cluster lock $1: another run holds it\" >&2; exit 1; fi; sleep 0.5; done";

impl Command {
    /// The argv exactly as the node's program receives it.
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String>;
        let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        match self {
            Command::Pvesh(p) => {
                a = words(&["pvesh", "get", &p.path]);
                for (k, v) in &p.params {
                    a.push(["--", k].concat());
                    a.push(v.clone());
                }
                a.push("--output-format".into());
                a.push("json".into());
            }
            Command::PvesmPath { volid } => a = words(&["pvesm", "path", volid]),
            Command::HaManager(h) => a = h.argv(),
            Command::PoolMember { pool, vmid, remove } => {
                a = if pool.contains('/') {
                    words(&["pvesh", "set", "/pools", "--poolid", pool])
                } else {
                    words(&["pvesh", "set", &["/pools/", pool].concat()])
                };
                a.extend(words(&["--vms", &vmid.to_string()]));
                if *remove {
                    a.extend(words(&["--delete", "1"]));
                }
            }
            Command::CfsLock { name, wait_secs } => {
                let dir = format!("{CFS_LOCK_DIR}{name}");
                let tries = (wait_secs.saturating_mul(2)).max(1).to_string();
                a = words(&["sh", "-c", CFS_LOCK_SCRIPT, "pvefleet-lock", &dir, &tries]);
            }
            Command::CfsUnlock { name } => {
                a = words(&["rmdir", &format!("{CFS_LOCK_DIR}{name}")]);
            }
            Command::LockProbe { vmid } => {
                let file = format!("/var/lock/qemu-server/lock-{vmid}.conf");
                a = words(&["flock", "-n", &file, "true"]);
            }
            Command::InstallFile { src, dest } => {
                a = words(&["install", "-D", "-m", "0600", "--", src, dest]);
            }
            Command::RemoveFiles { paths } => {
                a = words(&["rm", "-f", "--"]);
                a.extend(paths.iter().cloned());
            }
            Command::Qm(qm) => a = qm.argv(),
            Command::DownloadUrl(d) => a = d.argv(),
        }
        a
    }

    /// True for commands that change the node (everything but reads).
    pub fn changes_state(&self) -> bool {
        match self {
            Command::Pvesh(_) | Command::PvesmPath { .. } => false,
            Command::CfsLock { .. } | Command::CfsUnlock { .. } => true,
            Command::HaManager(_) | Command::PoolMember { .. } => true,
            Command::LockProbe { .. } => false,
            Command::InstallFile { .. } | Command::RemoveFiles { .. } => true,
            Command::DownloadUrl(_) => true,
            Command::Qm(qm) => !matches!(
                qm,
                Qm::Config { .. }
                    | Qm::GuestCmd { .. }
                    | Qm::GuestExec { .. }
                    | Qm::GuestExecStatus { .. }
            ),
        }
    }
}

impl Command {
    /// The VM id the command acts on (for `qm clone`, the new VM).
    fn target_mut(&mut self) -> Option<&mut VmId> {
        match self {
            Command::HaManager(h) => return Some(h.vmid_mut()),
            Command::PoolMember { vmid, .. } => return Some(vmid),
            _ => {}
        }
        let Command::Qm(qm) = self else { return None };
        Some(match qm {
            Qm::Clone { newid, .. } => newid,
            Qm::Create { vmid, .. }
            | Qm::Set { vmid, .. }
            | Qm::ImportDisk { vmid, .. }
            | Qm::DiskResize { vmid, .. }
            | Qm::DiskUnlink { vmid, .. }
            | Qm::Start { vmid }
            | Qm::Stop { vmid, .. }
            | Qm::Shutdown { vmid, .. }
            | Qm::Reboot { vmid }
            | Qm::Resume { vmid }
            | Qm::Destroy { vmid, .. }
            | Qm::Template { vmid }
            | Qm::Config { vmid }
            | Qm::GuestCmd { vmid, .. }
            | Qm::CloudinitUpdate { vmid }
            | Qm::GuestExec { vmid, .. }
            | Qm::GuestExecStatus { vmid, .. } => vmid,
        })
    }

    /// True when the command allocates or grows a volume, which Proxmox
    /// does under a per-storage lock (CONTRACT §11.3): create and set with
    /// a new disk, cloud-init drive or import, imports, clones and resizes.
    pub fn allocates(&self) -> bool {
        match self {
            Command::Qm(Qm::ImportDisk { .. } | Qm::DiskResize { .. } | Qm::Clone { .. }) => true,
            Command::Qm(Qm::Create { options, .. } | Qm::Set { options, .. }) => options
                .iter()
                .any(|(k, v)| crate::drive::is_disk_key(k) && allocates_volume(v)),
            _ => false,
        }
    }

    /// The command as one shell line, with a `--cipassword` value hidden:
    /// what plans and logs show.
    pub fn redacted(&self) -> String {
        let mut argv = self.argv();
        if let Command::Qm(Qm::Create { .. } | Qm::Set { .. }) = self {
            if let Some(i) = argv.iter().position(|a| a == "--cipassword") {
                if let Some(v) = argv.get_mut(i + 1) {
                    *v = "<hidden>".into();
                }
            }
        }
        crate::shell::quote_argv(&argv)
            .unwrap_or_else(|e| ["<unsendable: ", &e.to_string(), ">"].concat())
    }

    /// The same command aimed at another VM id (after an id clash).
    pub fn retarget(&self, old: VmId, new: VmId) -> Command {
        let mut c = self.clone();
        if let Some(id) = c.target_mut().filter(|id| **id == old) {
            *id = new;
        }
        c
    }
}

/// A drive value that makes Proxmox allocate: `STORAGE:SIZE`,
/// `STORAGE:cloudinit` or `import-from=`, not an existing volume. A value
/// that does not parse as a drive allocates nothing (Proxmox rejects it).
fn allocates_volume(value: &str) -> bool {
    crate::Drive::parse(value).is_ok_and(|d| d.allocates())
}

impl std::fmt::Display for Command {
    /// The command as one shell line, quoted as the transport sends it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match crate::shell::quote_argv(&self.argv()) {
            Ok(line) => f.write_str(&line),
            Err(e) => write!(f, "<unsendable: {e}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> VmId {
        VmId::new(n).expect("valid test vmid")
    }

    #[test]
    fn renders_argv() {
        let mut o = QmOptions::new();
        o.push("boot", "order=scsi0");
        o.push("tags", "pvefleet;web");
        let c = Command::Qm(Qm::Create {
            vmid: id(201),
            options: o,
        });
        assert_eq!(
            c.argv(),
            [
                "qm",
                "create",
                "201",
                "--boot",
                "order=scsi0",
                "--tags",
                "pvefleet;web"
            ]
        );
        assert_eq!(
            c.to_string(),
            "qm create 201 --boot 'order=scsi0' --tags 'pvefleet;web'"
        );
        let r = Command::Qm(Qm::DiskResize {
            vmid: id(201),
            disk: "scsi0".into(),
            size: "20G".into(),
            legacy: true,
        });
        assert_eq!(r.argv(), ["qm", "resize", "201", "scsi0", "20G"]);
        let p = Command::Pvesh(Pvesh::cluster_vms());
        assert_eq!(
            p.to_string(),
            "pvesh get /cluster/resources --type vm --output-format json"
        );
        assert!(!p.changes_state());
        assert!(c.changes_state());
        let moved = c.retarget(id(201), id(205));
        assert_eq!(moved.argv()[2], "205");
        let clone = Command::Qm(Qm::Clone {
            vmid: id(9000),
            newid: id(201),
            name: "a".into(),
            full: false,
            storage: None,
        });
        assert_eq!(
            clone.retarget(id(201), id(205)).argv()[2..4],
            ["9000", "205"]
        );
        assert_eq!(c.retarget(id(300), id(301)), c);
        let mut o = QmOptions::new();
        o.push("cipassword", "s3cret");
        let set = Command::Qm(Qm::Set {
            vmid: id(201),
            options: o,
            delete: Vec::new(),
        });
        assert_eq!(set.redacted(), "qm set 201 --cipassword '<hidden>'");
        assert!(set.to_string().contains("s3cret"));
    }

    #[test]
    fn knows_which_commands_allocate() {
        let with = |k: &str, v: &str| {
            let mut o = QmOptions::new();
            o.push("name", "a");
            o.push(k, v);
            o
        };
        let create = |k: &str, v: &str| {
            Command::Qm(Qm::Create {
                vmid: id(201),
                options: with(k, v),
            })
        };
        assert!(create("scsi0", "local-lvm:0,import-from=/var/lib/vz/x.img").allocates());
        assert!(create("scsi0", "local-lvm:32").allocates());
        assert!(create("ide2", "local-lvm:cloudinit").allocates());
        assert!(create("scsi1", "8").allocates());
        assert!(!create("scsi0", "local-lvm:vm-201-disk-0,size=4G").allocates());
        assert!(!create("ide2", "local:iso/x.iso,media=cdrom").allocates());
        assert!(!create("ide2", "none,media=cdrom").allocates());
        assert!(!create("net0", "virtio,bridge=vmbr0").allocates());
        let set = Command::Qm(Qm::Set {
            vmid: id(201),
            options: with("ide2", "local-lvm:cloudinit"),
            delete: Vec::new(),
        });
        assert!(set.allocates());
        assert!(Command::Qm(Qm::DiskResize {
            vmid: id(201),
            disk: "scsi0".into(),
            size: "8G".into(),
            legacy: false
        })
        .allocates());
        assert!(!Command::Qm(Qm::Start { vmid: id(201) }).allocates());
    }

    #[test]
    fn resume_and_the_full_vm_listing() {
        let r = Command::Qm(Qm::Resume { vmid: id(201) });
        assert_eq!(r.argv(), ["qm", "resume", "201"]);
        assert!(r.changes_state() && !r.allocates());
        assert_eq!(r.retarget(id(201), id(205)).argv()[2], "205");
        assert_eq!(
            Command::Pvesh(Pvesh::node_vms("pve")).to_string(),
            "pvesh get /nodes/pve/qemu --full 1 --output-format json"
        );
    }

    #[test]
    fn snippet_commands() {
        let i = Command::InstallFile {
            src: "/tmp/pvefleet-x/a b.yaml".into(),
            dest: "/var/lib/vz/snippets/a.yaml".into(),
        };
        assert_eq!(
            i.argv(),
            [
                "install",
                "-D",
                "-m",
                "0600",
                "--",
                "/tmp/pvefleet-x/a b.yaml",
                "/var/lib/vz/snippets/a.yaml"
            ]
        );
        assert_eq!(
            i.to_string(),
            "install -D -m 0600 -- '/tmp/pvefleet-x/a b.yaml' /var/lib/vz/snippets/a.yaml"
        );
        assert!(i.changes_state() && !i.allocates());
        let r = Command::RemoveFiles {
            paths: vec!["/a".into(), "/b".into()],
        };
        assert_eq!(r.argv(), ["rm", "-f", "--", "/a", "/b"]);
        let u = Command::Qm(Qm::CloudinitUpdate { vmid: id(201) });
        assert_eq!(u.argv(), ["qm", "cloudinit", "update", "201"]);
        assert_eq!(u.retarget(id(201), id(205)).argv()[3], "205");
    }
}
