//! One entry of `vms:`, merged over `defaults:`, into a [`VmSpec`].
//!
//! Most keys decode on their own and go through the [`FIELDS`] table. Keys
//! that depend on each other (`ip` and `gateway`, `image` and `clone`, the two
//! sources of SSH keys) or on the connection (`node`) have their own rules.

use super::primitives::{is_tag, is_unix_user};
use super::{Cx, Fields};
use crate::error::{ErrorKind, Span};
use crate::keys;
use crate::limits::shown;
use crate::raw::{Key, Node, Value};
use crate::spec::{DiskFrom, NodeConn, Placement, PowerState, VmSpec, WaitFor};
use pvefleet_model::lifecycle::{Firmware, Lifecycle};
use pvefleet_model::{size, NodeName, VmId};
use std::collections::HashSet;

/// The configured node names, gathered once for every VM's `node`.
pub(super) struct NodeNames<'a> {
    names: HashSet<&'a str>,
    /// The names for a hint: all of them, or the first ten and a count.
    listed: String,
}

impl<'a> NodeNames<'a> {
    pub(super) fn new(nodes: &'a [NodeConn]) -> Self {
        const LISTED: usize = 10;
        let all: Vec<&str> = nodes.iter().filter_map(|c| c.name.as_deref()).collect();
        let listed = if all.len() > LISTED {
            format!("{}, … ({} nodes)", all[..LISTED].join(", "), all.len())
        } else {
            all.join(", ")
        };
        Self {
            names: all.into_iter().collect(),
            listed,
        }
    }
}

/// A VM being decoded: the language's built-in defaults, overwritten by each
/// key the VM (or `defaults:`) sets.
struct Draft {
    vmid: Option<VmId>,
    name: Option<String>,
    memory: u64,
    cores: u32,
    sockets: u32,
    cpu: Option<String>,
    bridge: String,
    vlan: Option<u16>,
    mac: Option<String>,
    nameserver: Vec<String>,
    searchdomain: Option<String>,
    user: Option<String>,
    password: Option<String>,
    storage: String,
    disk: Option<u64>,
    disk_from: DiskFrom,
    tags: Vec<String>,
    description: Option<String>,
    onboot: bool,
    state: PowerState,
    wait: WaitFor,
    firmware: Firmware,
    lifecycle: Lifecycle,
}

impl Default for Draft {
    fn default() -> Self {
        Self {
            vmid: None,
            name: None,
            memory: 1024,
            cores: 1,
            sockets: 1,
            cpu: None,
            bridge: "vmbr0".to_string(),
            vlan: None,
            mac: None,
            nameserver: Vec::new(),
            searchdomain: None,
            user: None,
            password: None,
            storage: "local-lvm".to_string(),
            disk: None,
            disk_from: DiskFrom::Import,
            tags: Vec::new(),
            description: None,
            onboot: false,
            state: PowerState::Running,
            wait: WaitFor::Ip,
            firmware: Firmware::default(),
            lifecycle: Lifecycle::default(),
        }
    }
}

