//! pve-sim's `download-url` task and `qm guest exec`/`exec-status`, as a
//! real host answers them.

use pve_sim::state::Root;
use sha2::Digest;

fn host(extra: &[&str]) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Root(dir.path().join("root"));
    let mut args = vec![
        root.0.display().to_string(),
        "--node".into(),
        "pve".into(),
        "--agent-ping-ms".into(),
        "10".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    assert_eq!(pve_sim::init::init_cli(&args), 0);
    (dir, root)
}

fn run(root: &Root, program: &str, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    pve_sim::run(root.clone(), Some("pve".into()), program, &args)
}

fn download(root: &Root, url: &str, file: &str, content: &str, sha: &str) -> (i32, String, String) {
    run(
        root,
        "pvesh",
        &[
            "create",
            "/nodes/pve/storage/local/download-url",
            "--url",
            url,
            "--filename",
            file,
            "--content",
            content,
            "--checksum",
            sha,
            "--checksum-algorithm",
            "sha256",
        ],
    )
}

fn listed(root: &Root, volid: &str) -> bool {
    let (_, out, _) = run(
        root,
        "pvesh",
        &[
            "get",
            "/nodes/pve/storage/local/content",
            "--output-format",
            "json",
        ],
    );
    out.contains(&format!("\"volid\":\"{volid}\""))
}

#[test]
fn a_download_is_a_task_that_checks_the_content_it_fetched() {
    let (_d, root) = host(&[]);
    let bytes = b"QFI\xfb a tiny cloud image";
    std::fs::write(root.0.join("img.bin"), bytes).expect("content");
    std::fs::write(
        root.0.join("urls.json"),
        r#"{"https://h.test/noble.img": {"file": "img.bin"}}"#,
    )
    .expect("urls");
    let good: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bad = "0".repeat(64);
    // A mismatch: the task fails inside, pvesh exits 0 with the UPID, no file.
    let (code, out, err) = download(&root, "https://h.test/noble.img", "noble.img", "iso", &bad);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim_end().ends_with("root@pam:"), "{out}");
    assert!(
        err.contains(&format!(
            "checksum mismatch: got '{good}' != expect '{bad}'"
        )),
        "{err}"
    );
    assert!(!listed(&root, "local:iso/noble.img"));
    // The right checksum: the file is listed with its size.
    let (code, out, err) = download(&root, "https://h.test/noble.img", "noble.img", "iso", &good);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(listed(&root, "local:iso/noble.img"));
    let tasks = std::fs::read_dir(root.0.join("tasks/pve"))
        .expect("task logs")
        .count();
    assert_eq!(tasks, 2);
    // Unreachable: any URL the host cannot fetch.
    let (code, _, err) = download(&root, "https://h.test/gone.img", "gone.img", "iso", &good);
    assert_eq!(code, 0);
    assert!(err.contains("download failed: command 'wget"), "{err}");
    assert!(!listed(&root, "local:iso/gone.img"));
}

#[test]
fn wrong_content_types_and_extensions_are_refused_before_the_task() {
    let (_d, root) = host(&["--version", "8.3"]);
    let sha = "a".repeat(64);
    let (code, _, err) = download(&root, "https://h.test/x.qcow2", "x.qcow2", "iso", &sha);
    assert_ne!(code, 0);
    assert!(err.contains("filename: wrong file extension"), "{err}");
    // `import` exists on 8.3, but takes only .ova there.
    let (code, _, err) = download(&root, "https://h.test/x.qcow2", "x.qcow2", "import", &sha);
    assert_ne!(code, 0);
    assert!(
        err.contains("invalid filename or wrong extension")
            || err.contains("not configured for content-type"),
        "{err}"
    );
    let (code, _, err) = download(&root, "https://h.test/x.img", "x.img", "images", &sha);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not have a value in the enumeration 'iso, vztmpl, import'"),
        "{err}"
    );
    let (code, _, err) = run(
        &root,
        "pvesh",
        &[
            "create",
            "/nodes/pve/storage/local-lvm/download-url",
            "--url",
            "https://h.test/x.img",
            "--filename",
            "x.img",
            "--content",
            "iso",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("not a file based storage") || err.contains("not configured for content-type"),
        "{err}"
    );
}

#[test]
fn guest_exec_runs_cloud_init_status_as_scripted() {
    let (_d, root) = host(&[]);
    let (code, _, err) = run(
        &root,
        "qm",
        &["create", "301", "--name", "app", "--agent", "enabled=1"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&root, "qm", &["start", "301"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        root.0.join("guests.json"),
        r#"{"app": {"cloud_init": "error", "message": "('scripts_user', RuntimeError('boom'))"}}"#,
    )
    .expect("guests");
    let (code, out, err) = run(
        &root,
        "qm",
        &[
            "guest",
            "exec",
            "301",
            "--synchronous",
            "0",
            "--",
            "cloud-init",
            "status",
            "--wait",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let pid: serde_json::Value = serde_json::from_str(&out).expect("pid json");
    let pid = pid["pid"].as_u64().expect("pid");
    let (code, out, err) = run(
        &root,
        "qm",
        &["guest", "exec-status", "301", &pid.to_string()],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("status json");
    assert_eq!(v["exited"], true);
    assert_eq!(v["exitcode"], 1);
    let inner: serde_json::Value =
        serde_json::from_str(v["out-data"].as_str().expect("out-data")).expect("cloud-init json");
    assert_eq!(inner["status"], "error");
    assert!(inner["errors"][0]
        .as_str()
        .is_some_and(|e| e.contains("scripts_user")));
    // `--timeout` needs a synchronous exec; an unknown pid is an agent error.
    let (code, _, err) = run(
        &root,
        "qm",
        &[
            "guest",
            "exec",
            "301",
            "--synchronous",
            "0",
            "--timeout",
            "5",
            "--",
            "true",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("synchronous: needs to be set for 'timeout'"),
        "{err}"
    );
    let (code, _, _) = run(&root, "qm", &["guest", "exec-status", "301", "99999"]);
    assert_ne!(code, 0);
    // An image without the agent: every agent command fails as on a host.
    std::fs::write(root.0.join("guests.json"), r#"{"app": {"agent": false}}"#).expect("guests");
    let (code, _, err) = run(
        &root,
        "qm",
        &["guest", "exec", "301", "--", "cloud-init", "status"],
    );
    assert_ne!(code, 0);
    assert_eq!(err.trim(), "QEMU guest agent is not running");
}
