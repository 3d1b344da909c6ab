//! Output that is not an error: lvm2's over-provisioning warnings on a
//! thin pool (the `--thin-overprovisioned` setting, CONTRACT §2), tasks
//! that end with warnings, and tasks that fail inside their worker
//! (CONTRACT §1.3, §1.4). Where each line lands follows the execution model:
//! a task's worker writes to qm's stdout, a direct command keeps stderr.

use pve_sim::state::Root;

fn host(extra: &[&str]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut args = vec![
        root.0.display().to_string(),
        "--image".into(),
        "local:iso/x.img:1G".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(pve_sim::init::init_cli(&args), 0);
    (dir, root)
}

fn qm(root: &Root, line: &str) -> (i32, String, String) {
    let args: Vec<String> = line.split(' ').map(str::to_string).collect();
    pve_sim::run(root.clone(), None, "qm", &args)
}

fn faults(root: &Root, json: &str) {
    std::fs::write(root.join("faults.json"), json).expect("faults.json");
}

/// The three lines lvm2 prints on an over-provisioned pool, for a sum.
fn lvm_warnings(sum: &str) -> String {
    [
        "  WARNING: Sum of all thin volume sizes (",
        sum,
        ") exceeds the size of thin pool pve/data and the size of whole volume group (<100,00 GiB).\n",
        "  WARNING: You have not turned on protection against thin pools running out of space.\n",
        "  WARNING: Set activation/thin_pool_autoextend_threshold below 100 to trigger automatic extension of thin pools before they get full.\n",
    ]
    .concat()
}

#[test]
fn an_overprovisioned_pool_warns_on_stdout_inside_a_create_task() {
    let (_d, root) = host(&["--thin-overprovisioned"]);
    let (code, out, err) = qm(&root, "create 100 --scsi0 local-lvm:1");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        [
            lvm_warnings("181,00 GiB").as_str(),
            "  Logical volume \"vm-100-disk-0\" created.\n",
            "scsi0: successfully created disk 'local-lvm:vm-100-disk-0,size=1G'\n",
        ]
        .concat()
    );
    // A full clone allocates inside its task as well.
    let (code, out, err) = qm(&root, "clone 100 101");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains(&lvm_warnings("182,00 GiB")), "{out}");
    assert!(
        out.contains("  Logical volume \"vm-101-disk-0\" created.\n"),
        "{out}"
    );
}

#[test]
fn a_direct_command_passes_the_warnings_to_stderr_and_exits_0() {
    let (_d, root) = host(&["--thin-overprovisioned", "150"]);
    assert_eq!(qm(&root, "create 100").0, 0);
    let (code, out, err) = qm(&root, "set 100 --scsi0 local-lvm:2");
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, lvm_warnings("152,00 GiB"));
    assert!(
        out.starts_with(
            "update VM 100: -scsi0 local-lvm:2\n  Logical volume \"vm-100-disk-0\" created.\n"
        ),
        "{out}"
    );
    // qm disk import is direct too.
    let path = root.0.join("nodes/pve/storage/local/template/iso/x.img");
    let (code, out, err) = qm(
        &root,
        &["importdisk 100 ", &path.display().to_string(), " local-lvm"].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, lvm_warnings("153,00 GiB"));
    assert!(
        out.ends_with("unused0: successfully imported disk 'local-lvm:vm-100-disk-1'\n"),
        "{out}"
    );
}

#[test]
fn resizing_warns_inside_the_task_from_pve_8_and_on_stderr_before() {
    let (_d, root) = host(&["--thin-overprovisioned"]);
    assert_eq!(qm(&root, "create 100 --scsi0 local-lvm:1").0, 0);
    let (code, out, err) = qm(&root, "disk resize 100 scsi0 +1G");
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        [
            lvm_warnings("182,00 GiB").as_str(),
            "  Size of logical volume pve/vm-100-disk-0 changed from 1,00 GiB (256 extents) to 2,00 GiB (512 extents).\n",
            "  Logical volume pve/vm-100-disk-0 successfully resized.\n",
        ]
        .concat()
    );
    // PVE 7: qm resize is a direct command.
    let (_d7, root7) = host(&["--thin-overprovisioned", "--version", "7.1"]);
    assert_eq!(qm(&root7, "create 100 --scsi0 local-lvm:1").0, 0);
    let (code, out, err) = qm(&root7, "resize 100 scsi0 +1G");
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, lvm_warnings("182,00 GiB"));
    assert!(
        out.ends_with("  Logical volume pve/vm-100-disk-0 successfully resized.\n"),
        "{out}"
    );
}

