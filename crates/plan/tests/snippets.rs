//! Custom cloud-init data: the snippet upload and `cicustom` on create, its
//! drift on update, removal, the storage checks, the reads, and destroy.

mod common;

use common::*;
use pvefleet_model::spec::Desired;
use pvefleet_plan::snippets::{snippet_name, snippet_volid};
use pvefleet_plan::{
    destroy_plan, read_plan, read_plan_for_destroy, Action, DestroyInput, PlanNote, PlanProblem,
    Read, VmPlan,
};

const DATA: &str = "user_data: {packages: [htop]}";
const TEXT: &str = "#cloud-config\npackages:\n- htop\n";
const SNIPPET_DIR: &str = "/var/lib/vz/snippets/";

/// The snippet volume id of `text` on `local`.
fn volid(text: &str) -> String {
    format!("local:snippets/{}", snippet_name(text))
}

/// A node where `local` has `snippets`, lists the snippets of `texts` and
/// knows their paths.
fn with_snippets(mut o: pvefleet_plan::Observed, texts: &[&str]) -> pvefleet_plan::Observed {
    storage_fact(&mut o, "pve1", "local", "dir", "iso,vztmpl,backup,snippets");
    storage_fact(&mut o, "pve1", "local-lvm", "lvmthin", "rootdir,images");
    if let Some(n) = o.node_mut("pve1") {
        for t in texts {
            add_volume(
                n,
                &volid(t),
                Some(&format!("{SNIPPET_DIR}{}", snippet_name(t))),
            );
        }
    }
    o
}

fn vm_of(d: &Desired, o: &pvefleet_plan::Observed) -> (pvefleet_plan::Plan, VmPlan) {
    only_vm(d, o)
}

#[test]
fn a_new_vm_uploads_its_snippet_and_names_it_in_qm_create() {
    let d = host(&[&web(DATA)]);
    let o = with_snippets(observed(vec![node("pve1", "8.4.1")]), &[TEXT]);
    let (p, v) = vm_of(&d, &o);
    assert_eq!(v.action, Action::Create, "{v:#?}");
    let up = &p.uploads[v.uploads[0]];
    assert_eq!(up.content, TEXT);
    assert_eq!(up.file_name, snippet_name(TEXT));
    assert_eq!(
        up.install_to.as_deref(),
        Some(format!("{SNIPPET_DIR}{}", snippet_name(TEXT)).as_str())
    );
    let create = argv(&v.steps[0]);
    let i = create
        .iter()
        .position(|a| a == "--cicustom")
        .expect("cicustom");
    assert_eq!(create[i + 1], format!("vendor={}", volid(TEXT)));
}

#[test]
fn two_vms_with_the_same_data_share_one_upload() {
    let d = host(&[
        &web(DATA),
        "{name: b, vmid: 201, image: local:iso/x.img, user_data: {packages: [htop]}}",
    ]);
    let o = with_snippets(observed(vec![node("pve1", "8.4.1")]), &[TEXT]);
    let p = plan_of(&d, &o);
    let snippets: Vec<_> = p
        .uploads
        .iter()
        .filter(|u| u.install_to.is_some())
        .collect();
    assert_eq!(snippets.len(), 1);
    assert_eq!(p.vms[0].uploads, p.vms[1].uploads);
}

#[test]
fn the_same_data_for_two_storages_is_two_files() {
    let d = host(&[
        &web(DATA),
        "{name: b, vmid: 201, image: local:iso/x.img, user_data: {packages: [htop]}, snippets_storage: nas}",
    ]);
    let mut o = with_snippets(observed(vec![node("pve1", "8.4.1")]), &[TEXT]);
    storage_fact(&mut o, "pve1", "nas", "nfs", "snippets");
    let nas = format!("nas:snippets/{}", snippet_name(TEXT));
    o.nodes[0]
        .image_paths
        .insert(nas, format!("/mnt/pve/nas/snippets/{}", snippet_name(TEXT)));
    let p = plan_of(&d, &o);
    let names: Vec<&str> = p.uploads.iter().map(|u| u.file_name.as_str()).collect();
    assert_eq!(
        names,
        [snippet_name(TEXT), format!("nas-{}", snippet_name(TEXT))]
    );
}

