//! Every real pvesh answer under fixtures/pvesh parses with the lenient readers.

use pvefleet_plan::observed as obs;
use std::path::Path;

fn parse_one(name: &str, bytes: &[u8]) -> Result<(), String> {
    let e = |x: obs::ObserveError| x.to_string();
    if name.starts_with("cluster-resources") {
        obs::parse_cluster_vms(bytes).map_err(e)?;
        obs::parse_node_memory(bytes).map_err(e)?;
        obs::parse_storages(bytes).map_err(e)?;
        let shared = obs::parse_shared_storages(bytes).map_err(e)?;
        // One sample lists an NFS storage named `shared`; the others list
        // local storages or none.
        let want: Vec<&str> = if name.contains("dirkthedaring") {
            vec!["shared"]
        } else {
            vec![]
        };
        assert_eq!(shared.iter().collect::<Vec<_>>(), want, "{name}");
        Ok(())
    } else if name.starts_with("storage-content") {
        obs::parse_content(bytes).map(|_| ()).map_err(e)
    } else if name.starts_with("qemu-config") {
        // pvefleet reads /pending, not /config; each value still reads as text.
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|x| x.to_string())?;
        let obj = v.as_object().ok_or("expected an object")?;
        match obj.iter().find(|(_, val)| obs::text(Some(val)).is_none()) {
            Some((k, _)) => Err(format!("{k} does not read as text")),
            None => Ok(()),
        }
    } else if name.starts_with("node-network") {
        obs::parse_bridges(bytes).map(|_| ()).map_err(e)
    } else if name.starts_with("version") {
        obs::parse_version(bytes).map(|_| ()).map_err(e)
    } else if name.starts_with("cluster-nextid") {
        obs::parse_next_id(bytes)
            .map(|id| assert_eq!(id, 100))
            .map_err(e)
    } else if name.starts_with("agent-network") || name.starts_with("qm-guest-cmd") {
        match obs::parse_agent_addresses(bytes) {
            Ok(_) => Ok(()),
            // An agent error inside `result` is reported, not a crash.
            Err(err) if name.contains("community-proxmox-3") => {
                assert!(err.to_string().contains("guest agent"));
                Ok(())
            }
            Err(err) => Err(err.to_string()),
        }
    } else {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map(|_| ())
            .map_err(|x| x.to_string())
    }
}

#[test]
fn all_fixtures_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pvesh");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let p = entry.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        if !name.ends_with(".json") {
            continue;
        }
        n += 1;
        let bytes = std::fs::read(&p).expect("read");
        if let Err(err) = parse_one(&name, &bytes) {
            panic!("{name}: {err}");
        }
    }
    assert_eq!(n, 56, "all 56 samples");
}

#[test]
fn strings_as_numbers() {
    let vms = obs::parse_cluster_vms(br#"[{"id":"qemu/100","vmid":"100","node":"pve","type":"qemu","template":"","tags":"B;a"},{"id":"node/pve","type":"node"}]"#).expect("parse");
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0].vmid.get(), 100);
    assert!(!vms[0].template);
    assert_eq!(vms[0].tags, ["a", "b"]);
}

#[test]
fn shared_storages_come_from_the_resources_listing() {
    let shared = obs::parse_shared_storages(
        br#"[{"id":"storage/pve1/ceph","storage":"ceph","type":"storage","shared":1,"node":"pve1"},
            {"id":"storage/pve1/local-lvm","storage":"local-lvm","type":"storage","shared":0,"node":"pve1"},
            {"id":"storage/pve2/nfs","storage":"nfs","type":"storage","shared":"1","node":"pve2"},
            {"id":"qemu/100","vmid":100,"type":"qemu","node":"pve1"}]"#,
    )
    .expect("parse");
    assert_eq!(
        shared.into_iter().collect::<Vec<_>>(),
        ["ceph".to_string(), "nfs".to_string()]
    );
}