#[test]
fn a_pool_with_room_and_a_dir_storage_print_no_warnings() {
    let (_d, root) = host(&["--storage", "vmdir:dir:images"]);
    let (code, out, err) = qm(&root, "create 100 --scsi0 local-lvm:1 --scsi1 vmdir:1");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(!out.contains("WARNING"), "{out}");
    assert_eq!(out.matches("Logical volume").count(), 1, "{out}");
    let (code, out, _) = qm(&root, "disk resize 100 scsi1 2G");
    assert_eq!((code, out.as_str()), (0, "Image resized.\n"));
}

#[test]
fn a_task_can_end_with_warnings_and_still_exit_0() {
    let (_d, root) = host(&[]);
    faults(
        &root,
        r#"[{"match": "qm create", "action": "task-warnings", "message": "guest agent hook failed", "count": 2},
            {"match": "qm set", "action": "task-warnings", "message": "ignoring obsolete key"}]"#,
    );
    let (code, out, err) = qm(&root, "create 100");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "WARN: guest agent hook failed\nWARN: guest agent hook failed\n"
    );
    assert_eq!(err, "Task finished with 2 warning(s)!\n");
    // A direct command has no task to count them: the warning is stderr.
    let (code, out, err) = qm(&root, "set 100 --cores 2");
    assert_eq!((code, out.as_str()), (0, "update VM 100: -cores 2\n"));
    assert_eq!(err, "WARN: ignoring obsolete key\n");
    // The count adds to warnings the task had anyway (a failed autostart).
    let (code, out, err) = qm(&root, "create 101 --net0 virtio,bridge=vmbr9 --start 1");
    assert_eq!(code, 0);
    assert!(out.contains("WARN: bridge 'vmbr9' does not exist"), "{out}");
    assert_eq!(err, "Task finished with 3 warning(s)!\n");
}

#[test]
fn resize_and_template_fail_inside_the_task_with_exit_0() {
    let (_d, root) = host(&[]);
    assert_eq!(qm(&root, "create 100 --scsi0 local-lvm:1").0, 0);
    faults(
        &root,
        r#"[{"match": "qm disk resize", "action": "task-error", "message": "lvextend 'pve/vm-100-disk-0' error:   Insufficient free space"},
            {"match": "qm template", "action": "task-error", "message": "unable to create base volume"},
            {"match": "qm start", "action": "task-error", "message": "start failed: QEMU exited with code 1"},
            {"match": "qm create", "action": "task-error", "message": "unable to create VM 101 - out of space"}]"#,
    );
    let (code, out, err) = qm(&root, "disk resize 100 scsi0 +1G");
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(
        err,
        "lvextend 'pve/vm-100-disk-0' error:   Insufficient free space\n"
    );
    assert!(qm(&root, "config 100").1.contains("size=1G"), "unchanged");
    let (code, _, err) = qm(&root, "template 100");
    assert_eq!((code, err.as_str()), (0, "unable to create base volume\n"));
    assert!(
        !qm(&root, "config 100").1.contains("template"),
        "not a template"
    );
    // Tasks with $upid_exit fail with 255.
    let (code, _, err) = qm(&root, "start 100");
    assert_eq!(
        (code, err.as_str()),
        (255, "start failed: QEMU exited with code 1\n")
    );
    assert_eq!(qm(&root, "status 100").1, "status: stopped\n");
    let (code, _, err) = qm(&root, "create 101");
    assert_eq!(
        (code, err.as_str()),
        (255, "unable to create VM 101 - out of space\n")
    );
    assert_ne!(qm(&root, "config 101").0, 0, "nothing was created");
    // The checks before the worker still speak first.
    let (code, _, err) = qm(&root, "disk resize 105 scsi0 +1G");
    assert_ne!(code, 0);
    assert!(
        err.contains("Configuration file 'nodes/pve/qemu-server/105.conf' does not exist"),
        "{err}"
    );
}

#[test]
fn resize_on_pve_7_is_direct_so_its_failure_is_an_exit_code() {
    let (_d, root) = host(&["--version", "7.1"]);
    assert_eq!(qm(&root, "create 100 --scsi0 local-lvm:1").0, 0);
    faults(
        &root,
        r#"[{"match": "qm resize", "action": "task-error", "message": "lvextend error"}]"#,
    );
    let (code, _, err) = qm(&root, "resize 100 scsi0 +1G");
    assert_ne!(code, 0);
    assert_eq!(err, "lvextend error\n");
}
