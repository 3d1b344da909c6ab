//! Stage 2: check the raw tree completely and build [`Desired`].
//!
//! Every rule runs even after an earlier one failed, so one pass reports all
//! errors. A value inherited from `defaults:` is reported at its line in
//! `defaults:`.

use crate::error::{ConfigError, ConfigReport, Span};
use crate::keys;
use crate::raw::{parse_yaml, Key, Node, Value};
use crate::spec::*;
use pvefleet_model::{size, VmId};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reads a file named in the configuration (`ssh_keys_file`), relative to the
/// configuration file. Returns the text or a reason.
pub type FileLoader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses and validates a configuration file.
///
/// `path` is only used in messages; `load` reads `ssh_keys_file`s.
pub fn parse(path: &str, text: &str, load: FileLoader<'_>) -> Result<Desired, ConfigReport> {
    let mut cx = Cx {
        errors: Vec::new(),
        load,
    };
    let desired = match parse_yaml(text) {
        Ok(root) => cx.root(&root),
        Err(e) => {
            cx.errors.push(e);
            None
        }
    };
    match desired {
        Some(d) if cx.errors.is_empty() => Ok(d),
        _ => {
            cx.errors
                .sort_by_key(|e| e.span.map(|s| (s.line, s.col)).unwrap_or((0, 0)));
            Err(ConfigReport {
                path: path.to_string(),
                text: text.to_string(),
                errors: cx.errors,
            })
        }
    }
}

struct Cx<'l> {
    errors: Vec<ConfigError>,
    load: FileLoader<'l>,
}

type Fields<'a> = HashMap<&'a str, (&'a Key, &'a Node)>;

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// Proxmox `pve-storage-id`: `[a-z][a-z0-9\-_.]*[a-z0-9]`.
pub fn is_storage_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(c))
}

fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_-+.".contains(c))
}

fn is_ssh_key(s: &str) -> bool {
    const TYPES: &[&str] = &[
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    let mut parts = s.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return false;
    };
    !s.contains('\n')
        && TYPES.contains(&kind)
        && blob.len() >= 16
        && blob
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
}

fn is_cpu_type(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.+".contains(&c))
}

fn is_unix_user(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-".contains(c))
}