/// The storages of `/cluster/resources` as real hosts list them: per node,
/// the content types in Proxmox's order, and `shared`.
#[test]
fn storage_facts_come_from_the_resources_listing_per_node() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pvesh");
    let read = |name: &str| std::fs::read(dir.join(name)).expect("fixture");
    // A 4-node cluster whose `local` (dir) holds no VM disks, as installed.
    let go = obs::parse_storages(&read("cluster-resources--go-proxmox-1.json")).expect("parse");
    assert_eq!(
        go.keys().collect::<Vec<_>>(),
        ["node1", "node2", "node3", "node4"]
    );
    let local = &go["node1"]["local"];
    assert_eq!(
        local.content.as_deref(),
        Some(&["backup".to_string(), "vztmpl".into(), "iso".into()][..])
    );
    assert!(!local.holds("images") && !local.shared);
    assert_eq!(local.kind.as_deref(), Some("dir"));
    assert!(go["node3"]["local-zfs"].holds("images"));
    assert!(!go["node2"]["cloud-init"].holds("images"));
    // A host whose admin enabled images on `local`, and an NFS share.
    let px =
        obs::parse_storages(&read("cluster-resources--dirkthedaring-px-1.json")).expect("parse");
    assert!(px["pve"]["local"].holds("images"));
    assert!(px["pve"]["shared"].shared && px["pve"]["shared"].holds("images"));
    assert_eq!(px["pve"].len(), 3);
    // The VM-only listing has no storages at all.
    let vms = obs::parse_storages(&read("cluster-resources-type-vm--community-proxmox-1.json"))
        .expect("parse");
    assert!(vms.is_empty());
}

#[test]
fn storage_facts_read_leniently() {
    let facts = obs::parse_storages(
        br#"[{"id":"storage/pve1/a","storage":"a","type":"storage","node":"pve1","shared":"1","content":"images, rootdir,images"},
            {"id":"storage/pve1/b","storage":"b","type":"storage","node":"pve1","content":"none"},
            {"id":"storage/pve1/c","storage":"c","type":"storage","node":"pve1"},
            {"id":"storage/x","storage":"x","type":"storage"},
            {"id":"sdn/pve1/zone","type":"sdn","node":"pve1"}]"#,
    )
    .expect("parse");
    let pve1 = &facts["pve1"];
    assert_eq!(pve1.len(), 3, "entries without a node are skipped");
    assert_eq!(
        pve1["a"].content.as_deref(),
        Some(&["images".to_string(), "rootdir".into()][..])
    );
    assert!(pve1["a"].shared);
    // `none`: no content type; missing: not known, so not held against it.
    assert!(!pve1["b"].holds("images"));
    assert!(pve1["c"].holds("images") && pve1["c"].content.is_none());
}

/// `/nodes/{node}/qemu --full 1` lists each VM's vmstatus with `qmpstatus`
/// (CONTRACT §12.4), as `status/current` does: a suspended VM reports
/// `status: running` and `qmpstatus: paused`, and reads as paused.
#[test]
fn a_paused_vm_reads_as_paused_from_the_full_listing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pvesh");
    let one = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).expect("fixture")).expect("json")
    };
    let list = serde_json::json!([
        one("qemu-status-current--fog-proxmox-3.json"),
        one("qemu-status-current--fog-proxmox-2.json"),
        one("qemu-status-current--community-proxmox-1.json"),
    ]);
    let vms = obs::parse_node_vms("pve", list.to_string().as_bytes()).expect("parse");
    let status: Vec<_> = vms.iter().map(|v| v.status.clone()).collect();
    use pvefleet_model::VmStatus;
    assert_eq!(
        status,
        [
            Some(VmStatus::Paused),
            Some(VmStatus::Running),
            Some(VmStatus::Stopped)
        ]
    );
    assert!(vms.iter().all(|v| v.node == "pve"));
}
