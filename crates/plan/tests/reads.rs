//! What to read from the nodes, decided from the file alone.

mod common;

use common::*;
use pvefleet_plan::{read_plan, NodeReads, Read};

fn image_reads(storages: &[&str], paths: &[&str]) -> Vec<Read> {
    let mut r: Vec<Read> = storages
        .iter()
        .map(|s| Read::StorageContent(s.to_string()))
        .collect();
    r.extend(paths.iter().map(|p| Read::ImagePath(p.to_string())));
    r
}

#[test]
fn a_single_host_reads_its_name_its_storages_and_the_paths_of_its_image_volumes() {
    let d = host(&[
        &web(""),
        "{name: b, vmid: 201, image: 'local:import/y.qcow2'}",
        "{name: c, vmid: 202, image: /srv/z.img}",
        "{name: e, vmid: 203, image: 'nfs:images/1/x.qcow2'}",
    ]);
    let r = read_plan(&d);
    assert!(!r.cluster && !r.memory);
    let mut want = vec![Read::Version, Read::Nodes, Read::Vms, Read::Network];
    // Every volume's path: `import-from` wants one for iso (and import
    // before PVE 8.3), `qm importdisk` (before 7.2) for any volume.
    want.extend(image_reads(
        &["local", "nfs"],
        &["local:import/y.qcow2", IMG, "nfs:images/1/x.qcow2"],
    ));
    assert_eq!(
        r.nodes,
        [NodeReads {
            node: None,
            reads: want
        }]
    );
    // Every VM has its id and imports: no next id.
    assert_eq!(r.cluster_reads, [Read::ClusterResources, Read::HaResources]);
    // A host that names its node needs no `/nodes`.
    let named = desired(&format!(
        "proxmox: {{host: h, node: pve1}}\nvms:\n  - {}\n",
        web("")
    ));
    let r = read_plan(&named);
    assert_eq!(r.nodes[0].node.as_deref(), Some("pve1"));
    assert!(!r.nodes[0].reads.contains(&Read::Nodes));
    assert_eq!(
        r.nodes[0].reads[..3],
        [Read::Version, Read::Vms, Read::Network]
    );
}

#[test]
fn cluster_nodes_read_the_images_of_their_vms_and_of_auto_vms_only() {
    let d = cluster(
        &["pve1", "pve2"],
        &[
            "{name: a, vmid: 200, node: pve1, image: 'local:iso/a.img'}",
            "{name: b, vmid: 201, node: auto, image: 'local:iso/b.img'}",
            "{name: c, vmid: 202, node: pve2, clone: base}",
        ],
    );
    let r = read_plan(&d);
    assert!(r.cluster && r.memory);
    let base = [Read::Version, Read::Vms, Read::Network];
    let mut pve1 = base.to_vec();
    pve1.extend(image_reads(
        &["local"],
        &["local:iso/a.img", "local:iso/b.img"],
    ));
    let mut pve2 = base.to_vec();
    pve2.extend(image_reads(&["local"], &["local:iso/b.img"]));
    assert_eq!(
        r.nodes,
        [
            NodeReads {
                node: Some("pve1".into()),
                reads: pve1
            },
            NodeReads {
                node: Some("pve2".into()),
                reads: pve2
            },
        ]
    );
    assert_eq!(r.cluster_reads, [Read::ClusterResources, Read::HaResources]);
    // The reads are commands on the node.
    assert_eq!(
        Read::StorageContent("local".into()).command("pve2").argv(),
        [
            "pvesh",
            "get",
            "/nodes/pve2/storage/local/content",
            "--output-format",
            "json"
        ]
    );
    assert_eq!(
        Read::ImagePath(IMG.into()).command("pve2").argv(),
        ["pvesm", "path", IMG]
    );
}

#[test]
fn next_id_is_read_for_vms_without_vmid_and_for_the_image_cache_only() {
    let with = |vm: &str| read_plan(&host(&[vm])).cluster_reads;
    assert_eq!(with(&web("")), [Read::ClusterResources, Read::HaResources]);
    assert_eq!(
        with(&format!("{{name: web, image: {IMG}}}")),
        [Read::ClusterResources, Read::NextId, Read::HaResources]
    );
    assert_eq!(
        with(&web("disk_from: full-clone")),
        [Read::ClusterResources, Read::NextId, Read::HaResources]
    );
    // Free memory serves `node: auto` only.
    assert!(!read_plan(&cluster(&["pve1"], &[&web("node: pve1")])).memory);
}

#[test]
fn configs_are_read_for_managed_vms_of_the_file_and_the_templates_they_clone() {
    let d = cluster(
        &["pve1", "pve2"],
        &[
            &web("node: pve1"),
            &format!("{{name: b, node: pve2, image: {IMG}}}"),
            &format!("{{name: c, vmid: 202, node: pve1, image: {IMG}}}"),
            &format!("{{name: d, vmid: 203, node: pve1, image: {IMG}}}"),
            "{name: e, vmid: 204, node: pve1, clone: base}",
            &format!("{{name: f, vmid: 205, node: pve2, image: {IMG}}}"),
        ],
    );
    let mut o = observed(vec![node("pve1", "8.4.1"), node("pve2", "8.4.1")]);
    o.cluster_vms.push(vm(200, "pve1", "web"));
    // b is found by name among managed VMs.
    o.cluster_vms.push(vm(201, "pve2", "b"));
    // c is not managed; d does not exist.
    o.cluster_vms.push(foreign(202, "pve1", "c"));
    o.cluster_vms.push(template(9000, "pve1", "base"));
    // f's id is a managed template: not read as a VM.
    let mut t = vm(205, "pve2", "f");
    t.template = true;
    o.cluster_vms.push(t);
    // An unmanaged VM of no interest.
    o.cluster_vms.push(foreign(300, "pve2", "x"));
    let got = read_plan(&d).configs_of(&o);
    assert_eq!(
        got,
        [
            ("pve1".to_string(), id(200)),
            ("pve1".to_string(), id(9000)),
            ("pve2".to_string(), id(201)),
        ]
    );
}
