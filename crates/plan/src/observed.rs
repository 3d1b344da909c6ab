//! What is on the nodes, parsed leniently from `pvesh ... --output-format json`.
//!
//! Proxmox prints numbers as JSON numbers or as strings depending on release
//! and endpoint (CONTRACT §12.1; the samples in `fixtures/pvesh/`), leaves out
//! keys that are unset and mixes entry types in one array. Every reader here
//! accepts both number shapes, tolerates missing keys and skips entry types
//! it does not know.

use pvefleet_model::{GuestKind, VmId, VmStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Why a pvesh answer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// Not JSON at all.
    #[error("{what}: not JSON ({source})")]
    Json {
        /// Which answer.
        what: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but not the expected shape.
    #[error("{what}: unexpected shape: {detail}")]
    Shape {
        /// Which answer.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

fn json(what: &str, bytes: &[u8]) -> Result<Value, ObserveError> {
    serde_json::from_slice(bytes).map_err(|source| ObserveError::Json {
        what: what.to_string(),
        source,
    })
}

fn array<'a>(what: &str, v: &'a Value) -> Result<&'a Vec<Value>, ObserveError> {
    // The agent API wraps results as {"result": [...]}; pvesh prints `data` only.
    let v = v.get("result").unwrap_or(v);
    v.as_array().ok_or_else(|| ObserveError::Shape {
        what: what.to_string(),
        detail: "expected an array".into(),
    })
}

/// An integer that may be a JSON number or a numeric string.
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A string; numbers are printed.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Perl-ish boolean: 1, "1", true, "" (false).
pub fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(other) => int(Some(other)).is_some_and(|i| i != 0),
        None => false,
    }
}

/// A pve-manager version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PveVersion {
    /// Major release.
    pub major: u32,
    /// Minor release.
    pub minor: u32,
    /// Patch level (`9.0.4`) or package revision (`7.4-16`).
    pub patch: u32,
}

impl PveVersion {
    /// Parses `9.0.4`, `7.4-16` or `6.2-4`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split(['.', '-']);
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// At least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// `qm create --scsi0 STORE:0,import-from=...` exists (PVE 7.2).
    pub fn has_import_from(self) -> bool {
        self.at_least(7, 2)
    }

    /// The `qm disk ...` command group exists (PVE 7.3).
    pub fn has_disk_group(self) -> bool {
        self.at_least(7, 3)
    }

    /// `import` content volumes are accepted by `import-from` (PVE 8.3).
    pub fn has_import_content(self) -> bool {
        self.at_least(8, 3)
    }
}

impl std::fmt::Display for PveVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Parses `pvesh get /version`.
pub fn parse_version(bytes: &[u8]) -> Result<PveVersion, ObserveError> {
    let v = json("/version", bytes)?;
    text(v.get("version"))
        .and_then(|s| PveVersion::parse(&s))
        .ok_or_else(|| ObserveError::Shape {
            what: "/version".into(),
            detail: "no usable 'version'".into(),
        })
}

/// A guest as `/cluster/resources --type vm` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterVm {
    /// The VM id.
    pub vmid: VmId,
    /// The node it lives on.
    pub node: String,
    /// A VM or a container.
    pub kind: GuestKind,
    /// Its name, when the RRD data has arrived (it lags up to 10 s).
    pub name: Option<String>,
    /// Template flag.
    pub template: bool,
    /// Tags, lower-cased.
    pub tags: Vec<String>,
    /// The status, possibly stale (`paused` only where pvesh gave the
    /// `qmpstatus`).
    pub status: Option<VmStatus>,
    /// The `lock:` value, if any.
    pub lock: Option<String>,
}

