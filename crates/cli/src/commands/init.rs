//! `init`: a starter configuration file from what a host has: its node(s),
//! the storages that hold VM disks, the bridges, and the cloud images on
//! its `iso`/`import` storages (the first one as `defaults.image`), with
//! one example VM commented out. The file passes `check` as written and
//! with the example uncommented.

use super::host::{self, scalar, Doc, MODELINE};
use crate::args::{HostArgs, Target};
use crate::ui;
use crate::ExitStatus;
use pvefleet_model::{Command, Pvesh};
use pvefleet_plan::observed::{parse_content, parse_next_id};
use serde_json::{json, Value};

/// What is written when the host has no cloud image yet.
const SUGGESTED_IMAGE: &str = "local:iso/jammy-server-cloudimg-amd64.img";

/// True for a file that can be a VM's disk image (not an installer ISO).
fn is_disk_image(volid: &str) -> bool {
    let lower = volid.to_ascii_lowercase();
    [".img", ".qcow2", ".raw", ".vmdk"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// What one node has.
struct NodeFacts {
    name: String,
    version: Option<String>,
    /// (storage, type) of the storages enabled for VM disks.
    storages: Vec<(String, Option<String>)>,
    bridges: Vec<String>,
    images: Vec<String>,
}

/// Reads the host and prints the starter file (or its JSON document).
pub async fn run(host: &HostArgs, target: &Target) -> ExitStatus {
    let desired = match host::desired(host, target) {
        Ok(d) => d,
        Err(s) => return s,
    };
    let (handles, observed) = match host::read(&desired, target).await {
        Ok(x) => x,
        Err(s) => return s,
    };
    let mut facts: Vec<NodeFacts> = Vec::new();
    let mut next_id: Option<u32> = None;
    for (i, h) in handles.iter().enumerate() {
        let Some(state) = observed.node(&h.name) else {
            continue;
        };
        let all = observed.storage_facts.get(&h.name);
        let storages: Vec<(String, Option<String>)> = observed
            .image_storages(&h.name)
            .into_iter()
            .map(|s| {
                let kind = all.and_then(|a| a.get(&s)).and_then(|f| f.kind.clone());
                (s, kind)
            })
            .collect();
        let image_stores: Vec<String> = all
            .map(|a| {
                a.iter()
                    .filter(|(_, f)| {
                        f.content
                            .as_ref()
                            .is_some_and(|c| c.iter().any(|t| t == "iso" || t == "import"))
                    })
                    .map(|(s, _)| s.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut argvs: Vec<Vec<String>> = image_stores
            .iter()
            .map(|s| Command::Pvesh(Pvesh::storage_content(&h.name, s)).argv())
            .collect();
        if i == 0 {
            argvs.push(Command::Pvesh(Pvesh::next_id()).argv());
        }
        let outs = match host::run_reads(h, &argvs).await {
            Ok(o) => o,
            Err(s) => {
                super::close(&handles).await;
                return s;
            }
        };
        let mut images: Vec<String> = Vec::new();
        for out in outs.iter().take(image_stores.len()).filter(|o| o.success()) {
            for v in parse_content(out.stdout.as_bytes()).unwrap_or_default() {
                let content = v.content.as_deref().unwrap_or_default();
                if matches!(content, "iso" | "import")
                    && is_disk_image(&v.volid)
                    && !images.contains(&v.volid)
                {
                    images.push(v.volid);
                }
            }
        }
        if i == 0 {
            next_id = outs
                .last()
                .filter(|o| o.success())
                .and_then(|o| parse_next_id(o.stdout.as_bytes()).ok());
        }
        facts.push(NodeFacts {
            name: h.name.clone(),
            version: state.version.map(|v| v.to_string()),
            storages,
            bridges: state.bridges.clone(),
            images,
        });
    }
    super::close(&handles).await;
    let text = starter(
        &desired,
        &host::connection_yaml(&desired, &handles, target.simulate),
        &facts,
        next_id,
    );
    let mut doc = Doc::default();
    doc.fixed(text);
    let (text, passes) = doc.checked();
    let ui = ui::ui();
    if ui.json {
        let nodes: Vec<Value> = facts
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "version": f.version,
                    "storages": f.storages.iter().map(|(s, _)| s).collect::<Vec<_>>(),
                    "bridges": f.bridges,
                    "images": f.images,
                })
            })
            .collect();
        ui::print_json(&json!({"file": text, "check": passes, "nodes": nodes}));
    } else {
        print!("{text}");
        tracing::info!("review the file, uncomment the example VM, then: pvefleet plan FILE");
    }
    if passes {
        ExitStatus::Ok
    } else {
        ExitStatus::Failed
    }
}

/// The starter file's text.
fn starter(
    desired: &pvefleet_config::Desired,
    connection: &str,
    facts: &[NodeFacts],
    next_id: Option<u32>,
) -> String {
    let mut s = String::new();
    let names: Vec<&str> = facts.iter().map(|f| f.name.as_str()).collect();
    s.push_str(MODELINE);
    s.push('\n');
    s.push_str(&format!(
        "# Starter configuration for node(s) {}, written by `pvefleet init` from\n# what the host has. `pvefleet schema > config.schema.json` puts the\n# schema beside this file for editors. Every key is documented in\n# docs/config.md. Uncomment the example VM at the end, then:\n#\n#   pvefleet check FILE && pvefleet plan FILE\n\n",
        names.join(", ")
    ));
    s.push_str(connection);
    s.push('\n');
    for f in facts {
        s.push_str(&format!(
            "# Node {}{}:\n",
            f.name,
            f.version
                .as_deref()
                .map(|v| format!(" (Proxmox VE {v})"))
                .unwrap_or_default()
        ));
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        s.push_str(&format!(
            "#   storages for VM disks: {}\n",
            list(
                f.storages
                    .iter()
                    .map(|(n, k)| match k {
                        Some(k) => format!("{n} ({k})"),
                        None => n.clone(),
                    })
                    .collect()
            )
        ));
        s.push_str(&format!("#   bridges: {}\n", list(f.bridges.clone())));
        s.push_str(&format!("#   cloud images: {}\n", list(f.images.clone())));
    }
    let first = facts.first();
    // A storage every node has, preferring the first node's order.
    let storage = first.and_then(|f| {
        f.storages
            .iter()
            .map(|(n, _)| n)
            .find(|n| {
                facts
                    .iter()
                    .all(|o| o.storages.iter().any(|(m, _)| m == *n))
            })
            .cloned()
    });
    let bridge = first.and_then(|f| {
        f.bridges
            .iter()
            .find(|b| facts.iter().all(|o| o.bridges.contains(b)))
            .cloned()
    });
    let image = first.and_then(|f| {
        f.images
            .iter()
            .find(|i| facts.iter().all(|o| o.images.contains(i)))
            .cloned()
    });
    s.push_str("\n# Applied to every VM; any VM key overrides it.\ndefaults:\n");
    match storage {
        Some(st) => s.push_str(&format!("  storage: {}   # where the VM disks go\n", scalar(&st))),
        None => s.push_str("  storage: local-lvm   # TODO: no storage of the host holds VM disks ('images' content); enable one with pvesm set\n"),
    }
    match bridge {
        Some(b) => s.push_str(&format!("  bridge: {}\n", scalar(&b))),
        None => s.push_str("  bridge: vmbr0   # TODO: the host has no bridge\n"),
    }
    match image {
        Some(i) => s.push_str(&format!(
            "  image: {}   # the cloud image the disks are made from\n",
            scalar(&i)
        )),
        None => s.push_str(&format!(
            "  image: {}   # TODO: no cloud image on the host's iso/import storages yet; put one there (docs/real-host.md)\n",
            scalar(SUGGESTED_IMAGE)
        )),
    }
    s.push_str("  memory: 2048          # MiB (or a size such as 2G)\n  cores: 2\n  disk: 20G             # the system disk is grown to this size\n  # user: ubuntu        # cloud-init user\n  # ssh_keys: [\"ssh-ed25519 AAAA... you@laptop\"]\n\nvms:\n");
    let vmid = next_id.unwrap_or(100).max(100);
    s.push_str(&format!(
        "  # An example VM: uncomment it (and add more), then plan.\n  # - vmid: {vmid}\n  #   name: vm-01\n"
    ));
    if desired.cluster {
        if let Some(f) = first {
            s.push_str(&format!("  #   node: {}   # or auto\n", f.name));
        }
    }
    s.push_str("  #   ip: dhcp\n  #   state: running\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Vec<NodeFacts> {
        vec![NodeFacts {
            name: "pve".into(),
            version: Some("8.4.1".into()),
            storages: vec![("local-lvm".into(), Some("lvmthin".into()))],
            bridges: vec!["vmbr0".into(), "vmbr1".into()],
            images: vec!["local:iso/jammy.img".into()],
        }]
    }

    fn one_host() -> pvefleet_config::Desired {
        pvefleet_config::parse("t.yml", "proxmox: {host: h}\nvms:\n", &|_| {
            Err(String::new())
        })
        .expect("valid")
    }

    /// The text with the example VM uncommented.
    fn uncommented(text: &str) -> String {
        text.lines()
            .map(|l| match l.strip_prefix("  # ") {
                Some(rest) if rest.starts_with("- ") || rest.starts_with("  ") => {
                    format!("  {rest}")
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_starter_passes_check_as_written_and_uncommented() {
        for f in [facts(), Vec::new()] {
            let text = starter(
                &one_host(),
                "proxmox:\n  host: h\n  node: pve\n",
                &f,
                Some(105),
            );
            assert!(text.starts_with(MODELINE));
            let parse = |t: &str| pvefleet_config::parse("t.yml", t, &|_| Err(String::new()));
            let d = parse(&text).unwrap_or_else(|r| panic!("{}\n{text}", r.render(false)));
            assert!(d.vms.is_empty());
            let open = uncommented(&text);
            let d = parse(&open).unwrap_or_else(|r| panic!("{}\n{open}", r.render(false)));
            assert_eq!(d.vms.len(), 1, "{open}");
            assert_eq!(d.vms[0].vmid.map(|v| v.get()), Some(105));
        }
    }

    #[test]
    fn only_disk_images_are_offered() {
        assert!(is_disk_image("local:iso/jammy-server-cloudimg-amd64.img"));
        assert!(is_disk_image("local:import/debian-12.qcow2"));
        assert!(!is_disk_image("local:iso/proxmox-ve_8.4.iso"));
    }
}
