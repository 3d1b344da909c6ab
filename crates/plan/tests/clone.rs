//! VMs made by cloning: pvefleet's image cache (`disk_from: linked-clone |
//! full-clone`) and an admin's template (`clone:`).

mod common;

use common::*;
use pvefleet_config::ImageRef;
use pvefleet_plan::cache::cache_name;
use pvefleet_plan::{Action, Check, InputSource, PlanProblem, StepInput, StorageLock, CACHE_TAG};

/// The `qm set` after a clone of `{name: web, memory: 2048}`, then `rest`.
fn web_set(rest: &[&str]) -> Vec<String> {
    let mut a = words(&[
        "qm",
        "set",
        "200",
        "--name",
        "web",
        "--memory",
        "2048",
        "--cores",
        "1",
        "--sockets",
        "1",
        "--net0",
        "virtio,bridge=vmbr0",
        "--agent",
        "enabled=1",
        "--serial0",
        "socket",
        "--vga",
        "serial0",
        "--tags",
        "pvefleet",
        "--description",
        "managed-by: pvefleet",
    ]);
    a.extend(words(rest));
    a
}

/// `web` made from the admin template `from` (and further keys).
fn cloned(from: &str) -> String {
    format!("{{name: web, vmid: 200, memory: 2048, clone: {from}}}")
}

fn img() -> ImageRef {
    ImageRef::Volume {
        storage: "local".into(),
        volname: "iso/x.img".into(),
    }
}

#[test]
fn linked_clone_plans_a_cache_template_prelude_then_clone_and_set_without_resize() {
    let d = host(&[&web("disk: 20G, disk_from: linked-clone")]);
    let (p, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    let name = cache_name(&img(), "local-lvm", Some(20 << 30));
    assert!(name.starts_with("pvefleet-img-"), "{name}");
    assert_eq!(p.preludes.len(), 1);
    let pre = &p.preludes[0];
    // The VM has 200, so the template takes the first free id.
    assert_eq!((pre.node.as_str(), pre.vmid), ("pve1", id(100)));
    assert_eq!(pre.label, format!("image cache {name} (local:iso/x.img)"));
    assert_eq!(
        pre.storage_lock,
        StorageLock::Local {
            node: "pve1".into(),
            storage: "local-lvm".into()
        }
    );
    assert_eq!(
        argvs(&pre.steps),
        [
            words(&[
                "qm",
                "create",
                "100",
                "--name",
                &name,
                "--ostype",
                "l26",
                "--scsihw",
                "virtio-scsi-pci",
                "--scsi0",
                "local-lvm:0,import-from=/var/lib/vz/template/iso/x.img",
                "--boot",
                "order=scsi0",
                "--serial0",
                "socket",
                "--vga",
                "serial0",
                "--agent",
                "enabled=1",
                "--tags",
                "pvefleet-cache;pvefleet",
                "--description",
                "pvefleet image cache of local:iso/x.img on local-lvm\nmanaged-by: pvefleet",
            ]),
            words(&["qm", "disk", "resize", "100", "scsi0", "20G"]),
            words(&["qm", "template", "100"]),
        ]
    );
    let checks: Vec<Check> = pre.steps.iter().map(|s| s.check).collect();
    assert_eq!(
        checks,
        [Check::Reserve, Check::QuietStderr, Check::QuietStderr]
    );

    assert_eq!(v.action, Action::Create);
    assert_eq!(v.prelude, Some(0));
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "clone", "100", "200", "--name", "web", "--full", "0"]),
            web_set(&["--ide2", "local-lvm:cloudinit"]),
            words(&["qm", "start", "200"]),
        ]
    );
    assert_eq!(v.steps[0].check, Check::Reserve);
    assert_eq!(v.steps[1].check, Check::Exit);
    assert!(v.storage_lock.is_some());
}