fn is_bridge(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// Parses `AA:BB:CC:DD:EE:FF`; returns the octets.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

fn parse_cidr4(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: Ipv4Addr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    (prefix <= 32 && !p.starts_with('+')).then_some((addr, prefix))
}

fn parse_cidr6(s: &str) -> Option<(Ipv6Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: Ipv6Addr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    (prefix <= 128 && !p.starts_with('+')).then_some((addr, prefix))
}

impl Cx<'_> {
    fn err(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        self.errors
            .push(ConfigError::at(Some(span), message).help(help));
    }

    fn type_err(&mut self, key: &str, node: &Node, expected: &str) {
        let mut msg = String::from(key);
        msg.push_str(": expected ");
        msg.push_str(expected);
        msg.push_str(", found ");
        msg.push_str(node.value.kind());
        let help = if matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_))
            && expected.contains("string")
        {
            "put the value in quotes to make it a string".to_string()
        } else {
            ["write ", key, " as ", expected].concat()
        };
        self.err(node.span, msg, help);
    }

    /// The entries of a mapping, or an error.
    fn map<'a>(&mut self, key: &str, node: &'a Node) -> Option<&'a [(Key, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            _ => {
                self.type_err(key, node, "a mapping");
                None
            }
        }
    }

    /// Indexes `entries` by key, reporting unknown keys with a hint.
    fn fields<'a>(
        &mut self,
        entries: &'a [(Key, Node)],
        known: &[&str],
        section: &str,
    ) -> Fields<'a> {
        let mut out = HashMap::new();
        for (k, v) in entries {
            if known.contains(&k.name.as_str()) {
                out.insert(k.name.as_str(), (k, v));
            } else {
                let mut msg = ["unknown key '", &k.name, "' in ", section].concat();
                let help = match keys::suggest(&k.name, known) {
                    Some(s) => {
                        msg.push_str(&[" (did you mean '", s, "'?)"].concat());
                        ["rename it to '", s, "'"].concat()
                    }
                    None => ["known keys: ", &known.join(", ")].concat(),
                };
                self.err(k.span, msg, help);
            }
        }
        out
    }

    /// Reports `KEY: 'VALUE' WHAT` at `span` unless `valid`; returns `valid`.
    fn expect(
        &mut self,
        valid: bool,
        span: Span,
        key: &str,
        value: &str,
        what: &str,
        help: &str,
    ) -> bool {
        if !valid {
            self.err(span, [key, ": '", value, "' ", what].concat(), help);
        }
        valid
    }

    /// A string that must satisfy `valid`, else `KEY: 'VALUE' WHAT`.
    fn checked(
        &mut self,
        key: &str,
        n: &Node,
        valid: fn(&str) -> bool,
        what: &str,
        help: &str,
    ) -> Option<String> {
        self.string(key, n)
            .filter(|s| self.expect(valid(s), n.span, key, s, what, help))
    }

    fn string(&mut self, key: &str, node: &Node) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_err(key, node, "a string");
                None
            }
        }
    }

    fn int(&mut self, key: &str, node: &Node, min: i64, max: i64, help: &str) -> Option<i64> {
        match &node.value {
            Value::Int(i) if (min..=max).contains(i) => Some(*i),
            Value::Int(i) => {
                let msg = [
                    key,
                    ": ",
                    &i.to_string(),
                    " is out of range (Proxmox accepts ",
                    &min.to_string(),
                    " to ",
                    &max.to_string(),
                    ")",
                ]
                .concat();
                self.err(node.span, msg, help);
                None
            }
            _ => {
                self.type_err(key, node, "an integer");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Int(0) => Some(false),
            Value::Int(1) => Some(true),
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "on" | "true" => Some(true),
                "no" | "off" | "false" => Some(false),
                _ => {
                    self.type_err(key, node, "a boolean (true or false)");
                    None
                }
            },
            _ => {
                self.type_err(key, node, "a boolean (true or false)");
                None
            }
        }
    }

    /// A list of strings; a single string is split on `,`, `;` and spaces.
    fn str_list(&mut self, key: &str, node: &Node) -> Option<Vec<(String, Span)>> {
        match &node.value {
            Value::Str(s) => Some(
                s.split([',', ';', ' '])
                    .filter(|p| !p.is_empty())
                    .map(|p| (p.to_string(), node.span))
                    .collect(),
            ),
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push((s.clone(), item.span)),
                        _ => self.type_err(key, item, "a string"),
                    }
                }
                Some(out)
            }
            Value::Null => Some(Vec::new()),
            _ => {
                self.type_err(key, node, "a list of strings");
                None
            }
        }
    }

    fn root(&mut self, root: &Node) -> Option<Desired> {
        let entries = self.map("the file", root)?;
        let top = self.fields(entries, keys::TOP, "the top level");
        let (nodes, cluster) = match (top.get("proxmox"), top.get("nodes")) {
            (Some((_, p)), None) => (self.proxmox(p), false),
            (None, Some((_, n))) => (self.cluster(n), true),
            (Some(_), Some((k, _))) => {
                self.err(
                    k.span,
                    "both 'proxmox' and 'nodes' are set",
                    "use 'proxmox:' for one host or 'nodes:' for a cluster, not both",
                );
                (None, false)
            }
            (None, None) => {
                self.err(
                    root.span,
                    "no connection: neither 'proxmox' nor 'nodes' is set",
                    "add 'proxmox: {host: pve.example.com}' (or 'host: local' on the node itself)",
                );
                (None, false)
            }
        };
        let nodes = nodes.unwrap_or_default();
        let defaults: Vec<(Key, Node)> = match top.get("defaults") {
            Some((_, d)) => match self.map("defaults", d) {
                Some(entries) => {
                    let f = self.fields(entries, keys::VM, "defaults");
                    for only in keys::VM_ONLY {
                        if let Some((k, _)) = f.get(only) {
                            self.err(
                                k.span,
                                ["'", only, "' cannot be set in defaults"].concat(),
                                ["set '", only, "' on each VM; it must differ between VMs"]
                                    .concat(),
                            );
                        }
                    }
                    entries
                        .iter()
                        .filter(|(k, _)| {
                            keys::VM.contains(&k.name.as_str())
                                && !keys::VM_ONLY.contains(&k.name.as_str())
                        })
                        .cloned()
                        .collect()
                }
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        let mut vms = Vec::new();
        match top.get("vms") {
            Some((_, list)) => match &list.value {
                Value::Seq(items) => {
                    for item in items {
                        if let Some(vm) = self.vm(item, &defaults, &nodes, cluster) {
                            vms.push(vm);
                        }
                    }
                }
                Value::Null => {}
                _ => self.type_err("vms", list, "a list of VMs"),
            },
            None => self.err(
                root.span,
                "no 'vms' list",
                "add 'vms:' with one entry per VM (see examples/vm_config.example.yml)",
            ),
        }
        self.duplicates(&vms, entries);
        Some(Desired {
            nodes,
            cluster,
            vms,
        })
    }

    fn host_fields(
        &mut self,
        f: &Fields<'_>,
        owner: Span,
    ) -> Option<(String, Option<String>, Option<u16>)> {
        let host = match f.get("host") {
            Some((_, n)) => self.string("host", n).and_then(|h| {
                if h.is_empty() || h.starts_with('-') || h.chars().any(char::is_whitespace) {
                    self.err(
                        n.span,
                        ["host: '", &h, "' is not an SSH destination"].concat(),
                        "use a host name, an address, a ~/.ssh/config alias, or 'local'",
                    );
                    None
                } else {
                    Some(h)
                }
            }),
            None => {
                self.err(
                    owner,
                    "missing 'host'",
                    "add 'host:' with an SSH destination, or 'local' on the Proxmox node itself",
                );
                None
            }
        };
        // Without `user`, ssh decides (`User` in ~/.ssh/config, else the
        // login name), exactly as for `ssh HOST`.
        let user = match f.get("user") {
            Some((_, n)) => self
                .checked(
                    "user",
                    n,
                    is_unix_user,
                    "is not a valid user name",
                    "use a login name such as root",
                )
                .map(Some)
                .ok_or(()),
            None => Ok(None),
        };
        let port = f
            .get("port")
            .and_then(|(_, n)| self.int("port", n, 1, 65535, "use the SSH port, 22 by default"))
            .map(|p| p as u16);
        Some((host?, user.ok()?, port))
    }

    fn node_name(&mut self, name: &str, span: Span) -> bool {
        if is_dns_name(name) && !name.contains('.') {
            true
        } else {
            self.err(
                span,
                ["'", name, "' is not a valid Proxmox node name"].concat(),
                "node names are host names: letters, digits and '-'",
            );
            false
        }
    }

    fn proxmox(&mut self, node: &Node) -> Option<Vec<NodeConn>> {
        let entries = self.map("proxmox", node)?;
        let f = self.fields(entries, keys::PROXMOX, "proxmox");
        let name = match f.get("node") {
            Some((_, n)) => self.string("node", n).filter(|s| self.node_name(s, n.span)),
            None => None,
        };
        let (host, user, port) = self.host_fields(&f, node.span)?;
        Some(vec![NodeConn {
            name,
            host,
            user,
            port,
        }])
    }

    fn cluster(&mut self, node: &Node) -> Option<Vec<NodeConn>> {
        let entries = self.map("nodes", node)?;
        if entries.is_empty() {
            self.err(
                node.span,
                "'nodes' is empty",
                "list each Proxmox node by its node name",
            );
            return None;
        }
        let mut out = Vec::new();
        for (k, v) in entries {
            let valid_name = self.node_name(&k.name, k.span);
            let Some(fe) = self.map(&k.name, v) else {
                continue;
            };
            let f = self.fields(fe, keys::NODE, &["nodes.", &k.name].concat());
            if let Some((host, user, port)) = self.host_fields(&f, k.span) {
                if valid_name {
                    out.push(NodeConn {
                        name: Some(k.name.clone()),
                        host,
                        user,
                        port,
                    });
                }
            }
        }
        Some(out)
    }

    fn vm(
        &mut self,
        item: &Node,
        defaults: &[(Key, Node)],
        nodes: &[NodeConn],
        cluster: bool,
    ) -> Option<VmSpec> {
        let entries = self.map("each VM", item)?;
        let own = self.fields(entries, keys::VM, "a VM");
        let mut f: Fields<'_> = defaults
            .iter()
            .map(|(k, v)| (k.name.as_str(), (k, v)))
            .collect();
        f.extend(own);
        // An explicit null on the VM unsets a default (`clone: ~`).
        f.retain(|_, (_, n)| !matches!(n.value, Value::Null));
        let mut ok = true;
        macro_rules! need {
            ($e:expr) => {
                match $e {
                    Some(v) => Some(v),
                    None => {
                        ok = false;
                        None
                    }
                }
            };
        }
        let get = |k: &str| f.get(k).map(|(_, n)| *n);

        let vmid = match get("vmid") {
            Some(n) => need!(self
                .int(
                    "vmid",
                    n,
                    100,
                    999_999_999,
                    "Proxmox VM ids run from 100 to 999999999"
                )
                .and_then(|v| VmId::new(v).ok())),
            None => None,
        };
        let name = match get("name") {
            Some(n) => need!(self.checked("name", n, is_dns_name, "is not a valid DNS name", "Proxmox VM names are DNS names: letters, digits and '-', labels joined by '.', no '_'")),
            None => {
                self.err(item.span, "VM without 'name'", "every VM needs a DNS name, e.g. 'name: web-01'");
                ok = false;
                None
            }
        };
        let node = match get("node") {
            Some(n) => need!(self.string("node", n).filter(|s| {
                let known: Vec<&str> = nodes.iter().filter_map(|c| c.name.as_deref()).collect();
                let valid = if cluster {
                    s == "auto" || known.contains(&s.as_str())
                } else {
                    known.is_empty() || known.contains(&s.as_str())
                };
                if !valid {
                    let mut help = String::from("use one of: ");
                    help.push_str(&known.join(", "));
                    if cluster {
                        help.push_str(", or 'auto'");
                    }
                    self.err(
                        n.span,
                        ["node: '", s, "' is not among the configured nodes"].concat(),
                        help,
                    );
                }
                valid
            })),
            None if cluster => {
                self.err(
                    item.span,
                    "VM without 'node' in a cluster",
                    "set 'node:' on the VM or in defaults (a node name, or 'auto')",
                );
                ok = false;
                None
            }
            None => None,
        };
        let memory = match get("memory") {
            Some(n) => need!(self.memory(n)),
            None => Some(1024),
        };
        let cores = match get("cores") {
            Some(n) => need!(self
                .int("cores", n, 1, 4096, "at least 1 core per socket")
                .map(|v| v as u32)),
            None => Some(1),
        };
        let sockets = match get("sockets") {
            Some(n) => need!(self
                .int("sockets", n, 1, 4096, "at least 1 socket")
                .map(|v| v as u32)),
            None => Some(1),
        };
        let cpu = match get("cpu") {
            Some(n) => need!(self.checked(
                "cpu",
                n,
                is_cpu_type,
                "is not a CPU type",
                "use a Proxmox CPU type such as host or x86-64-v2-AES"
            )),
            None => None,
        };
        let bridge = match get("bridge") {
            Some(n) => need!(self.checked(
                "bridge",
                n,
                is_bridge,
                "is not a bridge name",
                "use the Linux bridge name, e.g. vmbr0"
            )),
            None => Some("vmbr0".to_string()),
        };
        let vlan = match get("vlan") {
            Some(n) => need!(self
                .int("vlan", n, 1, 4094, "VLAN tags run from 1 to 4094")
                .map(|v| v as u16)),
            None => None,
        };
        let mac = match get("mac") {
            Some(n) => need!(self.string("mac", n).and_then(|s| match parse_mac(&s) {
                None => {
                    self.err(
                        n.span,
                        ["mac: '", &s, "' is not a MAC address"].concat(),
                        "write six hex pairs separated by ':', e.g. BC:24:11:00:00:01",
                    );
                    None
                }
                Some(o) if o[0] & 1 == 1 => {
                    self.err(
                        n.span,
                        ["mac: '", &s, "' is a multicast address"].concat(),
                        "a NIC needs a unicast MAC: the lowest bit of the first octet must be 0",
                    );
                    None
                }
                Some(o) if o == [0; 6] => {
                    self.err(
                        n.span,
                        "mac: the all-zero address is not usable",
                        "leave 'mac' out to let Proxmox pick one",
                    );
                    None
                }
                Some(_) => Some(s.to_ascii_uppercase()),
            })),
            None => None,
        };
        let ip = self.ipv4(get("ip"), get("gateway"), &mut ok);
        let ip6 = self.ipv6(get("ip6"), get("gateway6"), &mut ok);
        let nameserver = match get("nameserver") {
            Some(n) => need!(self.str_list("nameserver", n).map(|list| {
                list.into_iter()
                    .filter(|(s, span)| {
                        let valid = s.parse::<IpAddr>().is_ok();
                        self.expect(
                            valid,
                            *span,
                            "nameserver",
                            s,
                            "is not an IP address",
                            "list DNS servers by address",
                        )
                    })
                    .map(|(s, _)| s)
                    .collect::<Vec<_>>()
            })),
            None => Some(Vec::new()),
        };
        let searchdomain = match get("searchdomain") {
            Some(n) => need!(self.checked(
                "searchdomain",
                n,
                is_dns_name,
                "is not a domain name",
                "use a DNS domain such as example.com"
            )),
            None => None,
        };
        let user = match get("user") {
            Some(n) => need!(self.checked(
                "user",
                n,
                is_unix_user,
                "is not a valid user name",
                "use a lower-case login name such as ubuntu"
            )),
            None => None,
        };
        let mut ssh_keys = Vec::new();
        if let Some(n) = get("ssh_keys") {
            match self.ssh_key_list(n) {
                Some(k) => ssh_keys.extend(k),
                None => ok = false,
            }
        }
        if let Some(n) = get("ssh_keys_file") {
            match self
                .string("ssh_keys_file", n)
                .map(|p| ((self.load)(&p), p))
            {
                Some((Ok(text), path)) => {
                    for line in text.lines().map(str::trim) {
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        if is_ssh_key(line) {
                            ssh_keys.push(line.to_string());
                        } else {
                            self.err(n.span, ["ssh_keys_file: '", &path, "' holds a line that is not an SSH public key"].concat(), "the file must contain OpenSSH public keys, one per line (e.g. ~/.ssh/id_ed25519.pub)");
                            ok = false;
                            break;
                        }
                    }
                }
                Some((Err(why), path)) => {
                    self.err(n.span, ["ssh_keys_file: cannot read '", &path, "': ", &why].concat(), "give a readable file of public keys; relative paths start at the configuration file's folder");
                    ok = false;
                }
                None => ok = false,
            }
        }
        ssh_keys.dedup();
        let password = match get("password") {
            Some(n) => need!(self.string("password", n)),
            None => None,
        };
        let source = self.source(&f, item, &mut ok);
        let storage = match get("storage") {
            Some(n) => need!(self.checked(
                "storage",
                n,
                is_storage_id,
                "is not a storage id",
                "Proxmox storage ids are lower-case, e.g. local-lvm"
            )),
            None => Some("local-lvm".to_string()),
        };
        let disk = match get("disk") {
            Some(n) => need!(self.disk(n)),
            None => None,
        };
        let disk_from = match get("disk_from") {
            Some(n) => need!(self.string("disk_from", n).and_then(|s| match s.as_str() {
                "import" => Some(DiskFrom::Import),
                "linked-clone" => Some(DiskFrom::LinkedClone),
                "full-clone" => Some(DiskFrom::FullClone),
                _ => {
                    self.err(
                        n.span,
                        ["disk_from: '", &s, "' is not known"].concat(),
                        "use import, linked-clone or full-clone",
                    );
                    None
                }
            })),
            None => Some(DiskFrom::Import),
        };
        let tags = match get("tags") {
            Some(n) => need!(self.str_list("tags", n).map(|list| {
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
                tags
            })),
            None => Some(Vec::new()),
        };
        let description = match get("description") {
            Some(n) => need!(self.string("description", n).filter(|s| {
                let valid = s.len() <= 8000;
                if !valid {
                    self.err(
                        n.span,
                        "description: longer than 8000 characters",
                        "Proxmox keeps at most 8192 characters, and pvefleet adds its marker line",
                    );
                }
                valid
            })),
            None => None,
        };
        let onboot = match get("onboot") {
            Some(n) => need!(self.boolean("onboot", n)),
            None => Some(false),
        };
        let state = match get("state") {
            Some(n) => need!(self.string("state", n).and_then(|s| match s.as_str() {
                "running" => Some(PowerState::Running),
                "stopped" => Some(PowerState::Stopped),
                _ => {
                    let mut msg = ["state: '", &s, "' is not a known state"].concat();
                    if let Some(h) = keys::suggest(&s, &["running", "stopped"]) {
                        msg.push_str(&[" (did you mean '", h, "'?)"].concat());
                    }
                    self.err(n.span, msg, "use running or stopped");
                    None
                }
            })),
            None => Some(PowerState::Running),
        };
        if !ok {
            return None;
        }
        Some(VmSpec {
            vmid,
            name: name?,
            node,
            memory: memory?,
            cores: cores?,
            sockets: sockets?,
            cpu,
            bridge: bridge?,
            vlan,
            mac,
            ip,
            ip6,
            nameserver: nameserver?,
            searchdomain,
            user,
            ssh_keys,
            password,
            source: source?,
            storage: storage?,
            disk,
            disk_from: disk_from?,
            tags: tags?,
            description,
            onboot: onboot?,
            state: state?,
            line: item.span.line,
        })
    }

    fn memory(&mut self, n: &Node) -> Option<u64> {
        const MAX: u64 = 4 * 1024 * 1024;
        let mib = match &n.value {
            Value::Int(i) if *i >= 0 => *i as u64,
            Value::Str(s) => match size::parse_size(s) {
                Ok(bytes) if s.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) => {
                    if bytes % (1 << 20) != 0 {
                        self.err(
                            n.span,
                            ["memory: '", s, "' is not a whole number of MiB"].concat(),
                            "write memory in MiB (2048) or with a unit (2G)",
                        );
                        return None;
                    }
                    bytes >> 20
                }
                _ => {
                    self.err(
                        n.span,
                        ["memory: '", s, "' is not a memory size"].concat(),
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
                n.span,
                [
                    "memory: ",
                    &mib.to_string(),
                    " MiB is out of range (Proxmox accepts 16 MiB to 4 TiB)",
                ]
                .concat(),
                "memory is in MiB: 2048 means 2 GiB",
            );
            return None;
        }
        Some(mib)
    }

    fn disk(&mut self, n: &Node) -> Option<u64> {
        let bytes = match &n.value {
            Value::Int(i) if *i > 0 => (*i as u64) << 30,
            Value::Str(s) => match size::parse_size(s) {
                Ok(b) if s.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) => b,
                _ => {
                    self.err(
                        n.span,
                        ["disk: '", s, "' is not a disk size"].concat(),
                        "write a size with a binary unit, e.g. 20G or 512M (G means GiB)",
                    );
                    return None;
                }
            },
            _ => {
                self.type_err("disk", n, "a size such as 20G");
                return None;
            }
        };
        if !((1 << 20)..=(1u64 << 50)).contains(&bytes) {
            self.err(
                n.span,
                "disk: size out of range",
                "use a size between 1M and 1024T",
            );
            return None;
        }
        Some(bytes)
    }

    fn ssh_key_list(&mut self, n: &Node) -> Option<Vec<String>> {
        let items = match &n.value {
            Value::Seq(items) => items.iter().collect::<Vec<_>>(),
            Value::Str(_) => vec![n],
            _ => {
                self.type_err("ssh_keys", n, "a list of public keys");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match &item.value {
                Value::Str(s) if is_ssh_key(s.trim()) => out.push(s.trim().to_string()),
                Value::Str(_) => {
                    self.err(
                        item.span,
                        "ssh_keys: not an OpenSSH public key",
                        "paste the whole line of a .pub file: 'ssh-ed25519 AAAA... comment'",
                    );
                    ok = false;
                }
                _ => {
                    self.type_err("ssh_keys", item, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn source(&mut self, f: &Fields<'_>, item: &Node, ok: &mut bool) -> Option<DiskSource> {
        let image = match (f.get("image"), f.get("template")) {
            (Some(_), Some((k, _))) => {
                self.err(
                    k.span,
                    "both 'image' and 'template' are set",
                    "'template' is another name for 'image': keep one",
                );
                *ok = false;
                return None;
            }
            (Some((_, n)), None) => Some(("image", *n)),
            (None, Some((_, n))) => Some(("template", *n)),
            (None, None) => None,
        };
        let clone = f.get("clone").map(|(_, n)| *n);
        match (image, clone) {
            (Some(_), Some(c)) => {
                self.err(
                    c.span,
                    "both 'image' and 'clone' are set",
                    "a VM's disk comes from a cloud image or from a template VM, not both",
                );
                *ok = false;
                None
            }
            (None, None) => {
                self.err(item.span, "VM without a disk source", "set 'image:' (a cloud image on the host) or 'clone:' (a template VM), here or in defaults");
                *ok = false;
                None
            }
            (Some((key, n)), None) => {
                let Some(s) = self.string(key, n) else {
                    *ok = false;
                    return None;
                };
                if s.starts_with('/') {
                    if s.contains("/../") || s.ends_with("/..") || s.contains(',') {
                        self.err(
                            n.span,
                            [key, ": '", &s, "' is not a usable path"].concat(),
                            "give a plain absolute path on the host",
                        );
                        *ok = false;
                        return None;
                    }
                    return Some(DiskSource::Image(ImageRef::Path(s)));
                }
                match s.split_once(':') {
                    Some((storage, volname))
                        if is_storage_id(storage)
                            && !volname.is_empty()
                            && !volname.contains(',')
                            && !volname.starts_with('/') =>
                    {
                        Some(DiskSource::Image(ImageRef::Volume {
                            storage: storage.to_string(),
                            volname: volname.to_string(),
                        }))
                    }
                    _ => {
                        self.err(n.span, [key, ": '", &s, "' is neither a volume id nor an absolute path"].concat(), "write a volume id such as local:iso/jammy-server-cloudimg-amd64.img, or an absolute path on the host");
                        *ok = false;
                        None
                    }
                }
            }
            (None, Some(n)) => match &n.value {
                Value::Int(i) => match VmId::new(*i) {
                    Ok(id) => Some(DiskSource::Clone(CloneRef::Id(id))),
                    Err(_) => {
                        self.err(
                            n.span,
                            "clone: not a valid VM id",
                            "name the template VM by its id (100 to 999999999) or its name",
                        );
                        *ok = false;
                        None
                    }
                },
                Value::Str(s) if is_dns_name(s) => {
                    Some(DiskSource::Clone(CloneRef::Name(s.clone())))
                }
                _ => {
                    self.type_err("clone", n, "a template VM id or name");
                    *ok = false;
                    None
                }
            },
        }
    }

    fn ipv4(&mut self, ip: Option<&Node>, gw: Option<&Node>, ok: &mut bool) -> Option<IpConfig> {
        let cfg = match ip {
            None => None,
            Some(n) => match self.string("ip", n) {
                None => {
                    *ok = false;
                    None
                }
                Some(s) if s == "dhcp" => Some(IpConfig::Dhcp),
                Some(s) => match parse_cidr4(&s) {
                    None => {
                        self.err(n.span, ["ip: '", &s, "' is not an IPv4 address in CIDR notation"].concat(), "write the address with its prefix length, e.g. 10.0.0.50/24, or 'dhcp'");
                        *ok = false;
                        None
                    }
                    Some((address, prefix)) => {
                        let net = ipnet::Ipv4Net::new(address, prefix).ok().map(|n| n.trunc());
                        let is_edge = net.is_some_and(|n| {
                            prefix <= 30 && (address == n.network() || address == n.broadcast())
                        });
                        if is_edge {
                            self.err(
                                n.span,
                                [
                                    "ip: '",
                                    &s,
                                    "' is the network or broadcast address of its subnet",
                                ]
                                .concat(),
                                "give the VM a host address inside the subnet",
                            );
                            *ok = false;
                            None
                        } else {
                            Some(IpConfig::Static {
                                address,
                                prefix,
                                gateway: None,
                            })
                        }
                    }
                },
            },
        };
        let Some(g) = gw else { return cfg };
        let Some(gs) = self.string("gateway", g) else {
            *ok = false;
            return cfg;
        };
        let Ok(gaddr) = gs.parse::<Ipv4Addr>() else {
            self.err(
                g.span,
                ["gateway: '", &gs, "' is not an IPv4 address"].concat(),
                "write the gateway as an address, e.g. 10.0.0.1",
            );
            *ok = false;
            return cfg;
        };
        match cfg {
            Some(IpConfig::Static {
                address, prefix, ..
            }) => {
                let inside =
                    ipnet::Ipv4Net::new(address, prefix).is_ok_and(|net| net.contains(&gaddr));
                if !inside {
                    let help = [
                        "the gateway must be inside ",
                        &address.to_string(),
                        "/",
                        &prefix.to_string(),
                        "; check the prefix length",
                    ]
                    .concat();
                    self.err(
                        g.span,
                        ["gateway: ", &gs, " is outside the VM's subnet"].concat(),
                        help,
                    );
                    *ok = false;
                } else if gaddr == address {
                    self.err(
                        g.span,
                        "gateway: equals the VM's own address",
                        "use the router's address",
                    );
                    *ok = false;
                }
                Some(IpConfig::Static {
                    address,
                    prefix,
                    gateway: Some(gaddr),
                })
            }
            Some(IpConfig::Dhcp) => {
                self.err(
                    g.span,
                    "gateway: set together with ip: dhcp",
                    "DHCP provides the gateway; remove 'gateway' (Proxmox rejects the combination)",
                );
                *ok = false;
                cfg
            }
            None => {
                self.err(
                    g.span,
                    "gateway: set without 'ip'",
                    "Proxmox requires 'ip' for 'gateway' (gw requires ip)",
                );
                *ok = false;
                cfg
            }
        }
    }

    fn ipv6(&mut self, ip: Option<&Node>, gw: Option<&Node>, ok: &mut bool) -> Option<Ip6Config> {
        let cfg = match ip {
            None => None,
            Some(n) => match self.string("ip6", n) {
                None => {
                    *ok = false;
                    None
                }
                Some(s) if s == "dhcp" => Some(Ip6Config::Dhcp),
                Some(s) if s == "auto" => Some(Ip6Config::Auto),
                Some(s) => match parse_cidr6(&s) {
                    Some((address, prefix)) => Some(Ip6Config::Static {
                        address,
                        prefix,
                        gateway: None,
                    }),
                    None => {
                        self.err(
                            n.span,
                            ["ip6: '", &s, "' is not an IPv6 address in CIDR notation"].concat(),
                            "write e.g. 2001:db8::10/64, 'dhcp' or 'auto'",
                        );
                        *ok = false;
                        None
                    }
                },
            },
        };
        let Some(g) = gw else { return cfg };
        let Some(gs) = self.string("gateway6", g) else {
            *ok = false;
            return cfg;
        };
        let Ok(gaddr) = gs.parse::<Ipv6Addr>() else {
            self.err(
                g.span,
                ["gateway6: '", &gs, "' is not an IPv6 address"].concat(),
                "write the gateway as an address, e.g. 2001:db8::1",
            );
            *ok = false;
            return cfg;
        };
        match cfg {
            Some(Ip6Config::Static {
                address, prefix, ..
            }) => Some(Ip6Config::Static {
                address,
                prefix,
                gateway: Some(gaddr),
            }),
            _ => {
                self.err(
                    g.span,
                    "gateway6: needs a static 'ip6'",
                    "Proxmox requires ip6 for gw6",
                );
                *ok = false;
                cfg
            }
        }
    }

    fn duplicates(&mut self, vms: &[VmSpec], entries: &[(Key, Node)]) {
        // Locate each VM's node again for precise spans of duplicate values.
        let items: Vec<&Node> = entries
            .iter()
            .find(|(k, _)| k.name == "vms")
            .and_then(|(_, n)| match &n.value {
                Value::Seq(items) => Some(items.iter().collect()),
                _ => None,
            })
            .unwrap_or_default();
        let span_of = |line: u32, key: &str| -> Option<Span> {
            let item = items.iter().find(|i| i.span.line == line)?;
            match &item.value {
                Value::Map(m) => m.iter().find(|(k, _)| k.name == key).map(|(_, v)| v.span),
                _ => None,
            }
        };
        let mut seen_id: HashMap<VmId, u32> = HashMap::new();
        let mut seen_name: HashMap<&str, u32> = HashMap::new();
        let mut seen_ip: HashMap<Ipv4Addr, u32> = HashMap::new();
        let mut seen_mac: HashMap<&str, u32> = HashMap::new();
        for vm in vms {
            let first_at =
                |line: u32| ["first used by the VM at line ", &line.to_string()].concat();
            if let Some(id) = vm.vmid {
                if let Some(first) = seen_id.insert(id, vm.line) {
                    let span = span_of(vm.line, "vmid");
                    self.errors.push(
                        ConfigError::at(span, ["duplicate vmid ", &id.to_string()].concat())
                            .help(first_at(first)),
                    );
                }
            }
            if let Some(first) = seen_name.insert(&vm.name, vm.line) {
                let span = span_of(vm.line, "name");
                self.errors.push(
                    ConfigError::at(span, ["duplicate name '", &vm.name, "'"].concat())
                        .help(first_at(first)),
                );
            }
            if let Some(IpConfig::Static { address, .. }) = vm.ip {
                if let Some(first) = seen_ip.insert(address, vm.line) {
                    let span = span_of(vm.line, "ip");
                    self.errors.push(
                        ConfigError::at(
                            span,
                            ["duplicate static IP ", &address.to_string()].concat(),
                        )
                        .help(first_at(first)),
                    );
                }
            }
            if let Some(mac) = &vm.mac {
                if let Some(first) = seen_mac.insert(mac, vm.line) {
                    let span = span_of(vm.line, "mac");
                    self.errors.push(
                        ConfigError::at(span, ["duplicate MAC ", mac].concat())
                            .help(first_at(first)),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Desired {
        parse("t.yml", text, &|_| Err("no files".into()))
            .unwrap_or_else(|r| panic!("{}", r.render(false)))
    }

    #[test]
    fn ssh_user_is_left_to_ssh_unless_set() {
        let vms = "vms:\n  - {name: a, image: local:iso/x.img}\n";
        let d = parse_ok(&["proxmox:\n  host: pve\n", vms].concat());
        assert_eq!(d.nodes[0].user, None);
        let d = parse_ok(&["proxmox:\n  host: pve\n  user: admin\n", vms].concat());
        assert_eq!(d.nodes[0].user.as_deref(), Some("admin"));
    }

    #[test]
    fn null_on_a_vm_unsets_a_default() {
        let d = parse_ok("proxmox: {host: pve}\ndefaults: {clone: 9000}\nvms:\n  - {name: a, clone: ~, image: local:iso/x.img}\n");
        assert!(matches!(d.vms[0].source, DiskSource::Image(_)));
    }
}
