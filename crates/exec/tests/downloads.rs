//! Images by URL in the runner: a planned download runs once, on its node,
//! for every VM that imports it (those of other nodes too, on a shared
//! storage), and a task that failed with exit 0 fails the VMs before any
//! of their steps is sent (CONTRACT §12.1).

use pvefleet_exec::event::{Reporter, VmOutcome, VmResult};
use pvefleet_exec::runner::{apply, ApplyOptions, Transports};
use pvefleet_exec::transport::fake::{FakeReply, FakeTransport};
use pvefleet_exec::transport::Transport;
use pvefleet_model::{Command, DownloadContent, DownloadUrl, Qm, QmOptions, VmId};
use pvefleet_plan::types::Download;
use pvefleet_plan::{Action, Check, Plan, Step, VmPlan};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const LISTED: &str =
    r#"[{"content":"iso","format":"iso","size":629145600,"volid":"nfs:iso/noble.img"}]"#;

struct Quiet;
impl Reporter for Quiet {
    fn report(&self, _: pvefleet_exec::event::Event) {}
}

fn id(n: u32) -> VmId {
    VmId::new(i64::from(n)).unwrap_or_else(|e| panic!("{e}"))
}

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

fn vm(name: &str, node: &str, vmid: u32) -> VmPlan {
    let mut vp = VmPlan::new(name, node);
    vp.vmid = Some(id(vmid));
    vp.action = Action::Create;
    let mut o = QmOptions::new();
    o.push("name", name);
    vp.steps = vec![Step::checked(
        Command::Qm(Qm::Create {
            vmid: id(vmid),
            options: o,
        }),
        Check::Reserve,
    )];
    vp.download = Some(0);
    vp
}

fn plan() -> Plan {
    let command = DownloadUrl {
        node: "n1".into(),
        storage: "nfs".into(),
        url: "https://h.test/noble.img".into(),
        filename: "noble.img".into(),
        content: DownloadContent::Iso,
        sha256: "a".repeat(64),
    };
    Plan {
        vms: vec![vm("a", "n1", 201), vm("b", "n2", 202), vm("c", "n2", 203)],
        downloads: vec![Download {
            node: "n1".into(),
            volid: command.volid(),
            shared: true,
            command,
        }],
        ..Plan::default()
    }
}

async fn run(n1: &Arc<FakeTransport>, n2: &Arc<FakeTransport>) -> Vec<VmResult> {
    let mut t = Transports::new();
    t.insert("n1".into(), n1.clone() as Arc<dyn Transport>);
    t.insert("n2".into(), n2.clone() as Arc<dyn Transport>);
    apply(plan(), &t, BTreeSet::new(), opts(), Arc::new(Quiet)).await
}

fn downloads(fake: &FakeTransport) -> usize {
    fake.sent()
        .iter()
        .filter(|a| a.get(2).is_some_and(|p| p.ends_with("/download-url")))
        .count()
}

#[tokio::test]
async fn a_shared_download_runs_once_on_its_node_for_every_nodes_vms() {
    let (n1, n2) = (
        Arc::new(FakeTransport::new()),
        Arc::new(FakeTransport::new()),
    );
    n1.always(
        &["pvesh", "get", "/nodes/n1/storage/nfs/content"],
        FakeReply::Ok(LISTED.into()),
    );
    let results = run(&n1, &n2).await;
    for r in &results {
        assert_eq!(r.result, VmOutcome::Ok, "{r:?}");
    }
    assert_eq!(downloads(&n1), 1, "{:?}", n1.sent_lines());
    assert_eq!(downloads(&n2), 0, "{:?}", n2.sent_lines());
    assert!(n2
        .sent_lines()
        .iter()
        .any(|l| l.starts_with("qm create 202")));
}

#[tokio::test]
async fn a_download_task_that_failed_with_exit_0_fails_the_vms_before_their_steps() {
    let (n1, n2) = (
        Arc::new(FakeTransport::new()),
        Arc::new(FakeTransport::new()),
    );
    n1.always(
        &["pvesh", "create"],
        FakeReply::OkWithStderr(
            "downloading https://h.test/noble.img to /mnt/pve/nfs/template/iso/noble.img\nUPID:n1:0000A1B2:00C0FFEE:6800AAAA:download:noble.img:root@pam:\n".into(),
            "checksum mismatch: got 'bbbb' != expect 'aaaa'\n".into(),
        ),
    );
    n1.always(
        &["pvesh", "get", "/nodes/n1/storage/nfs/content"],
        FakeReply::Ok("[]".into()),
    );
    let results = run(&n1, &n2).await;
    for r in &results {
        assert_eq!(r.result, VmOutcome::Failed, "{r:?}");
        let e = r.error.as_deref().unwrap_or_default();
        assert!(
            e.contains("checksum mismatch: got 'bbbb'") && e.contains("nfs:iso/noble.img"),
            "{e}"
        );
    }
    assert_eq!(downloads(&n1), 1);
    let creates = n1
        .sent_lines()
        .into_iter()
        .chain(n2.sent_lines())
        .filter(|l| l.starts_with("qm "))
        .count();
    assert_eq!(creates, 0);
}