/// Decodes one key's value into the draft; `None` when the value is invalid
/// (the error is already recorded).
type Decode = fn(&mut Cx<'_>, &Node, &mut Draft) -> Option<()>;

/// The keys decoded on their own, each with its decoder.
const FIELDS: &[(&str, Decode)] = &[
    ("vmid", |cx, n, d| cx.vmid(n).map(|v| d.vmid = Some(v))),
    ("name", |cx, n, d| cx.name(n).map(|v| d.name = Some(v))),
    ("memory", |cx, n, d| cx.memory(n).map(|v| d.memory = v)),
    ("cores", |cx, n, d| cx.cores(n).map(|v| d.cores = v)),
    ("sockets", |cx, n, d| cx.sockets(n).map(|v| d.sockets = v)),
    ("cpu", |cx, n, d| cx.cpu(n).map(|v| d.cpu = Some(v))),
    ("bridge", |cx, n, d| cx.bridge(n).map(|v| d.bridge = v)),
    ("vlan", |cx, n, d| cx.vlan(n).map(|v| d.vlan = Some(v))),
    ("mac", |cx, n, d| cx.mac(n).map(|v| d.mac = Some(v))),
    ("nameserver", |cx, n, d| {
        cx.nameserver(n).map(|v| d.nameserver = v)
    }),
    ("searchdomain", |cx, n, d| {
        cx.searchdomain(n).map(|v| d.searchdomain = Some(v))
    }),
    ("user", |cx, n, d| {
        cx.guest_user(n).map(|v| d.user = Some(v))
    }),
    ("password", |cx, n, d| {
        cx.password(n).map(|v| d.password = Some(v))
    }),
    ("storage", |cx, n, d| cx.storage(n).map(|v| d.storage = v)),
    ("disk", |cx, n, d| cx.disk(n).map(|v| d.disk = Some(v))),
    ("disk_from", |cx, n, d| {
        cx.disk_from(n).map(|v| d.disk_from = v)
    }),
    ("tags", |cx, n, d| cx.tags(n).map(|v| d.tags = v)),
    ("description", |cx, n, d| {
        cx.description(n).map(|v| d.description = Some(v))
    }),
    ("onboot", |cx, n, d| {
        cx.boolean("onboot", n).map(|v| d.onboot = v)
    }),
    ("state", |cx, n, d| cx.state(n).map(|v| d.state = v)),
    ("wait", |cx, n, d| cx.wait_for(n).map(|v| d.wait = v)),
    // Firmware, placement and lifecycle (validate/lifecycle.rs).
    ("bios", |cx, n, d| cx.bios(n).map(|v| d.firmware.bios = v)),
    ("secure_boot", |cx, n, d| {
        cx.boolean("secure_boot", n)
            .map(|v| d.firmware.secure_boot = v)
    }),
    ("machine", |cx, n, d| {
        cx.machine(n).map(|v| d.firmware.machine = v)
    }),
    ("tpm", |cx, n, d| {
        cx.boolean("tpm", n).map(|v| d.firmware.tpm = v)
    }),
    ("pool", |cx, n, d| {
        cx.pool(n).map(|v| d.lifecycle.pool = Some(v))
    }),
    ("startup", |cx, n, d| {
        cx.startup(n).map(|v| d.lifecycle.startup = Some(v))
    }),
    ("protection", |cx, n, d| {
        cx.boolean("protection", n)
            .map(|v| d.lifecycle.protection = v)
    }),
    ("ha", |cx, n, d| cx.ha(n).map(|v| d.lifecycle.ha = Some(v))),
    ("agent", |cx, n, d| {
        cx.agent(n).map(|v| d.lifecycle.agent = Some(v))
    }),
    ("balloon", |cx, n, d| {
        cx.balloon(n).map(|v| d.lifecycle.balloon = Some(v))
    }),
    ("numa", |cx, n, d| {
        cx.boolean("numa", n).map(|v| d.lifecycle.numa = Some(v))
    }),
    ("hotplug", |cx, n, d| {
        cx.hotplug(n).map(|v| d.lifecycle.hotplug = Some(v))
    }),
];

impl Cx<'_> {
    /// One VM, with where the value of each key it has stands (on the VM or
    /// in `defaults:`); `None` when anything about it is wrong (the errors
    /// are recorded).
    pub(super) fn vm(
        &mut self,
        item: &Node,
        defaults: &[(Key, Node)],
        nodes: &NodeNames<'_>,
        cluster: bool,
    ) -> Option<(VmSpec, Vec<(String, Span)>)> {
        let entries = self.map("each VM", item)?;
        let own = self.fields(entries, keys::VM, "a VM");
        let own_keys: std::collections::BTreeSet<String> =
            own.keys().map(|k| k.to_string()).collect();
        let mut f: Fields<'_> = defaults
            .iter()
            .map(|(k, v)| (k.name.as_str(), (k, v)))
            .collect();
        f.extend(own);
        // An explicit null on the VM unsets a default (`clone: ~`).
        f.retain(|_, (_, n)| !matches!(n.value, Value::Null));
        let mut ok = self.network_forms(&mut f, &own_keys, defaults);
        let get = |k: &str| f.get(k).map(|(_, n)| *n);

        let mut draft = Draft::default();
        for (key, decode) in FIELDS {
            if let Some(n) = get(key) {
                ok &= decode(self, n, &mut draft).is_some();
            }
        }
        if get("name").is_none() {
            self.err(
                ErrorKind::Missing,
                item.span,
                "VM without 'name'",
                "every VM needs a DNS name, e.g. 'name: web-01'",
            );
            ok = false;
        }
        let node = self.vm_node(get("node"), item, nodes, cluster);
        ok &= node.is_some();
        let ip = self.ipv4(get("ip"), get("gateway"), &mut ok);
        let ip6 = self.ipv6(get("ip6"), get("gateway6"), &mut ok);
        let ssh_keys = self.ssh_keys(get("ssh_keys"), get("ssh_keys_file"), &mut ok);
        let (source, image_url) = match self.source(&f, item, &mut ok) {
            Some((s, u)) => (Some(s), u),
            None => (None, None),
        };
        let mut hw_spans = Vec::new();
        let disks = get("disks").map(|n| self.disks(n, &draft.storage));
        let networks = get("networks").map(|n| self.networks(n, &mut hw_spans));
        ok &= disks.as_ref().is_none_or(Option::is_some)
            && networks.as_ref().is_none_or(Option::is_some);
        let user_data = self.user_data(&f, &mut ok);
        ok &= self.lifecycle_rules(
            &draft.firmware,
            &draft.lifecycle,
            draft.memory,
            draft.state,
            &get,
        );
        if !ok {
            return None;
        }
        let mut spans: Vec<(String, Span)> = f
            .iter()
            .map(|(k, (_, n))| (k.to_string(), n.span))
            .collect();
        spans.extend(hw_spans);
        let networks = networks.flatten().unwrap_or_default();
        let (mut ip, mut ip6) = (ip, ip6);
        if let Some(first) = networks.first() {
            // The first NIC is net0: the short keys' fields carry it.
            draft.bridge.clone_from(&first.bridge);
            draft.vlan = first.vlan;
            draft.mac.clone_from(&first.mac);
            ip.clone_from(&first.ip);
            ip6.clone_from(&first.ip6);
        }
        let d = draft;
        let spec = VmSpec {
            vmid: d.vmid,
            name: d.name?,
            placement: node?,
            memory: d.memory,
            cores: d.cores,
            sockets: d.sockets,
            cpu: d.cpu,
            bridge: d.bridge,
            vlan: d.vlan,
            mac: d.mac,
            ip,
            ip6,
            nameserver: d.nameserver,
            searchdomain: d.searchdomain,
            user: d.user,
            ssh_keys,
            password: d.password,
            source: source?,
            storage: d.storage,
            disk: d.disk,
            disk_from: d.disk_from,
            tags: d.tags,
            description: d.description,
            onboot: d.onboot,
            state: d.state,
            user_data,
            image_url,
            wait: d.wait,
            disks: disks.flatten().unwrap_or_default(),
            networks,
            firmware: d.firmware,
            lifecycle: d.lifecycle,
        };
        Some((spec, spans))
    }

    /// `node`: one of the configured nodes, or `auto` in a cluster, where it
    /// is required. `None` on error.
    fn vm_node(
        &mut self,
        n: Option<&Node>,
        item: &Node,
        nodes: &NodeNames<'_>,
        cluster: bool,
    ) -> Option<Placement> {
        let Some(n) = n else {
            if cluster {
                self.err(
                    ErrorKind::Missing,
                    item.span,
                    "VM without 'node' in a cluster",
                    "set 'node:' on the VM or in defaults (a node name, or 'auto')",
                );
                return None;
            }
            return Some(Placement::Host);
        };
        let s = self.string("node", n)?;
        if s == "auto" {
            return Some(Placement::Auto);
        }
        let name = NodeName::parse(&s).ok();
        let valid = name.is_some()
            && (nodes.names.contains(s.as_str()) || (!cluster && nodes.names.is_empty()));
        if !valid {
            let mut help = format!("use one of: {}", nodes.listed);
            if cluster {
                help.push_str(", or 'auto'");
            }
            self.err(
                ErrorKind::UnknownValue,
                n.span,
                format!("node: {} is not among the configured nodes", shown(&s)),
                help,
            );
            return None;
        }
        name.map(Placement::Node)
    }

    /// `vmid`: a Proxmox VM id.
    fn vmid(&mut self, n: &Node) -> Option<VmId> {
        self.int(
            "vmid",
            n,
            100,
            999_999_999,
            "Proxmox VM ids run from 100 to 999999999",
        )
        .and_then(|v| VmId::new(v).ok())
    }

    /// `name`: the VM's DNS name (Proxmox `dns-name`, within DNS lengths:
    /// it is also the guest's hostname).
    fn name(&mut self, n: &Node) -> Option<String> {
        let s = self.string("name", n)?;
        self.dns_name(
            "name",
            &s,
            n.span,
            "is not a valid DNS name",
            "Proxmox VM names are DNS names: letters, digits and '-', labels joined by '.', no '_'",
        )
        .then_some(s)
    }

    /// `memory`: MiB, or a size with a unit.
    fn memory(&mut self, n: &Node) -> Option<u64> {
        const MAX: u64 = 4 * 1024 * 1024;
        let mib = match &n.value {
            Value::Int(i) if *i >= 0 => *i as u64,
            Value::Str(s) => match size::parse_size(s) {
                Ok(bytes) if s.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) => {
                    if bytes % (1 << 20) != 0 {
                        self.err(
                            ErrorKind::Range,
                            n.span,
                            format!("memory: {} is not a whole number of MiB", shown(s)),
                            "write memory in MiB (2048) or with a unit (2G)",
                        );
                        return None;
                    }
                    bytes >> 20
                }
                _ => {
                    self.err(
                        ErrorKind::Format,
                        n.span,
                        format!("memory: {} is not a memory size", shown(s)),
                        "write memory in MiB (2048) or with a unit (2G)",
                    );
                    return None;
                }
            },
            _ => {
                self.type_err("memory", n, "an integer (MiB) or a size like 2G");
                return None;
            }
        };
        if !(16..=MAX).contains(&mib) {
            self.err(
                ErrorKind::Range,
                n.span,
                format!("memory: {mib} MiB is out of range (Proxmox accepts 16 MiB to 4 TiB)"),
                "memory is in MiB: 2048 means 2 GiB",
            );
            return None;
        }
        Some(mib)
    }

    /// `cores`: cores per socket.
    fn cores(&mut self, n: &Node) -> Option<u32> {
        self.int("cores", n, 1, 4096, "at least 1 core per socket")
            .map(|v| v as u32)
    }

    /// `sockets`.
    fn sockets(&mut self, n: &Node) -> Option<u32> {
        self.int("sockets", n, 1, 4096, "at least 1 socket")
            .map(|v| v as u32)
    }

    /// `searchdomain`: a DNS domain.
    fn searchdomain(&mut self, n: &Node) -> Option<String> {
        let s = self.string("searchdomain", n)?;
        self.dns_name(
            "searchdomain",
            &s,
            n.span,
            "is not a domain name",
            "use a DNS domain such as example.com",
        )
        .then_some(s)
    }

    /// `password`: the cloud-init password, any non-empty text without
    /// control characters. It is never quoted in a message.
    ///
    /// Spaces, a leading `-` and `0` are fine: the value is hashed before it
    /// is sent. Control characters are refused: none can be typed at a
    /// login prompt (Enter ends the line, Tab and Ctrl keys edit it), and a
    /// YAML block scalar (`|`) silently ends the value with a line break.
    fn password(&mut self, n: &Node) -> Option<String> {
        let s = self.string("password", n)?;
        if s.is_empty() {
            self.err(
                ErrorKind::Format,
                n.span,
                "password: an empty cloud-init password is not allowed; remove the key",
                "leave 'password' out for no password (log in with ssh_keys), or set a non-empty one",
            );
            return None;
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            self.err(
                ErrorKind::Format,
                n.span,
                format!(
                    "password: contains the control character U+{:04X}, which no login prompt can take",
                    u32::from(c)
                ),
                "write the password as a quoted string on one line, without escapes such as \\n or \\t",
            );
            return None;
        }
        Some(s)
    }

    /// `user`: the cloud-init login.
    fn guest_user(&mut self, n: &Node) -> Option<String> {
        self.checked(
            "user",
            n,
            is_unix_user,
            "is not a valid user name",
            "use a lower-case login name such as ubuntu",
        )
    }

    /// `tags`: lower-cased, sorted, without duplicates.
    fn tags(&mut self, n: &Node) -> Option<Vec<String>> {
        let list = self.str_list("tags", n)?;
        let mut tags: Vec<String> = list
            .into_iter()
            .filter(|(t, span)| {
                self.expect(
                    is_tag(t),
                    *span,
                    "tags",
                    t,
                    "is not a valid Proxmox tag",
                    "tags use letters, digits and _ - + . and cannot start with - + or .",
                )
            })
            .map(|(t, _)| t.to_ascii_lowercase())
            .collect();
        tags.sort();
        tags.dedup();
        Some(tags)
    }

    /// `description`: at most 8000 bytes (Proxmox keeps 8192 characters,
    /// and pvefleet adds its marker line).
    fn description(&mut self, n: &Node) -> Option<String> {
        const MAX: usize = 8000;
        let s = self.string("description", n)?;
        if s.len() > MAX {
            self.err(
                ErrorKind::Range,
                n.span,
                format!(
                    "description: {} is longer than {MAX} bytes",
                    crate::limits::shown(&s)
                ),
                "Proxmox keeps at most 8192 characters, and pvefleet adds its marker line",
            );
            return None;
        }
        Some(s)
    }

    /// `state`: `running` or `stopped`.
    fn state(&mut self, n: &Node) -> Option<PowerState> {
        let s = self.string("state", n)?;
        match s.as_str() {
            "running" => Some(PowerState::Running),
            "stopped" => Some(PowerState::Stopped),
            _ => {
                let mut msg = format!("state: {} is not a known state", shown(&s));
                if let Some(h) = keys::suggest(&s, &["running", "stopped"]) {
                    msg.push_str(&format!(" (did you mean '{h}'?)"));
                }
                self.err(
                    ErrorKind::UnknownValue,
                    n.span,
                    msg,
                    "use running or stopped",
                );
                None
            }
        }
    }
}
