//! Which VMs a plan covers (`--only`), which allocation lock their steps
//! take, and that a plan is a function of its inputs.

mod common;

use common::*;
use pvefleet_plan::{InputSource, StorageLock, Upload};

#[test]
fn only_selects_vms_by_name() {
    let d = host(&[
        &format!("{{name: a, image: {IMG}}}"),
        &format!("{{name: b, image: {IMG}}}"),
        &format!("{{name: c, vmid: 100, image: {IMG}}}"),
    ]);
    let p = plan_with(&d, &observed(vec![node("pve1", "8.4.1")]), false, &["b"]);
    let names: Vec<&str> = p.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    // The file's vmid 100 stays reserved even when its VM is left out.
    assert_eq!(p.vms[0].vmid, Some(id(101)));
}

#[test]
fn only_selects_vms_by_vmid_from_the_file() {
    let d = host(&[
        &format!("{{name: a, vmid: 201, image: {IMG}}}"),
        &format!("{{name: b, vmid: 202, image: {IMG}}}"),
        // Allocated ids are not known before the plan: 100 selects nothing.
        &format!("{{name: c, image: {IMG}}}"),
    ]);
    let o = observed(vec![node("pve1", "8.4.1")]);
    let p = plan_with(&d, &o, false, &["202", "100"]);
    let names: Vec<&str> = p.vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    let p = plan_with(&d, &o, false, &["a", "202"]);
    assert_eq!(p.vms.len(), 2);
}

#[test]
fn a_storage_the_cluster_shares_takes_the_shared_lock() {
    let d = cluster(
        &["pve1"],
        &[
            &web("node: pve1, storage: ceph, disk_from: linked-clone"),
            &format!("{{name: b, vmid: 201, node: pve1, image: {IMG}}}"),
        ],
    );
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    o.shared_storages.insert("ceph".into());
    let p = plan_of(&d, &o);
    let shared = StorageLock::Shared {
        storage: "ceph".into(),
    };
    assert_eq!(p.vms[0].storage_lock, Some(shared.clone()));
    assert_eq!(p.preludes[0].storage_lock, shared);
    assert_eq!(
        p.vms[1].storage_lock,
        Some(StorageLock::Local {
            node: "pve1".into(),
            storage: "local-lvm".into()
        })
    );
}

#[test]
fn planning_twice_gives_equal_plans_with_uploads_once_per_node_and_content() {
    let d = cluster(
        &["pve1", "pve2"],
        &[
            &format!("{{name: a, node: pve1, image: {IMG}, ssh_keys: ['{KEY_A}']}}"),
            &format!("{{name: b, node: pve1, image: {IMG}, ssh_keys: ['{KEY_A}']}}"),
            &format!("{{name: c, node: pve1, image: {IMG}, ssh_keys: ['{KEY_B}', '{KEY_A}']}}"),
            &format!("{{name: d, node: pve2, image: {IMG}, ssh_keys: ['{KEY_A}']}}"),
            &format!("{{name: e, node: auto, image: {IMG}, disk_from: linked-clone}}"),
        ],
    );
    let o = observed(vec![node("pve1", "8.4.1"), node("pve2", "8.4.1")]);
    let p = plan_of(&d, &o);
    assert_eq!(p, plan_of(&d, &o));
    let up = |node: &str, file: &str, content: String| Upload {
        node: node.into(),
        file_name: file.into(),
        content,
        install_to: None,
    };
    assert_eq!(
        p.uploads,
        [
            up("pve1", "sshkeys-0.pub", format!("{KEY_A}\n")),
            up("pve1", "sshkeys-1.pub", format!("{KEY_B}\n{KEY_A}\n")),
            up("pve2", "sshkeys-0.pub", format!("{KEY_A}\n")),
        ]
    );
    let per_vm: Vec<(Vec<usize>, Vec<InputSource>)> = p
        .vms
        .iter()
        .map(|v| {
            let inputs = v.steps.iter().flat_map(|s| &s.inputs);
            (
                v.uploads.clone(),
                inputs.map(|i| i.source.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        per_vm,
        [
            (vec![0], vec![InputSource::Upload(0)]),
            (vec![0], vec![InputSource::Upload(0)]),
            (vec![1], vec![InputSource::Upload(1)]),
            (vec![2], vec![InputSource::Upload(2)]),
            (vec![], vec![]),
        ]
    );
}
