//! Values that must differ between VMs: vmid, name, static IP and MAC.

use super::Cx;
use crate::error::{ConfigError, ErrorKind, Span};
use crate::raw::{Key, Node, Value};
use crate::spec::{IpConfig, VmSpec};
use pvefleet_model::VmId;
use std::collections::HashMap;
use std::net::Ipv4Addr;

impl Cx<'_> {
    /// Reports every value a VM shares with an earlier VM.
    pub(super) fn duplicates(&mut self, vms: &[VmSpec], entries: &[(Key, Node)]) {
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
                        ConfigError::at(
                            ErrorKind::Duplicate,
                            span,
                            ["duplicate vmid ", &id.to_string()].concat(),
                        )
                        .help(first_at(first)),
                    );
                }
            }
            if let Some(first) = seen_name.insert(&vm.name, vm.line) {
                let span = span_of(vm.line, "name");
                self.errors.push(
                    ConfigError::at(
                        ErrorKind::Duplicate,
                        span,
                        ["duplicate name '", &vm.name, "'"].concat(),
                    )
                    .help(first_at(first)),
                );
            }
            if let Some(IpConfig::Static { address, .. }) = vm.ip {
                if let Some(first) = seen_ip.insert(address, vm.line) {
                    let span = span_of(vm.line, "ip");
                    self.errors.push(
                        ConfigError::at(
                            ErrorKind::Duplicate,
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
                        ConfigError::at(
                            ErrorKind::Duplicate,
                            span,
                            ["duplicate MAC ", mac].concat(),
                        )
                        .help(first_at(first)),
                    );
                }
            }
        }
    }
}
