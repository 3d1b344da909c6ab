//! What `import` and `init` share: reaching a host without a configuration
//! file of VMs (`--host`, `--from FILE`, `--simulate`), reading it as `plan`
//! does, and writing a configuration file that passes `check`.

use crate::args::{HostArgs, Target};
use crate::ui::Failure;
use crate::ExitStatus;
use pvefleet_config::Desired;
use pvefleet_exec::observe::NodeHandle;
use pvefleet_exec::script::StepOutput;
use pvefleet_model::spec::NodeConn;
use pvefleet_plan::Observed;
use serde_json::json;

/// The schema modeline a written file starts with (the schema is written
/// beside it with `pvefleet schema > config.schema.json`).
pub(super) const MODELINE: &str = "# yaml-language-server: $schema=config.schema.json";

/// A usage error (exit 2) of `import`/`init`.
fn usage(message: impl Into<String>) -> ExitStatus {
    Failure::new(ExitStatus::Invalid, "usage", message)
        .hint("give --host DEST (an SSH destination), --from FILE (its proxmox: or nodes: section) or --simulate")
        .report()
}

/// The nodes to read, as a file without VMs.
pub(super) fn desired(host: &HostArgs, target: &Target) -> Result<Desired, ExitStatus> {
    if let Some(file) = &host.from {
        let mut d = super::load_file(file)?;
        d.vms.clear();
        d.spans = Default::default();
        if host.node.is_empty() {
            return Ok(d);
        }
        if d.cluster {
            if let Some(unknown) = host.node.iter().find(|n| {
                !d.nodes
                    .iter()
                    .any(|c| c.name.as_deref() == Some(n.as_str()))
            }) {
                return Err(usage(format!(
                    "--node {unknown} is not a node of {file} (it has: {})",
                    d.node_names().join(", ")
                )));
            }
            d.nodes
                .retain(|c| c.name.as_ref().is_some_and(|n| host.node.contains(n)));
            return Ok(d);
        }
        let [node] = host.node.as_slice() else {
            return Err(usage(format!("{file} names one host: give one --node")));
        };
        match &mut d.nodes[0].name {
            Some(n) if n != node => {
                return Err(usage(format!(
                    "--node {node}: {file} says the host's node is {n}"
                )))
            }
            name => *name = Some(node.clone()),
        }
        return Ok(d);
    }
    let name = match host.node.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        _ => {
            return Err(usage(
                "--host reaches one node: give one --node, or --from FILE with the cluster's nodes: section",
            ))
        }
    };
    let (host, user) = match &host.host {
        Some(dest) => match dest.rsplit_once('@') {
            Some((user, host)) if !user.is_empty() && !host.is_empty() => {
                (host.to_string(), Some(user.to_string()))
            }
            _ => (dest.clone(), None),
        },
        None if target.simulate => ("local".to_string(), None),
        None => return Err(usage("no host to read")),
    };
    if host.is_empty() || host.starts_with('-') || host.chars().any(char::is_whitespace) {
        return Err(usage(format!("--host {host} is not an SSH destination")));
    }
    Ok(Desired {
        nodes: vec![NodeConn {
            name,
            host,
            user,
            port: None,
            sudo: false,
        }],
        cluster: false,
        vms: Vec::new(),
        spans: Default::default(),
    })
}

/// Connects and reads the nodes (their VMs, bridges, storages); exits as
/// `plan` does when a node cannot be reached.
pub(super) async fn read(
    desired: &Desired,
    target: &Target,
) -> Result<(Vec<NodeHandle>, Observed), ExitStatus> {
    let cancel = crate::interrupt::token();
    tokio::select! {
        r = super::observe_nodes(desired, target, 8) => r,
        () = cancel.cancelled() => {
            crate::interrupt::close_all().await;
            eprintln!("interrupted while reading the nodes; nothing was changed");
            Err(ExitStatus::Interrupted)
        }
    }
}

/// Runs read-only commands on a node at once; a failed transport is a
/// `read_nodes` error.
pub(super) async fn run_reads(
    h: &NodeHandle,
    argvs: &[Vec<String>],
) -> Result<Vec<StepOutput>, ExitStatus> {
    if argvs.is_empty() {
        return Ok(Vec::new());
    }
    h.transport.run_concurrent(argvs).await.map_err(|e| {
        Failure::new(
            ExitStatus::Failed,
            "read_nodes",
            format!("reading node {} failed: {e}", h.name),
        )
        .at(json!({"node": h.name}))
        .report()
    })
}

/// The connection section of the written file: `proxmox:` for one host
/// (with its node name, now known), `nodes:` for a cluster.
pub(super) fn connection_yaml(
    desired: &Desired,
    handles: &[NodeHandle],
    simulated: bool,
) -> String {
    let mut out = String::new();
    let conn_lines = |c: &NodeConn, indent: &str, out: &mut String| {
        out.push_str(&format!("{indent}host: {}", scalar(&c.host)));
        if simulated && c.host == "local" {
            out.push_str(
                "   # read from the emulated host (--simulate): put your host's SSH destination here",
            );
        }
        out.push('\n');
        if let Some(u) = &c.user {
            out.push_str(&format!("{indent}user: {}\n", scalar(u)));
        }
        if let Some(p) = c.port {
            out.push_str(&format!("{indent}port: {p}\n"));
        }
    };
    if desired.cluster {
        out.push_str("nodes:\n");
        for c in &desired.nodes {
            let name = c.name.clone().unwrap_or_default();
            out.push_str(&format!("  {name}:\n"));
            conn_lines(c, "    ", &mut out);
        }
    } else if let Some(c) = desired.nodes.first() {
        out.push_str("proxmox:\n");
        conn_lines(c, "  ", &mut out);
        let node = c
            .name
            .clone()
            .or_else(|| handles.first().map(|h| h.name.clone()))
            .filter(|n| !n.is_empty());
        if let Some(n) = node {
            out.push_str(&format!("  node: {}\n", scalar(&n)));
        }
    }
    out
}

