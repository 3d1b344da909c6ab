//! Every remote command is bounded by the command timeout, the key upload
//! and the cleanup included: on a real `/bin/sh` whose `cat` hangs, the
//! upload ends at the timeout and its VM fails without any step sent.

use pvefleet_exec::event::{Event, Reporter, VmOutcome};
use pvefleet_exec::runner::{apply, ApplyOptions, Transports};
use pvefleet_exec::transport::{LocalTransport, Transport};
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::{Action, Check, InputSource, Plan, Step, Upload, VmPlan};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A folder whose `cat` hangs, first on PATH.
fn hanging_cat() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let cat = dir.path().join("cat");
    std::fs::write(&cat, "#!/bin/sh\nexec sleep 60\n").expect("write");
    std::fs::set_permissions(&cat, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

#[tokio::test]
async fn a_hung_key_upload_ends_at_the_command_timeout_and_fails_its_vm() {
    let bin = hanging_cat();
    let mut env = BTreeMap::new();
    let path = std::env::var("PATH").unwrap_or_default();
    env.insert("PATH".into(), format!("{}:{path}", bin.path().display()));
    let mut local = LocalTransport::new(env, 4);
    local.command_timeout = 1;
    let local: Arc<dyn Transport> = Arc::new(local);
    let vmid = VmId::new(100).expect("id");
    let mut o = QmOptions::new();
    o.push("name", "web");
    let mut vp = VmPlan::new("web", "pve");
    vp.vmid = Some(vmid);
    vp.action = Action::Create;
    vp.uploads = vec![0];
    vp.steps = vec![
        Step::checked(Command::Qm(Qm::Create { vmid, options: o }), Check::Reserve)
            .with_input("sshkeys", InputSource::Upload(0)),
    ];
    let plan = Plan {
        vms: vec![vp],
        uploads: vec![Upload {
            node: "pve".into(),
            file_name: "sshkeys-0.pub".into(),
            content: "ssh-ed25519 AAAA test\n".into(),
            install_to: None,
        }],
        preludes: Vec::new(),
        leftovers: Vec::new(),
        downloads: Vec::new(),
    };
    let mut transports = Transports::new();
    transports.insert("pve".into(), local.clone());
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = sent.clone();
    let report: Arc<dyn Reporter> = Arc::new(move |e: Event| {
        if let (Event::Command { line, .. }, Ok(mut v)) = (e, sink.lock()) {
            v.push(line);
        }
    });
    let opts = ApplyOptions {
        wait: false,
        wait_timeout: Duration::from_secs(1),
        boot_window: Duration::from_secs(1),
        keep_failed: false,
        parallel: 2,
        parallel_storage: 2,
        cancel: Default::default(),
    };
    let start = Instant::now();
    let results = apply(plan, &transports, BTreeSet::new(), opts, report).await;
    let took = start.elapsed();
    assert_eq!(results[0].result, VmOutcome::Failed);
    assert_eq!(
        results[0].error.as_deref(),
        Some("the key file could not be written to the node")
    );
    assert!(
        sent.lock().map(|v| v.is_empty()).unwrap_or(false),
        "no step sent"
    );
    // `timeout -k 5 1` ends the hung cat after 1 s (KILL 5 s later at the
    // latest), not after its 60 s.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[tokio::test]
async fn an_upload_sweeps_folders_that_killed_runs_left_behind() {
    // Two hours and a bit old: swept. Fresh: another run's, kept.
    let stale = "/tmp/pvefleet-zzsweepstale-testnode";
    let fresh = "/tmp/pvefleet-zzsweepfresh-testnode";
    for d in [stale, fresh] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let status = std::process::Command::new("touch")
        .args(["-d", "3 hours ago", stale])
        .status()
        .expect("touch");
    assert!(status.success());
    let t = LocalTransport::new(BTreeMap::new(), 1);
    let dir = format!("/tmp/pvefleet-zzsweepmine{}-testnode", std::process::id());
    let path = format!("{dir}/sshkeys-0.pub");
    t.upload(&dir, &path, "ssh-ed25519 AAAA k\n")
        .await
        .expect("upload");
    assert!(!std::path::Path::new(stale).exists(), "stale folder swept");
    assert!(std::path::Path::new(fresh).exists(), "fresh folder kept");
    assert_eq!(
        std::fs::read_to_string(&path).expect("uploaded"),
        "ssh-ed25519 AAAA k\n"
    );
    t.remove_dir(&dir).await;
    let _ = std::fs::remove_dir_all(fresh);
    assert!(!std::path::Path::new(&dir).exists());
}