#[test]
fn user_mode_sets_cicustom_user() {
    let d = host(&[&web("user_data: {packages: [htop]}, user_data_mode: user")]);
    let o = with_snippets(observed(vec![node("pve1", "8.4.1")]), &[TEXT]);
    let (_, v) = vm_of(&d, &o);
    assert!(argv(&v.steps[0]).contains(&format!("user={}", volid(TEXT))));
}

#[test]
fn a_storage_without_snippets_names_the_pvesm_fix() {
    let d = host(&[&web(DATA)]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    default_storages(&mut o, "pve1");
    let (p, v) = vm_of(&d, &o);
    assert_eq!(
        v.problem,
        Some(PlanProblem::SnippetsNotEnabled {
            storage: "local".into(),
            node: "pve1".into(),
            content: vec!["iso".into(), "vztmpl".into(), "backup".into()],
        })
    );
    let msg = v
        .problem
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        msg.ends_with("pvesm set local --content iso,vztmpl,backup,snippets"),
        "{msg}"
    );
    assert_eq!(
        v.problem.as_ref().map(|p| p.code()),
        Some("snippets_not_enabled")
    );
    assert!(v.steps.is_empty() && v.uploads.is_empty());
    assert!(p.uploads.is_empty());
}

#[test]
fn a_missing_storage_or_an_unknown_path_is_a_problem() {
    let d = host(&[&web("user_data: {packages: [htop]}, snippets_storage: nas")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    default_storages(&mut o, "pve1");
    let (_, v) = vm_of(&d, &o);
    assert_eq!(
        v.problem.as_ref().map(|p| p.code()),
        Some("snippets_storage_missing")
    );
    // Listed as not active on the node.
    let d = host(&[&web(DATA)]);
    let mut o = with_snippets(observed(vec![node("pve1", "8.4.1")]), &[TEXT]);
    o.inactive_storages = pvefleet_plan::snippets::parse_inactive_storages(
        br#"[{"type":"storage","node":"pve1","storage":"local","status":"unknown"},{"type":"storage","node":"pve1","storage":"local-lvm","status":"available"},{"type":"qemu","node":"pve1"}]"#,
    );
    assert_eq!(o.inactive_storages["pve1"].len(), 1);
    let (_, v) = vm_of(&d, &o);
    assert_eq!(
        v.problem.as_ref().map(|p| p.code()),
        Some("snippets_storage_inactive")
    );
    // Enabled, but `pvesm path` gave nothing.
    let d = host(&[&web(DATA)]);
    let o = with_snippets(observed(vec![node("pve1", "8.4.1")]), &[]);
    let (_, v) = vm_of(&d, &o);
    assert_eq!(
        v.problem.as_ref().map(|p| p.code()),
        Some("snippet_path_unknown")
    );
}

#[test]
fn an_existing_vm_with_the_same_snippet_changes_nothing() {
    let cfg = {
        let mut c = web_config();
        c.current
            .insert("cicustom".into(), format!("vendor={}", volid(TEXT)));
        c
    };
    let d = host(&[&web(DATA)]);
    let o = with_snippets(observed(vec![web_node(cfg)]), &[TEXT]);
    let (_, v) = vm_of(&d, &o);
    assert_eq!(v.action, Action::None, "{v:#?}");
    assert!(v.steps.is_empty() && v.uploads.is_empty());
}

#[test]
fn a_snippet_the_storage_no_longer_lists_is_written_again() {
    let d = host(&[&web(DATA)]);
    let mut o = with_snippets(observed(vec![web_node(cfg_with(TEXT))]), &[TEXT]);
    o.nodes[0].storages.insert("local".into(), Vec::new());
    let (p, v) = vm_of(&d, &o);
    assert_eq!(v.action, Action::Update, "{v:#?}");
    assert!(v.steps.is_empty());
    assert_eq!(p.uploads[v.uploads[0]].content, TEXT);
    assert_eq!(v.changes[0].key, "snippet");
    // Listed: nothing to do.
    add_volume(&mut o.nodes[0], &volid(TEXT), None);
    let (_, v) = vm_of(&d, &o);
    assert_eq!(v.action, Action::None, "{v:#?}");
}

#[test]
fn changed_data_uploads_a_new_snippet_and_waits_for_the_next_boot() {
    let old = "#cloud-config\npackages:\n- vim\n";
    let d = host(&[&web(DATA)]);
    let o = with_snippets(observed(vec![web_node(cfg_with(old))]), &[TEXT]);
    let (p, v) = vm_of(&d, &o);
    assert_eq!(v.action, Action::Update);
    // Running on PVE 8.4: the drive is regenerated at once.
    let set = format!("vendor={}", volid(TEXT));
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "set", "200", "--cicustom", &set]),
            words(&["qm", "cloudinit", "update", "200"]),
        ]
    );
    assert_eq!(p.uploads[v.uploads[0]].content, TEXT);
    assert_eq!(v.reboot_pending, ["cicustom"]);
    assert!(v
        .notes
        .contains(&PlanNote::UserDataNextBoot { vendor: true }));
    // Stopped, or before PVE 7.3: the next start makes the drive.
    let mut o = with_snippets(observed(vec![web_node(cfg_with(old))]), &[TEXT]);
    o.nodes[0].vms[0].status = Some(pvefleet_model::VmStatus::Stopped);
    let stopped = host(&[&web("user_data: {packages: [htop]}, state: stopped")]);
    let (_, v) = vm_of(&stopped, &o);
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--cicustom", &set])]
    );
    let mut old_node = web_node(cfg_with(old));
    old_node.version = pvefleet_plan::PveVersion::parse("7.2.7");
    let (_, v) = vm_of(&d, &with_snippets(observed(vec![old_node]), &[TEXT]));
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--cicustom", &set])]
    );
}

