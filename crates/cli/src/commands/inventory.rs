//! `inventory`: an Ansible inventory of the fleet.
//!
//! Every VM of the file is a host, named as in the file, in the group
//! `pvefleet`, in `tag_TAG` for each of its tags and in `node_NODE` for its
//! node (group names with every character other than a letter, digit or
//! `_` written as `_`). Host variables: `ansible_host` (the static address,
//! else the one the guest agent reports), `ansible_user` (the cloud-init
//! `user`), `pvefleet_vmid` and `pvefleet_node` when known.
//!
//! The nodes are contacted only when a VM needs them (no static address,
//! or `node: auto`), never with `--offline`; the node of a VM on a host
//! whose `proxmox.node` is not set is then known only from the host.

use super::Session;
use crate::args::{InventoryFormat, Target};
use crate::output::StatusRow;
use crate::ExitStatus;
use pvefleet_config::spec::Placement;
use pvefleet_config::{Desired, Ip6Config, IpConfig, VmSpec};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One host of the inventory.
struct Host {
    name: String,
    vars: Map<String, Value>,
    groups: Vec<String>,
}

/// A group name Ansible takes without warning.
fn group(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{clean}")
}

/// The VM's static address, IPv4 first.
fn static_address(vm: &VmSpec) -> Option<String> {
    if let Some(IpConfig::Static { address, .. }) = &vm.ip {
        return Some(address.to_string());
    }
    if let Some(Ip6Config::Static { address, .. }) = &vm.ip6 {
        return Some(address.to_string());
    }
    None
}

/// The node the file puts the VM on, when it says.
fn named_node(desired: &Desired, vm: &VmSpec) -> Option<String> {
    match &vm.placement {
        Placement::Node(n) => Some(n.as_str().to_string()),
        Placement::Host => desired.nodes.first().and_then(|n| n.name.clone()),
        Placement::Auto => None,
    }
}

/// Writes the inventory of `file` in `format`.
pub async fn run(
    file: &str,
    target: &Target,
    format: InventoryFormat,
    offline: bool,
) -> ExitStatus {
    let desired = match super::load_file(file) {
        Ok(d) => d,
        Err(s) => return s,
    };
    let needs_nodes = desired
        .vms
        .iter()
        .any(|v| static_address(v).is_none() || v.placement == Placement::Auto);
    // What the nodes say, by VM name.
    let mut seen: BTreeMap<String, StatusRow> = BTreeMap::new();
    if needs_nodes && !offline {
        let s = match Session::open(file, target, 8, &[]).await {
            Ok(s) => s,
            Err(status) => return status,
        };
        for r in super::status::rows(&s).await {
            seen.insert(r.name.clone(), r);
        }
        s.close().await;
    }
    let mut hosts = Vec::new();
    for vm in &desired.vms {
        let row = seen.get(&vm.name);
        let node = row
            .map(|r| r.node.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| named_node(&desired, vm));
        let address = static_address(vm).or_else(|| row.and_then(|r| r.ip.clone()));
        // An id the file leaves out is known once the VM exists.
        let vmid = vm
            .vmid
            .or_else(|| row.filter(|r| r.exists).and_then(|r| r.vmid));
        let mut vars = Map::new();
        match &address {
            Some(a) => {
                vars.insert("ansible_host".into(), json!(a));
            }
            None if offline => tracing::warn!(
                "{}: no static address, and --offline: no ansible_host",
                vm.name
            ),
            None => tracing::warn!(
                "{}: no address (not running, or its guest agent does not answer): no ansible_host",
                vm.name
            ),
        }
        if let Some(u) = &vm.user {
            vars.insert("ansible_user".into(), json!(u));
        }
        if let Some(id) = vmid {
            vars.insert("pvefleet_vmid".into(), json!(id.get()));
        }
        if let Some(n) = &node {
            vars.insert("pvefleet_node".into(), json!(n));
        }
        let mut groups: Vec<String> = vm.tags.iter().map(|t| group("tag_", t)).collect();
        if let Some(n) = &node {
            groups.push(group("node_", n));
        }
        hosts.push(Host {
            name: vm.name.clone(),
            vars,
            groups,
        });
    }
    let text = match format {
        InventoryFormat::Ini => ini(file, &hosts),
        InventoryFormat::Yaml => format!(
            "# Ansible inventory of {file}, written by pvefleet.\n{}",
            yaml(&structure(&hosts), 0)
        ),
        InventoryFormat::Json => {
            serde_json::to_string_pretty(&structure(&hosts)).unwrap_or_default() + "\n"
        }
    };
    print!("{text}");
    ExitStatus::Ok
}

/// The groups other than `pvefleet`, each with its hosts, sorted.
fn groups(hosts: &[Host]) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for h in hosts {
        for g in &h.groups {
            out.entry(g.as_str()).or_default().push(h.name.as_str());
        }
    }
    out
}

/// The INI form: `[pvefleet]` with each host's variables, then the groups.
fn ini(file: &str, hosts: &[Host]) -> String {
    let mut s = format!("# Ansible inventory of {file}, written by pvefleet.\n[pvefleet]\n");
    for h in hosts {
        s.push_str(&h.name);
        for (k, v) in &h.vars {
            let v = match v {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            };
            s.push_str(&format!(" {k}={v}"));
        }
        s.push('\n');
    }
    for (g, members) in groups(hosts) {
        s.push_str(&format!("\n[{g}]\n"));
        for m in members {
            s.push_str(m);
            s.push('\n');
        }
    }
    s
}

/// The YAML inventory's structure: `all.children.GROUP.hosts.HOST`.
fn structure(hosts: &[Host]) -> Value {
    let mut children = Map::new();
    let all: Map<String, Value> = hosts
        .iter()
        .map(|h| (h.name.clone(), Value::Object(h.vars.clone())))
        .collect();
    children.insert("pvefleet".into(), json!({ "hosts": all }));
    for (g, members) in groups(hosts) {
        let hosts: Map<String, Value> = members
            .into_iter()
            .map(|m| (m.to_string(), json!({})))
            .collect();
        children.insert(g.to_string(), json!({ "hosts": hosts }));
    }
    json!({"all": {"children": children}})
}

/// A JSON value as block YAML, strings double-quoted (JSON's escapes are
/// YAML's), empty mappings as `{}`.
fn yaml(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut s = String::new();
    if let Value::Object(m) = v {
        for (k, v) in m {
            let key = Value::String(k.clone()).to_string();
            match v {
                Value::Object(inner) if inner.is_empty() => {
                    s.push_str(&format!("{pad}{key}: {{}}\n"))
                }
                Value::Object(_) => {
                    s.push_str(&format!("{pad}{key}:\n"));
                    s.push_str(&yaml(v, indent + 2));
                }
                other => s.push_str(&format!("{pad}{key}: {other}\n")),
            }
        }
    }
    s
}