/// Splits a Proxmox tag string (`a;b`, `a,b` or `a b`) into lower-case tags.
pub fn split_tags(s: &str) -> Vec<String> {
    let mut tags: Vec<String> = s
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

fn vm_entry(item: &Value) -> Option<ClusterVm> {
    let vmid = VmId::new(int(item.get("vmid"))?).ok()?;
    Some(ClusterVm {
        vmid,
        node: text(item.get("node")).unwrap_or_default(),
        kind: text(item.get("type"))
            .and_then(|t| GuestKind::parse(&t).ok())
            .unwrap_or(GuestKind::Qemu),
        name: text(item.get("name")).filter(|n| !n.is_empty()),
        template: flag(item.get("template")),
        tags: text(item.get("tags"))
            .map(|t| split_tags(&t))
            .unwrap_or_default(),
        status: text(item.get("status"))
            .map(|s| VmStatus::from_pvesh(&s, text(item.get("qmpstatus")).as_deref())),
        lock: text(item.get("lock")),
    })
}

/// Parses `/cluster/resources` (any `--type`): the guests in it, skipping
/// nodes, storages, SDN and unknown entry types.
pub fn parse_cluster_vms(bytes: &[u8]) -> Result<Vec<ClusterVm>, ObserveError> {
    let v = json("/cluster/resources", bytes)?;
    Ok(array("/cluster/resources", &v)?
        .iter()
        .filter(|i| matches!(i.get("type").and_then(Value::as_str), Some("qemu" | "lxc")))
        .filter_map(vm_entry)
        .collect())
}

/// Parses `/nodes/{node}/qemu` (fresh per-node status) into guests of `node`.
pub fn parse_node_vms(node: &str, bytes: &[u8]) -> Result<Vec<ClusterVm>, ObserveError> {
    let v = json("/nodes/{node}/qemu", bytes)?;
    Ok(array("/nodes/{node}/qemu", &v)?
        .iter()
        .filter_map(|i| {
            let mut vm = vm_entry(i)?;
            vm.node = node.to_string();
            vm.kind = GuestKind::Qemu;
            Some(vm)
        })
        .collect())
}

/// Free memory of each node, from `/cluster/resources --type node`.
pub fn parse_node_memory(bytes: &[u8]) -> Result<BTreeMap<String, i64>, ObserveError> {
    let v = json("/cluster/resources --type node", bytes)?;
    Ok(array("/cluster/resources", &v)?
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("node"))
        .filter(|i| text(i.get("status")).as_deref() != Some("offline"))
        .filter_map(|i| {
            let node = text(i.get("node"))?;
            let free = int(i.get("maxmem"))? - int(i.get("mem")).unwrap_or(0);
            Some((node, free))
        })
        .collect())
}

/// The storages `/cluster/resources` marks as shared (`"shared": 1`, also
/// as a string): Proxmox locks them cluster-wide to allocate.
pub fn parse_shared_storages(bytes: &[u8]) -> Result<BTreeSet<String>, ObserveError> {
    let v = json("/cluster/resources", bytes)?;
    Ok(array("/cluster/resources", &v)?
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("storage"))
        .filter(|i| int(i.get("shared")) == Some(1))
        .filter_map(|i| text(i.get("storage")))
        .collect())
}

/// A storage as `/cluster/resources` lists it for one node (CONTRACT §12.3,
/// §18 "Storage content"): which content types it is enabled for and
/// whether the cluster shares it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageFacts {
    /// The enabled content types in the order Proxmox lists them
    /// (`iso,vztmpl,backup`); `None` when the entry has no `content`.
    pub content: Option<Vec<String>>,
    /// Shared between the nodes (one cluster-wide allocation lock).
    pub shared: bool,
    /// The plugin type (`dir`, `lvmthin`, `zfspool`, `nfs`, ...), when listed.
    pub kind: Option<String>,
}

impl StorageFacts {
    /// True when the storage is enabled for `content`, or when its content
    /// types were not listed (nothing to hold against it).
    pub fn holds(&self, content: &str) -> bool {
        self.content
            .as_ref()
            .is_none_or(|c| c.iter().any(|t| t == content))
    }
}

/// Each node's storages from `/cluster/resources` (entries of type
/// `storage`), by node then storage id. `content` is a comma-separated list
/// (`rootdir,images`; `none` for no type); `shared` is 0/1, also as a string.
pub fn parse_storages(
    bytes: &[u8],
) -> Result<BTreeMap<String, BTreeMap<String, StorageFacts>>, ObserveError> {
    let v = json("/cluster/resources", bytes)?;
    let mut out: BTreeMap<String, BTreeMap<String, StorageFacts>> = BTreeMap::new();
    for i in array("/cluster/resources", &v)? {
        if i.get("type").and_then(Value::as_str) != Some("storage") {
            continue;
        }
        let (Some(node), Some(storage)) = (text(i.get("node")), text(i.get("storage"))) else {
            continue;
        };
        let content = text(i.get("content")).map(|c| {
            let mut list: Vec<String> = Vec::new();
            for t in c.split([',', ';', ' ']).map(str::trim) {
                if !t.is_empty() && t != "none" && !list.iter().any(|x| x == t) {
                    list.push(t.to_string());
                }
            }
            list
        });
        out.entry(node).or_default().insert(
            storage,
            StorageFacts {
                content,
                shared: flag(i.get("shared")),
                kind: text(i.get("plugintype")),
            },
        );
    }
    Ok(out)
}

/// Parses `/cluster/nextid` (a number or a string).
pub fn parse_next_id(bytes: &[u8]) -> Result<u32, ObserveError> {
    let v = json("/cluster/nextid", bytes)?;
    int(Some(&v))
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| ObserveError::Shape {
            what: "/cluster/nextid".into(),
            detail: "not a number".into(),
        })
}