/// [`web_config`] pointing at the snippet of `text`.
fn cfg_with(text: &str) -> pvefleet_plan::VmConfig {
    let mut c = web_config();
    c.current
        .insert("cicustom".into(), format!("vendor={}", volid(text)));
    c
}

#[test]
fn removed_data_deletes_a_fleet_cicustom_and_keeps_one_set_by_hand() {
    let mut cfg = web_config();
    cfg.current
        .insert("cicustom".into(), format!("vendor={}", volid(TEXT)));
    let d = host(&[&web("")]);
    let (_, v) = vm_of(&d, &observed(vec![web_node(cfg)]));
    assert_eq!(
        argvs(&v.steps),
        [words(&["qm", "set", "200", "--delete", "cicustom"])]
    );
    let mut cfg = web_config();
    cfg.current
        .insert("cicustom".into(), "user=local:snippets/mine.yaml".into());
    let (_, v) = vm_of(&d, &observed(vec![web_node(cfg)]));
    assert_eq!(v.action, Action::None, "{v:#?}");
}

#[test]
fn the_reads_ask_for_the_snippet_path_and_destroy_for_every_config() {
    let d = host(&[&web(DATA)]);
    let r = read_plan(&d);
    assert!(r.nodes[0].reads.contains(&Read::ImagePath(volid(TEXT))));
    // `local` holds the image too: listed once.
    let listed = r.nodes[0]
        .reads
        .iter()
        .filter(|x| **x == Read::StorageContent("local".into()))
        .count();
    assert_eq!(listed, 1);
    let nas = host(&[&web("user_data: {a: 1}, snippets_storage: nas")]);
    assert!(read_plan(&nas).nodes[0]
        .reads
        .contains(&Read::StorageContent("nas".into())));
    assert!(!r.every_vm);
    assert!(read_plan_for_destroy(&d).every_vm);
    assert!(!read_plan_for_destroy(&host(&[&web("")])).every_vm);
    let u = d.vms[0].user_data.as_ref().expect("user data");
    assert_eq!(snippet_volid(u), volid(TEXT));
}

#[test]
fn destroy_removes_a_snippet_only_when_no_other_vm_uses_it() {
    let d = host(&[&web(DATA)]);
    let mut cfg = web_config();
    cfg.current
        .insert("cicustom".into(), format!("vendor={}", volid(TEXT)));
    let mut n = web_node(cfg.clone());
    n.image_paths
        .insert(volid(TEXT), format!("{SNIPPET_DIR}{}", snippet_name(TEXT)));
    let o = observed(vec![n.clone()]);
    let p = destroy_plan(DestroyInput {
        desired: &d,
        observed: &o,
        only: &[],
        include_cache: false,
    });
    let last = p.vms[0].steps.last().map(argv).unwrap_or_default();
    assert_eq!(
        last,
        words(&[
            "rm",
            "-f",
            "--",
            &format!("{SNIPPET_DIR}{}", snippet_name(TEXT))
        ])
    );
    // Another managed VM (of another file) uses it: it stays.
    put(&mut n, vm(300, "pve1", "other"), cfg);
    let o = observed(vec![n]);
    let p = destroy_plan(DestroyInput {
        desired: &d,
        observed: &o,
        only: &[],
        include_cache: false,
    });
    assert_eq!(p.vms[0].steps.len(), 2, "{:#?}", p.vms[0].steps);
}