#[test]
fn a_cache_template_is_planned_once_per_node_storage_image_and_size() {
    let d = host(&[
        &format!("{{name: a, image: {IMG}, disk: 20G, disk_from: linked-clone}}"),
        &format!("{{name: b, image: {IMG}, disk: 20G, disk_from: full-clone}}"),
        &format!("{{name: c, image: {IMG}, disk: 30G, disk_from: linked-clone}}"),
        &format!("{{name: e, image: {IMG}, disk: 20G, disk_from: linked-clone, storage: fast}}"),
    ]);
    let p = plan_of(&d, &observed(vec![node("pve1", "8.4.1")]));
    // a: VM 100, cache 101; b: VM 102 clones 101; c: VM 103, cache 104;
    // e: VM 105, cache 106.
    let preludes: Vec<(u32, String)> = p
        .preludes
        .iter()
        .map(|pr| (pr.vmid.get(), argv(&pr.steps[0])[4].clone()))
        .collect();
    assert_eq!(
        preludes,
        [
            (101, cache_name(&img(), "local-lvm", Some(20 << 30))),
            (104, cache_name(&img(), "local-lvm", Some(30 << 30))),
            (106, cache_name(&img(), "fast", Some(20 << 30))),
        ]
    );
    let clones: Vec<(Option<usize>, Vec<String>)> = p
        .vms
        .iter()
        .map(|v| (v.prelude, argv(&v.steps[0])))
        .collect();
    assert_eq!(
        clones,
        [
            (
                Some(0),
                words(&["qm", "clone", "101", "100", "--name", "a", "--full", "0"])
            ),
            (
                Some(0),
                words(&["qm", "clone", "101", "102", "--name", "b", "--full", "1"])
            ),
            (
                Some(1),
                words(&["qm", "clone", "104", "103", "--name", "c", "--full", "0"])
            ),
            (
                Some(2),
                words(&["qm", "clone", "106", "105", "--name", "e", "--full", "0"])
            ),
        ]
    );
    assert!(p.vms.iter().all(|v| v.vmid_allocated));
}

#[test]
fn an_existing_cache_template_is_cloned_with_no_prelude() {
    let d = host(&[&web("disk: 20G, disk_from: full-clone")]);
    let mut n = node("pve1", "8.4.1");
    let mut t = template(
        150,
        "pve1",
        &cache_name(&img(), "local-lvm", Some(20 << 30)),
    );
    t.tags = vec![CACHE_TAG.into(), "pvefleet".into()];
    n.vms.push(t);
    let (p, v) = only_vm(&d, &observed(vec![n]));
    assert!(p.preludes.is_empty());
    assert_eq!(v.prelude, None);
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "clone", "150", "200", "--name", "web", "--full", "1"]),
            web_set(&["--ide2", "local-lvm:cloudinit"]),
            words(&["qm", "start", "200"]),
        ]
    );
}

#[test]
fn a_template_with_the_cache_name_but_without_the_cache_tag_is_not_reused() {
    let d = host(&[&web("disk_from: linked-clone")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(template(
        150,
        "pve1",
        &cache_name(&img(), "local-lvm", None),
    ));
    let (p, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(p.preludes.len(), 1);
    // Without `disk`, the template keeps the image's size: no resize.
    assert_eq!(argvs(&p.preludes[0].steps)[1], ["qm", "template", "100"]);
    assert_eq!(argv(&v.steps[0])[2], "100");
}

#[test]
fn the_image_cache_needs_pve_7_2() {
    let d = host(&[&web("disk_from: linked-clone")]);
    let (p, v) = only_vm(&d, &observed(vec![node("pve1", "7.1-10")]));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty() && p.preludes.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::CacheNeedsImportFrom {
            node: "pve1".into()
        })
    );
}

/// A node with the admin template 9000 `base` whose disk is `disk` (a
/// drive value) and whose config has a cloud-init drive when `cloudinit`.
fn template_node(key: &str, disk: &str, cloudinit: bool) -> pvefleet_plan::NodeState {
    let mut n = node("pve1", "8.4.1");
    let mut pairs = vec![("name", "base"), (key, disk), ("template", "1")];
    let boot = format!("order={key}");
    pairs.push(("boot", &boot));
    if cloudinit {
        pairs.push(("ide2", "local-lvm:base-9000-cloudinit,media=cdrom"));
    }
    let cfg = config(&pairs);
    put(&mut n, template(9000, "pve1", "base"), cfg);
    n
}

#[test]
fn clone_of_an_admin_template_by_id_is_a_linked_clone_then_set() {
    let d = host(&[&cloned("9000")]);
    let n = template_node("scsi0", "local-lvm:base-9000-disk-0,size=2G", true);
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Create);
    assert_eq!(v.prelude, None);
    // The template has a cloud-init drive: no ide2.
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "clone", "9000", "200", "--name", "web", "--full", "0"]),
            web_set(&[]),
            words(&["qm", "start", "200"]),
        ]
    );
}