/// Names of the bridges in `/nodes/{node}/network` (Linux and OVS).
pub fn parse_bridges(bytes: &[u8]) -> Result<Vec<String>, ObserveError> {
    let v = json("/nodes/{node}/network", bytes)?;
    let mut out: Vec<String> = array("/nodes/{node}/network", &v)?
        .iter()
        .filter(|i| {
            matches!(
                i.get("type").and_then(Value::as_str),
                Some("bridge" | "OVSBridge")
            )
        })
        .filter_map(|i| text(i.get("iface")))
        .collect();
    out.sort();
    Ok(out)
}

/// One volume of a storage content listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `STORAGE:VOLNAME`.
    pub volid: String,
    /// Content type, when listed.
    pub content: Option<String>,
    /// Size in bytes, when listed.
    pub size: Option<i64>,
}

/// Parses `/nodes/{node}/storage/{storage}/content`.
pub fn parse_content(bytes: &[u8]) -> Result<Vec<Volume>, ObserveError> {
    let v = json("storage content", bytes)?;
    Ok(array("storage content", &v)?
        .iter()
        .filter_map(|i| {
            Some(Volume {
                volid: text(i.get("volid"))?,
                content: text(i.get("content")),
                size: int(i.get("size")),
            })
        })
        .collect())
}

/// A VM's configuration: current values and pending changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    /// The running configuration (`qm config --current`).
    pub current: BTreeMap<String, String>,
    /// Changes written but not yet applied (need a reboot).
    pub pending: BTreeMap<String, String>,
    /// Keys whose deletion is pending.
    pub pending_delete: BTreeSet<String>,
}

impl VmConfig {
    /// The value as it will be after the pending changes apply.
    pub fn effective(&self, key: &str) -> Option<&str> {
        if self.pending_delete.contains(key) {
            return None;
        }
        self.pending
            .get(key)
            .or_else(|| self.current.get(key))
            .map(String::as_str)
    }
}

/// Parses `/nodes/{node}/qemu/{vmid}/pending`: `[{key, value, pending, delete}]`.
pub fn parse_pending(bytes: &[u8]) -> Result<VmConfig, ObserveError> {
    let v = json("pending config", bytes)?;
    let mut cfg = VmConfig::default();
    for item in array("pending config", &v)? {
        let Some(key) = text(item.get("key")) else {
            continue;
        };
        if key == "digest" {
            continue;
        }
        if let Some(value) = text(item.get("value")) {
            cfg.current.insert(key.clone(), value);
        }
        if let Some(p) = text(item.get("pending")) {
            cfg.pending.insert(key.clone(), p);
        }
        if flag(item.get("delete")) {
            cfg.pending_delete.insert(key);
        }
    }
    Ok(cfg)
}

