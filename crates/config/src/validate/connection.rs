//! How to reach the Proxmox nodes: `proxmox:` (one host) or `nodes:` (a
//! cluster), each with an SSH host, user and port, and `become: sudo` for
//! a user other than root.

use super::primitives::{is_dns_name, is_unix_user};
use super::{Cx, Fields};
use crate::error::{ErrorKind, Span};
use crate::keys;
use crate::limits::shown;
use crate::raw::Node;
use crate::spec::NodeConn;

/// The SSH part of a node: host, user, port, and whether commands go
/// through sudo.
type Ssh = (String, Option<String>, Option<u16>, bool);

impl Cx<'_> {
    /// `host`, `user` and `port` of `proxmox:` or one node; `owner` is where
    /// a missing `host` is reported.
    fn host_fields(&mut self, f: &Fields<'_>, owner: Span) -> Option<Ssh> {
        let host = match f.get("host") {
            Some((_, n)) => self.string("host", n).and_then(|h| {
                if h.is_empty() || h.starts_with('-') || h.chars().any(char::is_whitespace) {
                    self.err(
                        ErrorKind::Format,
                        n.span,
                        format!("host: {} is not an SSH destination", shown(&h)),
                        "use a host name, an address, a ~/.ssh/config alias, or 'local'",
                    );
                    None
                } else {
                    Some(h)
                }
            }),
            None => {
                self.err(
                    ErrorKind::Missing,
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
        let sudo = match f.get("become") {
            Some((_, n)) => self.become_sudo(n).ok_or(()),
            None => Ok(false),
        };
        Some((host?, user.ok()?, port, sudo.ok()?))
    }

    /// `become`: `sudo` (every Proxmox command through `sudo -n`) or `none`.
    fn become_sudo(&mut self, n: &Node) -> Option<bool> {
        match self.string("become", n)?.as_str() {
            "sudo" => Some(true),
            "none" => Some(false),
            other => {
                self.err(
                    ErrorKind::Format,
                    n.span,
                    format!("become: {} is not supported", shown(other)),
                    "use 'sudo' (commands run through sudo -n) or 'none'",
                );
                None
            }
        }
    }

    /// Whether `name` is a valid Proxmox node name; reports it if not.
    fn node_name(&mut self, name: &str, span: Span) -> bool {
        if is_dns_name(name) && !name.contains('.') {
            true
        } else {
            self.err(
                ErrorKind::Format,
                span,
                format!("{} is not a valid Proxmox node name", shown(name)),
                "node names are host names: letters, digits and '-'",
            );
            false
        }
    }

    /// `proxmox:`: one host.
    pub(super) fn proxmox(&mut self, node: &Node) -> Option<Vec<NodeConn>> {
        let entries = self.map("proxmox", node)?;
        let f = self.fields(entries, keys::PROXMOX, "proxmox");
        let name = match f.get("node") {
            Some((_, n)) => self.string("node", n).filter(|s| self.node_name(s, n.span)),
            None => None,
        };
        let (host, user, port, sudo) = self.host_fields(&f, node.span)?;
        Some(vec![NodeConn {
            name,
            host,
            user,
            port,
            sudo,
        }])
    }

    /// `nodes:`: a cluster, one entry per node name.
    pub(super) fn cluster(&mut self, node: &Node) -> Option<Vec<NodeConn>> {
        let entries = self.map("nodes", node)?;
        if entries.is_empty() {
            self.err(
                ErrorKind::Missing,
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
            let f = self.fields(fe, keys::NODE, &format!("nodes.{}", k.name));
            if let Some((host, user, port, sudo)) = self.host_fields(&f, k.span) {
                if valid_name {
                    out.push(NodeConn {
                        name: Some(k.name.clone()),
                        host,
                        user,
                        port,
                        sudo,
                    });
                }
            }
        }
        Some(out)
    }
}