#[test]
fn clone_of_an_admin_template_by_name_with_keys_and_a_larger_disk() {
    let d = host(&[&format!(
        "{{name: web, vmid: 200, clone: base, memory: 2048, disk: 32G, ssh_keys: ['{KEY_A}']}}"
    )]);
    let n = template_node("virtio0", "local-lvm:base-9000-disk-0,size=2G", false);
    let (p, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(
        argvs(&v.steps),
        [
            words(&["qm", "clone", "9000", "200", "--name", "web", "--full", "0"]),
            // No cloud-init drive on the template: one is added.
            web_set(&["--ide2", "local-lvm:cloudinit"]),
            // The template's boot disk grows.
            words(&["qm", "disk", "resize", "200", "virtio0", "32G"]),
            words(&["qm", "start", "200"]),
        ]
    );
    assert_eq!(
        v.steps[1].inputs,
        [StepInput {
            option: "sshkeys",
            source: InputSource::Upload(0)
        }]
    );
    assert_eq!(p.uploads[0].file_name, "sshkeys-0.pub");
}

#[test]
fn a_template_on_another_storage_is_cloned_in_full_to_the_vm_storage() {
    let d = host(&[&cloned("9000")]);
    let n = template_node("scsi0", "nfs:9000/base-9000-disk-0.qcow2,size=2G", true);
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(
        argv(&v.steps[0]),
        [
            "qm",
            "clone",
            "9000",
            "200",
            "--name",
            "web",
            "--full",
            "1",
            "--storage",
            "local-lvm"
        ]
    );
}

#[test]
fn clone_of_a_vm_that_is_not_a_template_is_not_a_template() {
    let d = host(&[&cloned("9000")]);
    let mut n = node("pve1", "8.4.1");
    n.vms.push(foreign(9000, "pve1", "base"));
    let (_, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::NotATemplate { vmid: id(9000) })
    );
}

#[test]
fn clone_of_a_missing_template_is_template_not_found() {
    let by_id = host(&[&cloned("9000")]);
    let by_name = host(&[&cloned("base")]);
    // A VM named `base` that is not a template does not count by name.
    let mut n = node("pve1", "8.4.1");
    n.vms.push(foreign(9001, "pve1", "base"));
    let o = observed(vec![n]);
    let (_, v) = only_vm(&by_id, &o);
    assert_eq!(
        v.problem,
        Some(PlanProblem::TemplateNotFound {
            template: "9000".into()
        })
    );
    let (_, v) = only_vm(&by_name, &o);
    assert_eq!(v.action, Action::Error);
    assert_eq!(
        v.problem,
        Some(PlanProblem::TemplateNotFound {
            template: "base".into()
        })
    );
}

#[test]
fn a_template_on_another_node_is_template_elsewhere() {
    let d = cluster(&["pve1", "pve2"], &[&cloned("9000, node: pve1")]);
    let mut o = observed(vec![node("pve1", "8.4.1"), node("pve2", "8.4.1")]);
    o.cluster_vms.push(template(9000, "pve2", "base"));
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Error);
    assert_eq!(
        v.problem,
        Some(PlanProblem::TemplateElsewhere {
            vmid: id(9000),
            template_node: "pve2".into(),
            node: "pve1".into()
        })
    );
}

#[test]
fn an_existing_cache_template_is_reused_even_on_pve_7_1() {
    // Only planning a new cache template needs import-from.
    let d = host(&[&web("disk_from: linked-clone")]);
    let mut n = node("pve1", "7.1-10");
    let mut t = template(150, "pve1", &cache_name(&img(), "local-lvm", None));
    t.tags = vec![CACHE_TAG.into(), "pvefleet".into()];
    n.vms.push(t);
    let (p, v) = only_vm(&d, &observed(vec![n]));
    assert_eq!(v.problem, None);
    assert!(p.preludes.is_empty());
    assert_eq!(
        argv(&v.steps[0]),
        ["qm", "clone", "150", "200", "--name", "web", "--full", "0"]
    );
}
