//! The runner's cloud-init snippets: an upload with a destination is
//! written once into the run's folder, copied into place with `install`,
//! and a failed copy fails the VMs that need it before any of their steps.

use pvefleet_exec::event::{Event, Reporter, VmOutcome, VmResult};
use pvefleet_exec::runner::{apply, ApplyOptions, Transports};
use pvefleet_exec::transport::fake::{FakeReply, FakeTransport};
use pvefleet_exec::transport::Transport;
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::{Action, Check, Plan, Step, Upload, VmPlan};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const NODE: &str = "pve";
const DEST: &str = "/var/lib/vz/snippets/pvefleet-0123456789abcdef.yaml";

fn opts() -> ApplyOptions {
    ApplyOptions {
        wait: false,
        wait_timeout: Duration::from_secs(1),
        boot_window: Duration::from_secs(1),
        keep_failed: false,
        parallel: 4,
        parallel_storage: 4,
        cancel: Default::default(),
    }
}

/// A VM whose create needs upload 0.
fn vm(name: &str, vmid: u32) -> VmPlan {
    let id = VmId::new(i64::from(vmid)).unwrap_or_else(|e| panic!("{e}"));
    let mut o = QmOptions::new();
    o.push("name", name);
    o.push(
        "cicustom",
        "vendor=local:snippets/pvefleet-0123456789abcdef.yaml",
    );
    let mut vp = VmPlan::new(name, NODE);
    vp.vmid = Some(id);
    vp.action = Action::Create;
    vp.steps = vec![Step::checked(
        Command::Qm(Qm::Create {
            vmid: id,
            options: o,
        }),
        Check::Reserve,
    )];
    vp.uploads = vec![0];
    vp
}

fn plan() -> Plan {
    Plan {
        vms: vec![vm("a", 100), vm("b", 101)],
        uploads: vec![Upload {
            node: NODE.into(),
            file_name: "pvefleet-0123456789abcdef.yaml".into(),
            content: "#cloud-config\npackages: [htop]\n".into(),
            install_to: Some(DEST.into()),
        }],
        preludes: Vec::new(),
        leftovers: Vec::new(),
        downloads: Vec::new(),
    }
}

async fn run(fake: &Arc<FakeTransport>) -> Vec<VmResult> {
    let mut transports = Transports::new();
    transports.insert(NODE.into(), fake.clone() as Arc<dyn Transport>);
    let report: Arc<dyn Reporter> = Arc::new(|_: Event| {});
    apply(plan(), &transports, BTreeSet::new(), opts(), report).await
}

#[tokio::test]
async fn a_snippet_is_uploaded_and_installed_once_before_the_creates() {
    let fake = Arc::new(FakeTransport::new());
    let results = run(&fake).await;
    assert!(
        results.iter().all(|r| r.result == VmOutcome::Ok),
        "{results:?}"
    );
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let (src, content) = &uploads[0];
    assert_eq!(content, "#cloud-config\npackages: [htop]\n");
    let sent = fake.sent_lines();
    let install = format!("install -D -m 0600 -- {src} {DEST}");
    assert_eq!(
        sent.iter().filter(|l| **l == install).count(),
        1,
        "{sent:?}"
    );
    let first_create = sent.iter().position(|l| l.starts_with("qm create"));
    let installed = sent.iter().position(|l| *l == install);
    assert!(installed < first_create, "{sent:?}");
}

#[tokio::test]
async fn a_failed_install_fails_the_vms_and_sends_none_of_their_steps() {
    let fake = Arc::new(FakeTransport::new());
    fake.always(
        &["install"],
        FakeReply::Fail(1, "install: Read-only file system".into()),
    );
    let results = run(&fake).await;
    for r in &results {
        assert_eq!(r.result, VmOutcome::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some("the cloud-init snippet could not be written to the node")
        );
    }
    let sent = fake.sent_lines();
    assert!(!sent.iter().any(|l| l.starts_with("qm ")), "{sent:?}");
    assert_eq!(sent.iter().filter(|l| l.starts_with("install ")).count(), 1);
}
