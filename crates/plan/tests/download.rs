//! Images by URL: the content type per Proxmox version, one download per
//! node and storage (one for a shared storage), reuse of a listed file,
//! and what stops a download.

mod common;

use common::*;
use pvefleet_model::{Command, DownloadContent};
use pvefleet_plan::observed::StorageFacts;
use pvefleet_plan::{Action, PlanProblem};

const SHA: &str = "3c1d4a8e6a0d4b5d2f0e8a7c9b1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";

fn by_url(name: &str, file: &str, extra: &str) -> String {
    format!("{{name: {name}, image: {{url: 'https://h.example/{file}', checksum: 'sha256:{SHA}', storage: local}}{extra}}}")
}

fn local_holds(o: &mut pvefleet_plan::Observed, node: &str, content: &str, shared: bool) {
    o.storage_facts.entry(node.into()).or_default().insert(
        "local".into(),
        StorageFacts {
            content: Some(content.split(',').map(String::from).collect()),
            shared,
            kind: Some("dir".into()),
        },
    );
    if shared {
        o.shared_storages.insert("local".into());
    }
}

#[test]
fn three_vms_share_one_download_and_import_the_iso_by_path() {
    let d = host(&[
        &by_url("a", "noble.img", ""),
        &by_url("b", "noble.img", ""),
        &by_url("c", "noble.img", ""),
    ]);
    let mut n = node("pve1", "8.4.1");
    n.image_paths.insert(
        "local:iso/noble.img".into(),
        "/var/lib/vz/template/iso/noble.img".into(),
    );
    let p = plan_of(&d, &observed(vec![n]));
    assert_eq!(p.downloads.len(), 1, "{:?}", p.downloads);
    let dl = &p.downloads[0];
    assert_eq!(dl.volid, "local:iso/noble.img");
    assert_eq!(dl.command.content, DownloadContent::Iso);
    assert!(!p.is_converged());
    for vp in &p.vms {
        assert_eq!(vp.action, Action::Create, "{:?}", vp.problem);
        assert_eq!(vp.download, Some(0));
        let Command::Qm(pvefleet_model::Qm::Create { options, .. }) = &vp.steps[0].command else {
            panic!("{:?}", vp.steps[0]);
        };
        assert_eq!(
            options.get("scsi0"),
            Some("local-lvm:0,import-from=/var/lib/vz/template/iso/noble.img")
        );
    }
}

#[test]
fn a_listed_file_is_used_without_a_download() {
    let d = host(&[&by_url("a", "noble.img", "")]);
    let mut n = node("pve1", "8.4.1");
    add_volume(
        &mut n,
        "local:iso/noble.img",
        Some("/var/lib/vz/template/iso/noble.img"),
    );
    let p = plan_of(&d, &observed(vec![n]));
    assert!(p.downloads.is_empty());
    assert_eq!(p.vms[0].action, Action::Create);
    assert_eq!(p.vms[0].download, None);
}

#[test]
fn a_qcow2_is_an_import_volume_from_pve_8_4_and_impossible_before() {
    let d = host(&[&by_url("a", "debian-12.qcow2", "")]);
    let p = plan_of(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(p.downloads[0].command.content, DownloadContent::Import);
    let Command::Qm(pvefleet_model::Qm::Create { options, .. }) = &p.vms[0].steps[0].command else {
        panic!("{:?}", p.vms[0]);
    };
    assert_eq!(
        options.get("scsi0"),
        Some("local-lvm:0,import-from=local:import/debian-12.qcow2")
    );
    let p = plan_of(&d, &observed(vec![node("pve1", "8.3.2")]));
    assert!(p.downloads.is_empty());
    match &p.vms[0].problem {
        Some(PlanProblem::DownloadImpossible { reason, .. }) => {
            assert!(reason.contains("PVE 8.4"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.vms[0].problem.as_ref().map(|x| x.code()),
        Some("download_impossible")
    );
}

#[test]
fn a_storage_without_the_content_type_says_how_to_enable_it() {
    let d = host(&[&by_url("a", "noble.img", "")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    local_holds(&mut o, "pve1", "vztmpl,backup", false);
    let p = plan_of(&d, &o);
    let msg = p.vms[0]
        .problem
        .as_ref()
        .map(|x| x.to_string())
        .unwrap_or_default();
    assert!(
        msg.contains("pvesm set local --content vztmpl,backup,iso"),
        "{msg}"
    );
}

#[test]
fn a_shared_storage_downloads_once_for_the_cluster_and_a_local_one_per_node() {
    let vms = [
        by_url("a", "noble.img", ", node: n1"),
        by_url("b", "noble.img", ", node: n2"),
    ];
    let d = cluster(&["n1", "n2"], &[&vms[0], &vms[1]]);
    let nodes = || {
        ["n1", "n2"]
            .map(|n| {
                let mut s = node(n, "8.4.1");
                s.image_paths
                    .insert("local:iso/noble.img".into(), "/mnt/iso/noble.img".into());
                s
            })
            .to_vec()
    };
    let mut o = observed(nodes());
    for n in ["n1", "n2"] {
        local_holds(&mut o, n, "iso,images", true);
    }
    let p = plan_of(&d, &o);
    assert_eq!(p.downloads.len(), 1, "{:?}", p.downloads);
    assert!(p.downloads[0].shared);
    assert_eq!(p.vms[1].download, Some(0));
    let o = observed(nodes());
    let p = plan_of(&d, &o);
    assert_eq!(p.downloads.len(), 2, "{:?}", p.downloads);
    assert_eq!(p.downloads[1].node, "n2");
}

#[test]
fn node_auto_does_not_need_the_file_on_the_node() {
    let d = cluster(&["n1", "n2"], &[&by_url("a", "noble.img", ", node: auto")]);
    let nodes = ["n1", "n2"].map(|n| {
        let mut s = node(n, "8.4.1");
        s.image_paths.insert(
            "local:iso/noble.img".into(),
            "/var/lib/vz/template/iso/noble.img".into(),
        );
        s
    });
    let p = plan_of(&d, &observed(nodes.to_vec()));
    assert_eq!(p.vms[0].action, Action::Create, "{:?}", p.vms[0].problem);
    assert_eq!(p.downloads.len(), 1);
}

#[test]
fn two_urls_for_one_file_are_a_problem_for_the_second_vm() {
    let other = format!(
        "{{name: b, image: {{url: 'https://mirror.example/noble.img', checksum: 'sha256:{SHA}', storage: local}}}}"
    );
    let d = host(&[&by_url("a", "noble.img", ""), &other]);
    let mut n = node("pve1", "8.4.1");
    n.image_paths.insert(
        "local:iso/noble.img".into(),
        "/var/lib/vz/template/iso/noble.img".into(),
    );
    let p = plan_of(&d, &observed(vec![n]));
    assert_eq!(p.downloads.len(), 1);
    assert_eq!(p.vms[0].action, Action::Create);
    let msg = p.vms[1]
        .problem
        .as_ref()
        .map(|x| x.to_string())
        .unwrap_or_default();
    assert!(msg.contains("same file local:iso/noble.img"), "{msg}");
}