#[test]
fn destroy_also_removes_the_older_snippet_the_vm_points_at() {
    let old = "#cloud-config\npackages:\n- vim\n";
    let d = host(&[&web(DATA)]);
    let mut n = web_node(cfg_with(old));
    n.image_paths
        .insert(volid(TEXT), format!("{SNIPPET_DIR}{}", snippet_name(TEXT)));
    let o = observed(vec![n]);
    let p = destroy_plan(DestroyInput {
        desired: &d,
        observed: &o,
        only: &[],
        include_cache: false,
    });
    let last = p.vms[0].steps.last().map(argv).unwrap_or_default();
    assert_eq!(
        last,
        words(&[
            "rm",
            "-f",
            "--",
            &format!("{SNIPPET_DIR}{}", snippet_name(TEXT)),
            &format!("{SNIPPET_DIR}{}", snippet_name(old)),
        ])
    );
}

#[test]
fn an_admins_network_or_meta_item_of_cicustom_is_kept() {
    let net = "network=local:snippets/net.yaml";
    let mut cfg = web_config();
    cfg.current
        .insert("cicustom".into(), format!("vendor={},{net}", volid(TEXT)));
    // The same data: nothing to do, the admin's item stays.
    let d = host(&[&web(DATA)]);
    let o = with_snippets(observed(vec![web_node(cfg.clone())]), &[TEXT]);
    let (_, v) = vm_of(&d, &o);
    assert_eq!(v.action, Action::None, "{v:#?}");
    // Other data: only pvefleet's item changes.
    let other = "#cloud-config\npackages:\n- git\n";
    let d = host(&[&web("user_data: {packages: [git]}")]);
    let o = with_snippets(observed(vec![web_node(cfg.clone())]), &[TEXT, other]);
    let (_, v) = vm_of(&d, &o);
    let set = argvs(&v.steps)
        .into_iter()
        .find(|a| a[1] == "set")
        .expect("set");
    let i = set
        .iter()
        .position(|a| a == "--cicustom")
        .expect("cicustom");
    assert_eq!(set[i + 1], format!("{net},vendor={}", volid(other)));
    // No data: pvefleet's item goes, the admin's stays.
    let d = host(&[&web("")]);
    let (_, v) = vm_of(&d, &observed(vec![web_node(cfg)]));
    assert_eq!(
        argvs(&v.steps)[0],
        words(&["qm", "set", "200", "--cicustom", net])
    );
}

#[test]
fn destroy_keeps_a_snippet_of_a_shared_storage_while_a_node_was_not_read() {
    let d = host(&[&web(DATA)]);
    let mut cfg = web_config();
    cfg.current
        .insert("cicustom".into(), format!("vendor={}", volid(TEXT)));
    let mut n = web_node(cfg);
    n.image_paths
        .insert(volid(TEXT), format!("{SNIPPET_DIR}{}", snippet_name(TEXT)));
    let mut o = observed(vec![n]);
    o.shared_storages.insert("local".into());
    let removes = |o: &pvefleet_plan::Observed| {
        let p = destroy_plan(DestroyInput {
            desired: &d,
            observed: o,
            only: &[],
            include_cache: false,
        });
        p.vms[0].steps.iter().any(|s| argv(s)[0] == "rm")
    };
    assert!(removes(&o), "every node with VMs was read");
    // A VM on pve2, a node this run did not read, may use it.
    o.cluster_vms.push(vm(400, "pve2", "elsewhere"));
    assert!(!removes(&o));
}

#[test]
fn destroy_reads_every_vm_of_the_nodes_when_asked() {
    let d = host(&[&web(DATA)]);
    let mut n = web_node(web_config());
    let mut foreign = vm(301, "pve1", "not-ours");
    foreign.tags.clear();
    put(&mut n, foreign, web_config());
    let o = observed(vec![n]);
    let mut reads = read_plan(&d);
    let ids = |r: &pvefleet_plan::ReadPlan| -> Vec<u32> {
        r.configs_of(&o).iter().map(|(_, id)| id.get()).collect()
    };
    assert!(!ids(&reads).contains(&301));
    reads.every_vm = true;
    assert!(ids(&reads).contains(&301));
}