/// A YAML scalar for a string: plain when that cannot be read as anything
/// else, else double-quoted (a JSON string is a valid YAML one).
pub(super) fn scalar(s: &str) -> String {
    const SPECIAL: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

/// A flow list of scalars: `[a, "b c"]`.
pub(super) fn flow_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| scalar(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// One line of a written file, and the unit it belongs to: the lines of a
/// unit are left out together (a key and its list items).
struct Line {
    text: String,
    unit: Option<usize>,
}

/// A configuration file being written: lines grouped into keys that can be
/// left out (commented, with the reason) when `check` refuses them.
#[derive(Default)]
pub(super) struct Doc {
    lines: Vec<Line>,
    units: usize,
    /// What was left out: (unit's label, key, reason).
    pub omitted: Vec<(String, String, String)>,
    labels: Vec<(String, String)>,
}

impl Doc {
    /// A line nothing can leave out (comments, section headers).
    pub fn fixed(&mut self, text: impl Into<String>) {
        for l in text.into().lines() {
            self.lines.push(Line {
                text: l.to_string(),
                unit: None,
            });
        }
    }

    /// A key line (with its list item lines, `items`), which `check` may
    /// make leave out; `label` says whose key it is (a VM's name).
    pub fn key(&mut self, label: &str, key: &str, line: String, items: &[String]) {
        let unit = self.units;
        self.units += 1;
        self.labels.push((label.to_string(), key.to_string()));
        self.lines.push(Line {
            text: line,
            unit: Some(unit),
        });
        for i in items {
            self.lines.push(Line {
                text: i.clone(),
                unit: Some(unit),
            });
        }
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    /// Comments out the unit of line `line` (1-based: a key with its list
    /// items) with `reason` above it. False when that line cannot be left out.
    fn leave_out(&mut self, line: usize, reason: &str) -> bool {
        let Some(at) = line.checked_sub(1).filter(|i| *i < self.lines.len()) else {
            return false;
        };
        let Some(unit) = self.lines[at].unit else {
            return false;
        };
        // A list's error may point at any of its items: the key goes whole.
        let range: Vec<usize> = (0..self.lines.len())
            .filter(|i| self.lines[*i].unit == Some(unit))
            .collect();
        let first = range[0];
        let indent: String = self.lines[first]
            .text
            .chars()
            .take_while(|c| *c == ' ')
            .collect();
        for i in &range {
            let l = &mut self.lines[*i];
            let body = l.text.trim_start();
            l.text = format!("{indent}# {body}");
            l.unit = None;
        }
        let reason = reason.replace('\n', " ");
        self.lines.insert(
            first,
            Line {
                text: format!("{indent}# left out, `pvefleet check` refuses it: {reason}"),
                unit: None,
            },
        );
        let (label, key) = self.labels[unit].clone();
        self.omitted.push((label, key, reason));
        true
    }

    /// Leaves out what `check` refuses until it accepts the file; the text
    /// and whether it passes.
    pub fn checked(&mut self) -> (String, bool) {
        for _ in 0..64 {
            let text = self.render();
            let report = match pvefleet_config::parse("import.yml", &text, &|_| {
                Err("no files are read here".into())
            }) {
                Ok(_) => return (text, true),
                Err(r) => r,
            };
            let mut progressed = false;
            for e in &report.errors {
                if let Some(span) = e.span {
                    progressed |= self.leave_out(span.line as usize, &e.message);
                }
            }
            if !progressed {
                for e in &report.errors {
                    tracing::warn!("the written file does not pass check: {}", e.message);
                }
                return (self.render(), false);
            }
        }
        (self.render(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_plain_only_when_unambiguous() {
        assert_eq!(scalar("web-01"), "web-01");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("10.0.0.1/24"), "\"10.0.0.1/24\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("two\nlines"), "\"two\\nlines\"");
        assert_eq!(scalar(""), "\"\"");
    }

    #[test]
    fn a_refused_key_is_commented_out_with_the_reason() {
        let mut d = Doc::default();
        d.fixed("proxmox:\n  host: h\nvms:");
        d.key("web", "vmid", "  - vmid: 101".into(), &[]);
        d.key("web", "name", "    name: web".into(), &[]);
        d.key("web", "image", "    image: local:iso/x.img".into(), &[]);
        d.key("web", "memory", "    memory: lots".into(), &[]);
        d.key(
            "web",
            "nameserver",
            "    nameserver:".into(),
            &["      - 10.0.0.1".into(), "      - 10.0.0.300".into()],
        );
        let (text, ok) = d.checked();
        assert!(ok, "{text}");
        assert!(text.contains("    # memory: lots"), "{text}");
        assert!(
            text.contains("    # nameserver:\n    # - 10.0.0.1\n    # - 10.0.0.300"),
            "{text}"
        );
        let keys: Vec<&str> = d.omitted.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(keys, ["memory", "nameserver"]);
    }
}
