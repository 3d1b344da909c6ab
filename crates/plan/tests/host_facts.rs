//! What a node must offer before a VM is created there, checked at plan
//! time instead of failing half-way on the host: the VM's storage exists
//! and holds VM disks, the image is a disk image, and `disk` is not smaller
//! than the disk the VM starts from.

mod common;

use common::*;
use pvefleet_plan::problem::SizeOf;
use pvefleet_plan::{Action, PlanProblem};

/// Ubuntu 22.04's cloud image: 2252 MiB of virtual size.
const UBUNTU_VIRTUAL: i64 = 2252 << 20;

/// One node `pve1` on `version` whose storages are described as a default
/// installation's.
fn default_host(n: pvefleet_plan::NodeState) -> pvefleet_plan::Observed {
    let name = n.name.clone();
    let mut o = observed(vec![n]);
    default_storages(&mut o, &name);
    o
}

#[test]
fn storage_local_of_a_default_install_is_refused_with_the_fix() {
    let d = host(&[&web("storage: local")]);
    let (p, v) = only_vm(&d, &default_host(node("pve1", "8.4.1")));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty() && p.uploads.is_empty() && p.preludes.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::StorageWithoutImages {
            storage: "local".into(),
            node: "pve1".into(),
            content: vec!["iso".into(), "vztmpl".into(), "backup".into()],
            alternatives: vec!["local-lvm".into()],
            can_hold_images: true,
        })
    );
    let msg = v
        .problem
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        msg.contains("storage 'local' on node pve1 cannot hold VM disks"),
        "{msg}"
    );
    // The fix keeps what the storage holds and adds images.
    assert!(
        msg.contains("'pvesm set local --content iso,vztmpl,backup,images'"),
        "{msg}"
    );
    assert!(msg.contains("(local-lvm)"), "{msg}");
    assert_eq!(
        v.problem.as_ref().map(PlanProblem::code),
        Some("storage_without_images")
    );
}

#[test]
fn a_storage_that_never_holds_disks_is_refused_without_the_pvesm_fix() {
    let d = host(&[&web("storage: cephfs")]);
    let mut o = default_host(node("pve1", "8.4.1"));
    storage_fact(&mut o, "pve1", "cephfs", "cephfs", "iso,vztmpl,backup");
    let (_, v) = only_vm(&d, &o);
    let msg = v
        .problem
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(msg.contains("cannot hold VM disks"), "{msg}");
    assert!(!msg.contains("pvesm set"), "{msg}");
    assert!(msg.contains("(local-lvm)"), "{msg}");
}

#[test]
fn a_storage_the_node_does_not_have_is_no_such_storage() {
    let d = host(&[&web("storage: fast-ssd")]);
    let (_, v) = only_vm(&d, &default_host(node("pve1", "8.4.1")));
    assert_eq!(v.action, Action::Error);
    assert_eq!(
        v.problem,
        Some(PlanProblem::NoSuchStorage {
            storage: "fast-ssd".into(),
            node: "pve1".into(),
            available: vec!["local".into(), "local-lvm".into()],
        })
    );
    assert_eq!(
        v.problem.map(|p| p.to_string()).unwrap_or_default(),
        "storage 'fast-ssd' does not exist on node pve1 (it has: local, local-lvm)"
    );
}

#[test]
fn storages_are_not_checked_where_they_were_not_described() {
    // A saved host state or a node without storage entries: nothing to
    // hold against the file.
    let d = host(&[&web("storage: local")]);
    let (_, v) = only_vm(&d, &observed(vec![node("pve1", "8.4.1")]));
    assert_eq!(v.action, Action::Create, "{:?}", v.problem);
    // A storage listed without its content types is not refused either.
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    default_storages(&mut o, "pve1");
    if let Some(f) = o
        .storage_facts
        .get_mut("pve1")
        .and_then(|s| s.get_mut("local"))
    {
        f.content = None;
    }
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Create, "{:?}", v.problem);
}

#[test]
fn a_storage_enabled_for_images_is_fine() {
    let d = host(&[&web("storage: local")]);
    let mut o = observed(vec![node("pve1", "8.4.1")]);
    storage_fact(&mut o, "pve1", "local", "dir", "iso,vztmpl,backup,images");
    let (_, v) = only_vm(&d, &o);
    assert_eq!(v.action, Action::Create, "{:?}", v.problem);
    assert!(argv(&v.steps[0])
        .contains(&"local:0,import-from=/var/lib/vz/template/iso/x.img".to_string()));
}