/// Addresses the guest agent reports (`qm guest cmd ID network-get-interfaces`,
/// bare array or `{"result": [...]}`), excluding loopback and link-local.
pub fn parse_agent_addresses(bytes: &[u8]) -> Result<Vec<std::net::IpAddr>, ObserveError> {
    let v = json("guest agent interfaces", bytes)?;
    let list = match v.get("result").unwrap_or(&v) {
        Value::Array(a) => a.clone(),
        Value::Object(o) if o.contains_key("error") => {
            return Err(ObserveError::Shape {
                what: "guest agent interfaces".into(),
                detail: text(o.get("error").and_then(|e| e.get("desc")))
                    .unwrap_or_else(|| "agent error".into()),
            })
        }
        _ => {
            return Err(ObserveError::Shape {
                what: "guest agent interfaces".into(),
                detail: "expected an array".into(),
            })
        }
    };
    let mut out = Vec::new();
    for iface in &list {
        let Some(addrs) = iface.get("ip-addresses").and_then(Value::as_array) else {
            continue;
        };
        for a in addrs {
            let Some(ip) =
                text(a.get("ip-address")).and_then(|s| s.parse::<std::net::IpAddr>().ok())
            else {
                continue;
            };
            let skip = match ip {
                std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
                std::net::IpAddr::V6(v6) => {
                    v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80
                }
            };
            if !skip {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

/// Everything observed on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// The Proxmox node name.
    pub name: String,
    /// The pve-manager version.
    pub version: Option<PveVersion>,
    /// Bridges on the node.
    pub bridges: Vec<String>,
    /// Content of the storages that hold configured images.
    pub storages: BTreeMap<String, Vec<Volume>>,
    /// Host paths of configured image volumes (`pvesm path`).
    pub image_paths: BTreeMap<String, String>,
    /// The node's VMs with fresh status (`/nodes/{node}/qemu`).
    pub vms: Vec<ClusterVm>,
    /// Configurations of the managed VMs on this node.
    pub configs: BTreeMap<VmId, VmConfig>,
    /// Free memory in bytes, when known.
    pub free_memory: Option<i64>,
}

/// Everything observed, for all nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Per node.
    pub nodes: Vec<NodeState>,
    /// Every guest of the cluster, from `/cluster/resources`.
    pub cluster_vms: Vec<ClusterVm>,
    /// `/cluster/nextid`.
    pub next_id: Option<u32>,
    /// Storages shared between nodes (one cluster-wide allocation lock).
    #[serde(default)]
    pub shared_storages: BTreeSet<String>,
    /// Nodes of the file that could not be reached or read, and why: their
    /// VMs are left alone this run.
    #[serde(default)]
    pub unreachable: BTreeMap<String, String>,
    /// VMs whose config holds only `lock: create`/`lock: clone` and whose
    /// config flock nobody holds: leftovers of an interrupted create
    /// (CONTRACT §19).
    #[serde(default)]
    pub leftovers: BTreeSet<VmId>,
    /// Managed VMs without a system disk whose config flock a process holds
    /// (`flock -n` answered 1): a run is making them (an import holds it).
    #[serde(default)]
    pub busy: BTreeSet<VmId>,
    /// When the nodes were read (seconds since the epoch, the control
    /// host's clock), to tell a VM another run is making right now from
    /// one an interrupted run left.
    #[serde(default)]
    pub observed_at: Option<u64>,
    /// Each node's storages (content types, shared), by node then storage,
    /// from `/cluster/resources`. A node missing here was not described:
    /// its storages are not checked.
    #[serde(default)]
    pub storage_facts: BTreeMap<String, BTreeMap<String, StorageFacts>>,
    /// Storages `/cluster/resources` lists as not active on a node (a
    /// `status` other than `available`), by node.
    #[serde(default)]
    pub inactive_storages: BTreeMap<String, BTreeSet<String>>,
    /// Pools, pool members and HA resources.
    #[serde(default)]
    pub lifecycle: crate::lifecycle_observed::LifecycleObserved,
}

/// What is known of a storage on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageOnNode<'a> {
    /// Nothing was observed about the node's storages.
    Unknown,
    /// The node has no storage of that id.
    Missing,
    /// The storage as listed.
    Present(&'a StorageFacts),
}

impl Observed {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node named `name`, to fill in.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// The guest with `vmid`, anywhere in the cluster; the node's own fresh
    /// listing wins over `/cluster/resources`.
    pub fn vm(&self, vmid: VmId) -> Option<&ClusterVm> {
        self.nodes
            .iter()
            .flat_map(|n| n.vms.iter())
            .find(|v| v.vmid == vmid)
            .or_else(|| self.cluster_vms.iter().find(|v| v.vmid == vmid))
    }

    /// What is known of `storage` on `node`.
    pub fn storage_on(&self, node: &str, storage: &str) -> StorageOnNode<'_> {
        match self.storage_facts.get(node) {
            None => StorageOnNode::Unknown,
            Some(all) if all.is_empty() => StorageOnNode::Unknown,
            Some(all) => all
                .get(storage)
                .map_or(StorageOnNode::Missing, StorageOnNode::Present),
        }
    }

    /// The storages of `node` enabled for VM disks (`images`), sorted.
    pub fn image_storages(&self, node: &str) -> Vec<String> {
        self.storage_facts
            .get(node)
            .map(|all| {
                all.iter()
                    .filter(|(_, f)| {
                        f.content
                            .as_ref()
                            .is_some_and(|c| c.iter().any(|t| t == "images"))
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True when `vm` looks like an unfinished create or clone: a
    /// `lock: create`/`lock: clone`, no name of its own (the API shows
    /// `VM <id>` for a config without one), no tags.
    pub fn looks_unfinished(vm: &ClusterVm) -> bool {
        let placeholder = format!("VM {}", vm.vmid);
        matches!(vm.lock.as_deref(), Some("create" | "clone"))
            && vm.name.as_deref().is_none_or(|n| n == placeholder)
            && vm.tags.is_empty()
            && !vm.template
    }

    /// All guests known, fresh node listings first, without duplicates.
    pub fn all_vms(&self) -> Vec<&ClusterVm> {
        let mut out: Vec<&ClusterVm> = self.nodes.iter().flat_map(|n| n.vms.iter()).collect();
        let mut seen: BTreeSet<VmId> = out.iter().map(|v| v.vmid).collect();
        out.extend(self.cluster_vms.iter().filter(|v| seen.insert(v.vmid)));
        out
    }
}
