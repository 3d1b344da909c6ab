//! pve-sim's storage content types and snippets: `pvesm set --content`,
//! `pvesm path` of a snippet, and `cicustom` on `qm create`/`qm set`.

use pve_sim::state::Root;

fn host(extra: &[&str]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut args = vec![root.0.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(pve_sim::init::init_cli(&args), 0);
    (dir, root)
}

fn run(root: &Root, prog: &str, line: &str) -> (i32, String, String) {
    let args: Vec<String> = line.split(' ').map(str::to_string).collect();
    pve_sim::run(root.clone(), None, prog, &args)
}

fn content(root: &Root, id: &str) -> Vec<String> {
    root.read()
        .expect("state")
        .storage(id)
        .map(|s| s.content.clone())
        .unwrap_or_default()
}

#[test]
fn local_has_no_snippets_until_pvesm_set_adds_them() {
    let (_d, root) = host(&[]);
    assert_eq!(content(&root, "local"), ["iso", "vztmpl", "backup"]);
    let (_, out, _) = run(&root, "pvesm", "status --content snippets");
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
    let (code, _, err) = run(
        &root,
        "pvesm",
        "set local --content iso,vztmpl,backup,snippets",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        content(&root, "local"),
        ["iso", "vztmpl", "backup", "snippets"]
    );
    let (_, out, _) = run(&root, "pvesh", "get /storage --output-format json");
    assert!(
        out.contains("\"content\":\"iso,vztmpl,backup,snippets\""),
        "{out}"
    );
    let (_, out, _) = run(&root, "pvesm", "status --content snippets");
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["local"], "{out}");
}

#[test]
fn pvesm_set_checks_content_types_per_storage_type() {
    let (_d, root) = host(&[]);
    let (code, _, err) = run(&root, "pvesm", "set local --content iso,snipets");
    assert_eq!(code, 255);
    assert!(err.contains("invalid content type 'snipets'"), "{err}");
    assert_eq!(content(&root, "local"), ["iso", "vztmpl", "backup"]);
    // Nothing left that an LVM-thin pool can hold: refused.
    let (code, _, err) = run(&root, "pvesm", "set local-lvm --content snippets");
    assert_eq!(code, 255);
    assert!(
        err.contains("does not support content type 'none'"),
        "{err}"
    );
    assert_eq!(content(&root, "local-lvm"), ["images", "rootdir"]);
    // An LVM-thin pool holds no files: the type is dropped with a warning.
    let (code, _, err) = run(&root, "pvesm", "set local-lvm --content images,snippets");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("storage does not support content type 'snippets'"),
        "{err}"
    );
    assert_eq!(content(&root, "local-lvm"), ["images"]);
    let (code, _, err) = run(&root, "pvesm", "set local --content none,iso");
    assert_eq!(code, 255);
    assert!(err.contains("unable to combine 'none'"), "{err}");
    let (code, _, err) = run(&root, "pvesm", "set nope --content iso");
    assert_eq!(code, 255);
    assert!(err.contains("storage 'nope' does not exist"), "{err}");
}

#[test]
fn the_drive_is_generated_from_the_snippet_file_at_start() {
    let (_d, root) = host(&[]);
    let vol = "local:snippets/pvefleet-0123456789abcdef.yaml";
    // `pvesm path` computes the path; the file need not exist.
    let (code, path, err) = run(&root, "pvesm", &format!("path {vol}"));
    assert_eq!(code, 0, "{err}");
    let path = path.trim().to_string();
    assert!(
        path.ends_with("/storage/local/snippets/pvefleet-0123456789abcdef.yaml"),
        "{path}"
    );
    // `qm create` checks the format only; the start reads the file.
    let create = format!("create 300 --ide2 local-lvm:cloudinit --cicustom vendor={vol}");
    let (code, _, err) = run(&root, "qm", &create);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&root, "qm", "start 300");
    assert_eq!(code, 255);
    assert!(err.contains(&format!("can't find file '{vol}'")), "{err}");
    std::fs::create_dir_all(std::path::Path::new(&path).parent().expect("dir")).expect("mkdir");
    std::fs::write(&path, "#cloud-config\n").expect("write");
    let (code, out, err) = run(&root, "qm", "start 300");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("generating cloud-init ISO"), "{out}");
    let (_, out, _) = run(&root, "qm", "config 300");
    assert!(out.contains(&format!("cicustom: vendor={vol}")), "{out}");
    // A volume outside snippets/ is refused when the drive is made.
    let (code, _, err) = run(&root, "qm", "set 300 --cicustom user=local:iso/x.yaml");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&root, "qm", "cloudinit update 300");
    assert_eq!(code, 255);
    assert!(
        err.contains("local:iso/x.yaml is not in the snippets directory"),
        "{err}"
    );
    let (code, _, err) = run(
        &root,
        "qm",
        "set 300 --cicustom user=nope:snippets/x.yaml --delete ide2",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&root, "qm", "set 300 --ide2 local-lvm:cloudinit");
    assert_eq!(code, 255);
    assert!(err.contains("storage 'nope' does not exist"), "{err}");
    // Listed once `snippets` is enabled.
    run(
        &root,
        "pvesm",
        "set local --content iso,vztmpl,backup,snippets",
    );
    let (_, out, _) = run(
        &root,
        "pvesh",
        "get /nodes/pve/storage/local/content --output-format json",
    );
    assert!(out.contains(vol), "{out}");
}

#[test]
fn cloudinit_update_regenerates_from_existing_snippets_from_pve_7_3() {
    let (_d, root) = host(&["--storage", "local:dir:iso+vztmpl+backup+snippets"]);
    let vol = "local:snippets/a.yaml";
    let (_, path, _) = run(&root, "pvesm", &format!("path {vol}"));
    let path = path.trim().to_string();
    std::fs::create_dir_all(std::path::Path::new(&path).parent().expect("dir")).expect("mkdir");
    std::fs::write(&path, "#cloud-config\n").expect("write");
    let (code, _, err) = run(&root, "qm", &format!("create 300 --cicustom vendor={vol}"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&root, "qm", "cloudinit update 300");
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(&path).expect("rm");
    let (code, _, err) = run(&root, "qm", "cloudinit update 300");
    assert_eq!(code, 255);
    assert!(
        err.contains("can't find file 'local:snippets/a.yaml'"),
        "{err}"
    );
    let (code, _, err) = run(&root, "qm", "cloudinit update 999");
    assert_eq!(code, 255, "{err}");
    let (_d, old) = host(&["--version", "7.2"]);
    let (code, _, err) = run(&old, "qm", "cloudinit update 300");
    assert_eq!(code, 255);
    assert!(err.contains("unknown command 'qm cloudinit'"), "{err}");
}