#[test]
fn a_refused_vm_takes_no_vm_id_from_the_next() {
    let d = host(&[
        "{name: a, image: 'local:iso/x.img', storage: local}",
        "{name: b, image: 'local:iso/x.img'}",
    ]);
    let p = plan_of(&d, &default_host(node("pve1", "8.4.1")));
    assert_eq!(p.vms[0].action, Action::Error);
    assert_eq!(p.vms[1].action, Action::Create);
    assert_eq!(p.vms[1].vmid, Some(id(100)));
}

/// A node listing the Ubuntu image `local:iso/jammy.img` at `size` bytes.
fn ubuntu_node(version: &str, content: &str, volid: &str, size: i64) -> pvefleet_plan::NodeState {
    let mut n = node("pve1", version);
    add_sized(&mut n, volid, content, size);
    n.image_paths
        .insert(volid.into(), "/var/lib/vz/template/iso/jammy.img".into());
    n
}

#[test]
fn a_disk_smaller_than_the_listed_image_is_refused_with_both_sizes() {
    let d = host(&["{name: web, vmid: 200, image: 'local:iso/jammy.img', disk: 2G}"]);
    let n = ubuntu_node("8.4.1", "iso", "local:iso/jammy.img", UBUNTU_VIRTUAL);
    let (p, v) = only_vm(&d, &default_host(n));
    assert_eq!(v.action, Action::Error);
    assert!(v.steps.is_empty() && p.uploads.is_empty());
    assert_eq!(
        v.problem,
        Some(PlanProblem::DiskTooSmall {
            disk: "2G".into(),
            size: "2252M".into(),
            // An iso listing gives the file's size, not the virtual size.
            of: SizeOf::ImageFile {
                image: "local:iso/jammy.img".into(),
                size: "2252M".into()
            },
        })
    );
    let msg = v
        .problem
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        msg.starts_with("disk: 2G is smaller than image local:iso/jammy.img"),
        "{msg}"
    );
    assert!(
        msg.contains("2252M") && msg.contains("cannot shrink"),
        "{msg}"
    );
    assert_eq!(v.problem.map(|p| p.code()), Some("disk_too_small"));
}

#[test]
fn a_disk_as_large_as_the_image_or_larger_is_fine() {
    for disk in ["2252M", "20G"] {
        let d = host(&[&format!(
            "{{name: web, vmid: 200, image: 'local:iso/jammy.img', disk: {disk}}}"
        )]);
        let n = ubuntu_node("8.4.1", "iso", "local:iso/jammy.img", UBUNTU_VIRTUAL);
        let (_, v) = only_vm(&d, &default_host(n));
        assert_eq!(v.action, Action::Create, "{disk}: {:?}", v.problem);
    }
    // Without `disk`, the VM keeps the image's size.
    let d = host(&["{name: web, vmid: 200, image: 'local:iso/jammy.img'}"]);
    let n = ubuntu_node("8.4.1", "iso", "local:iso/jammy.img", UBUNTU_VIRTUAL);
    let (_, v) = only_vm(&d, &default_host(n));
    assert_eq!(v.action, Action::Create);
}

#[test]
fn an_images_volume_is_compared_by_its_virtual_size() {
    let d = host(&["{name: web, vmid: 200, image: 'local-lvm:base-9000-disk-0', disk: 8G}"]);
    let n = ubuntu_node("8.4.1", "images", "local-lvm:base-9000-disk-0", 10 << 30);
    let (_, v) = only_vm(&d, &default_host(n));
    assert_eq!(
        v.problem,
        Some(PlanProblem::DiskTooSmall {
            disk: "8G".into(),
            size: "10G".into(),
            of: SizeOf::ImageVirtual {
                image: "local-lvm:base-9000-disk-0".into(),
                size: "10G".into()
            },
        })
    );
}

#[test]
fn the_image_cache_is_refused_too_when_the_disk_is_too_small() {
    let d = host(&[
        "{name: web, vmid: 200, image: 'local:iso/jammy.img', disk: 2G, disk_from: linked-clone}",
    ]);
    let n = ubuntu_node("8.4.1", "iso", "local:iso/jammy.img", UBUNTU_VIRTUAL);
    let (p, v) = only_vm(&d, &default_host(n));
    assert!(matches!(v.problem, Some(PlanProblem::DiskTooSmall { .. })));
    assert!(p.preludes.is_empty(), "no cache template for a refused VM");
}

/// A node with template 9000 `base` whose boot disk is 10G and has no
/// cloud-init drive.
fn template_host() -> pvefleet_plan::Observed {
    let mut n = node("pve1", "8.4.1");
    put(
        &mut n,
        template(9000, "pve1", "base"),
        config(&[
            ("name", "base"),
            ("template", "1"),
            ("boot", "order=scsi0"),
            ("scsi0", "local-lvm:base-9000-disk-0,size=10G"),
        ]),
    );
    default_host(n)
}

