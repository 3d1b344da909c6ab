//! Interruption: once the run's cancellation fires, no new step is sent,
//! the round trip under way ends, and what this run created but did not
//! finish is rolled back.

use pvefleet_exec::event::{Event, Reporter, VmOutcome};
use pvefleet_exec::runner::{apply, ApplyOptions, Transports};
use pvefleet_exec::transport::fake::{FakeReply, FakeTransport};
use pvefleet_exec::transport::{Judge, StepOutput, Transport, TransportError};
use pvefleet_exec::CancellationToken;
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::{Action, Check, InputSource, Plan, Step, VmPlan};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A fake transport that fires `cancel` when it is sent its first line.
struct CancelOnFirst {
    fake: FakeTransport,
    cancel: CancellationToken,
}

#[async_trait::async_trait]
impl Transport for CancelOnFirst {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn round_trips(&self) -> u64 {
        self.fake.round_trips()
    }
    async fn connect(&self) -> Result<(), TransportError> {
        Ok(())
    }
    async fn run_batch(
        &self,
        argvs: &[Vec<String>],
        stop: bool,
    ) -> Result<Vec<StepOutput>, TransportError> {
        self.fake.run_batch(argvs, stop).await
    }
    async fn run_checked(
        &self,
        argvs: &[Vec<String>],
        judges: &[Judge],
    ) -> Result<Vec<StepOutput>, TransportError> {
        self.cancel.cancel();
        self.fake.run_checked(argvs, judges).await
    }
    async fn run_concurrent(
        &self,
        argvs: &[Vec<String>],
    ) -> Result<Vec<StepOutput>, TransportError> {
        self.fake.run_concurrent(argvs).await
    }
    async fn upload(&self, d: &str, p: &str, c: &str) -> Result<(), TransportError> {
        self.fake.upload(d, p, c).await
    }
    async fn remove_dir(&self, d: &str) {
        self.fake.remove_dir(d).await
    }
    async fn close(&self) {}
}

fn opts(cancel: CancellationToken) -> ApplyOptions {
    ApplyOptions {
        wait: false,
        wait_timeout: Duration::from_secs(1),
        boot_window: Duration::from_secs(1),
        keep_failed: false,
        parallel: 1,
        parallel_storage: 1,
        cancel,
    }
}

fn id(n: u32) -> VmId {
    VmId::new(i64::from(n)).expect("id")
}

/// The classic import: create + importdisk in one round trip, attach and
/// start in a second.
fn classic(name: &str, vmid: u32) -> VmPlan {
    let mut o = QmOptions::new();
    o.push("name", name);
    let mut vp = VmPlan::new(name, "pve");
    vp.vmid = Some(id(vmid));
    vp.action = Action::Create;
    vp.steps = vec![
        Step::checked(
            Command::Qm(Qm::Create {
                vmid: id(vmid),
                options: o,
            }),
            Check::Reserve,
        ),
        Step::checked(
            Command::Qm(Qm::ImportDisk {
                vmid: id(vmid),
                source: "/var/lib/vz/template/iso/x.img".into(),
                storage: "local-lvm".into(),
                legacy: true,
            }),
            Check::Import,
        ),
        Step::exit(Command::Qm(Qm::Set {
            vmid: id(vmid),
            options: QmOptions::new(),
            delete: Vec::new(),
        }))
        .with_input("scsi0", InputSource::ImportedVolume),
        Step::exit(Command::Qm(Qm::Start { vmid: id(vmid) })),
    ];
    vp
}

fn quiet() -> Arc<dyn Reporter> {
    Arc::new(|_: Event| {})
}

#[tokio::test]
async fn a_cancelled_run_sends_nothing_and_says_so() {
    let fake = Arc::new(FakeTransport::new());
    let mut t = Transports::new();
    t.insert("pve".into(), fake.clone() as Arc<dyn Transport>);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let plan = Plan {
        vms: vec![classic("a", 100), classic("b", 101)],
        ..Plan::default()
    };
    let results = apply(plan, &t, BTreeSet::new(), opts(cancel), quiet()).await;
    assert!(fake.sent().is_empty(), "{:?}", fake.sent_lines());
    for r in &results {
        assert_eq!(r.result, VmOutcome::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some("interrupted before it started; nothing was sent")
        );
    }
}

#[tokio::test]
async fn an_interrupted_create_ends_its_round_trip_then_is_rolled_back() {
    let cancel = CancellationToken::new();
    let fake = FakeTransport::new();
    fake.always(
        &["qm", "importdisk"],
        FakeReply::Ok("unused0: successfully imported disk 'local-lvm:vm-100-disk-0'\n".into()),
    );
    fake.always(
        &["qm", "config"],
        FakeReply::Ok("name: a\nunused0: local-lvm:vm-100-disk-0\n".into()),
    );
    let probe = Arc::new(CancelOnFirst {
        fake,
        cancel: cancel.clone(),
    });
    let mut t = Transports::new();
    t.insert("pve".into(), probe.clone() as Arc<dyn Transport>);
    let plan = Plan {
        vms: vec![classic("a", 100)],
        ..Plan::default()
    };
    let results = apply(plan, &t, BTreeSet::new(), opts(cancel), quiet()).await;
    let sent = probe.fake.sent_lines();
    assert_eq!(
        sent,
        [
            "qm create 100 --name a",
            "qm importdisk 100 /var/lib/vz/template/iso/x.img local-lvm",
            "qm config 100",
            "qm stop 100 --skiplock 1",
            "qm destroy 100 --purge 1 --destroy-unreferenced-disks 1 --skiplock 1",
        ],
        "the round trip under way ends; nothing after it; then the rollback"
    );
    let r = &results[0];
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(r.error.as_deref(), Some("interrupted after 2 of 4 steps"));
    assert!(r.rolled_back);
}