#[test]
fn a_clone_with_a_disk_smaller_than_the_template_is_refused() {
    let d = host(&["{name: web, vmid: 200, clone: base, disk: 8G}"]);
    let (_, v) = only_vm(&d, &template_host());
    assert_eq!(
        v.problem,
        Some(PlanProblem::DiskTooSmall {
            disk: "8G".into(),
            size: "10G".into(),
            of: SizeOf::Template {
                vmid: id(9000),
                disk: "scsi0".into(),
                size: "10G".into()
            },
        })
    );
    assert_eq!(
        v.problem.map(|p| p.to_string()).unwrap_or_default(),
        "disk: 8G is smaller than the boot disk scsi0 of template 9000 (10G); a disk cannot shrink: set 'disk' to at least 10G, or leave it out"
    );
}

#[test]
fn a_clone_with_the_template_size_needs_no_resize_and_a_larger_one_grows() {
    let resizes = |disk: &str| {
        let d = host(&[&format!(
            "{{name: web, vmid: 200, clone: base, disk: {disk}}}"
        )]);
        let (_, v) = only_vm(&d, &template_host());
        assert_eq!(v.action, Action::Create, "{:?}", v.problem);
        argvs(&v.steps)
            .into_iter()
            .filter(|a| a[..3] == ["qm", "disk", "resize"])
            .collect::<Vec<_>>()
    };
    assert!(resizes("10G").is_empty());
    assert_eq!(
        resizes("12G"),
        [words(&["qm", "disk", "resize", "200", "scsi0", "12G"])]
    );
}

#[test]
fn a_clone_to_a_storage_without_images_is_refused() {
    let d = host(&["{name: web, vmid: 200, clone: base, storage: local}"]);
    let (_, v) = only_vm(&d, &template_host());
    assert!(
        matches!(&v.problem, Some(PlanProblem::StorageWithoutImages { storage, .. }) if storage == "local"),
        "{:?}",
        v.problem
    );
}

#[test]
fn an_image_listed_as_another_content_type_is_refused() {
    let d = host(&["{name: web, vmid: 200, image: 'local:vztmpl/debian.tar.zst'}"]);
    let mut n = node("pve1", "8.4.1");
    add_sized(&mut n, "local:vztmpl/debian.tar.zst", "vztmpl", 1 << 28);
    let (_, v) = only_vm(&d, &default_host(n));
    assert_eq!(
        v.problem,
        Some(PlanProblem::ImageWrongContent {
            image: "local:vztmpl/debian.tar.zst".into(),
            content: "vztmpl".into()
        })
    );
}

/// `import-from` takes iso volumes by path always, import volumes by volid
/// from PVE 8.3 and images volumes by volid; `qm importdisk` (PVE < 7.2)
/// takes a path for every volume (CONTRACT §3.4, §4.1, §15).
#[test]
fn each_content_type_is_given_as_the_version_takes_it() {
    let cases = [
        ("8.4.1", "iso", "local:iso/u.img", "path"),
        ("7.2-7", "iso", "local:iso/u.img", "path"),
        ("8.3.0", "import", "local:import/u.qcow2", "volid"),
        ("8.2.7", "import", "local:import/u.qcow2", "path"),
        ("8.4.1", "images", "local:100/u.qcow2", "volid"),
        ("7.2-7", "images", "local:100/u.qcow2", "volid"),
        ("7.1-10", "images", "local:100/u.qcow2", "path"),
        ("7.1-10", "iso", "local:iso/u.img", "path"),
    ];
    for (version, content, volid, want) in cases {
        let d = host(&[&format!("{{name: web, vmid: 200, image: '{volid}'}}")]);
        let mut n = node("pve1", version);
        add_sized(&mut n, volid, content, 1 << 30);
        n.image_paths.insert(volid.into(), "/host/path".into());
        let (_, v) = only_vm(&d, &default_host(n));
        assert_eq!(
            v.action,
            Action::Create,
            "{version} {content}: {:?}",
            v.problem
        );
        let all: Vec<String> = v.steps.iter().flat_map(argv).collect();
        let by_path = all.iter().any(|w| w.contains("/host/path"));
        let by_volid = all
            .iter()
            .any(|w| w.ends_with(&format!("import-from={volid}")) || w == volid);
        let got = match (by_path, by_volid) {
            (true, false) => "path",
            (false, true) => "volid",
            _ => "both or neither",
        };
        assert_eq!(got, want, "{version} {content}: {all:?}");
    }
}
