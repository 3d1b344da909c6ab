//! Names of VMs without a vmid are claimed under the cluster-wide lock:
//! lock and read every node's guests, then make the VM bare and release,
//! then the rest of its steps on the id it got.

use pvefleet_exec::event::{Event, Reporter, VmOutcome};
use pvefleet_exec::runner::{apply, ApplyOptions, Transports};
use pvefleet_exec::transport::fake::{FakeReply, FakeTransport};
use pvefleet_exec::transport::Transport;
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::{Action, Check, Plan, Step, VmPlan};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const LOCK: &str = "/etc/pve/priv/lock/pvefleet-names";

fn id(n: u32) -> VmId {
    VmId::new(i64::from(n)).expect("id")
}

/// A VM the file names without an id: planned as 100, create then start.
fn unnamed(name: &str) -> VmPlan {
    let mut o = QmOptions::new();
    o.push("name", name);
    o.push("memory", "2048");
    o.push("tags", "pvefleet");
    o.push("description", "managed-by: pvefleet");
    let mut vp = VmPlan::new(name, "pve");
    vp.vmid = Some(id(100));
    vp.vmid_allocated = true;
    vp.claim_name = true;
    vp.action = Action::Create;
    vp.steps = vec![
        Step::checked(
            Command::Qm(Qm::Create {
                vmid: id(100),
                options: o,
            }),
            Check::Reserve,
        ),
        Step::exit(Command::Qm(Qm::Start { vmid: id(100) })),
    ];
    vp
}

async fn run(fake: &Arc<FakeTransport>, vms: Vec<VmPlan>) -> Vec<pvefleet_exec::VmResult> {
    let mut t = Transports::new();
    t.insert("pve".into(), fake.clone() as Arc<dyn Transport>);
    let report: Arc<dyn Reporter> = Arc::new(|_: Event| {});
    let opts = ApplyOptions {
        wait: false,
        wait_timeout: Duration::from_secs(1),
        boot_window: Duration::from_secs(1),
        keep_failed: false,
        parallel: 4,
        parallel_storage: 4,
        cancel: Default::default(),
    };
    let plan = Plan {
        vms,
        ..Plan::default()
    };
    apply(plan, &t, BTreeSet::new(), opts, report).await
}

fn guests(json: &str) -> FakeReply {
    FakeReply::Ok(json.into())
}

fn listing(fake: &FakeTransport, json: &str) {
    fake.always(
        &["pvesh", "get", "/nodes/pve/qemu", "--full", "1"],
        guests(json),
    );
    fake.always(&["pvesh", "get", "/nodes/pve/qemu"], guests(json));
}

#[tokio::test]
async fn a_name_is_claimed_bare_under_the_lock_then_made() {
    let fake = Arc::new(FakeTransport::new());
    listing(&fake, "[]");
    let r = run(&fake, vec![unnamed("web")]).await;
    assert_eq!(r[0].result, VmOutcome::Ok, "{:?}", r[0].error);
    let sent = fake.sent_lines();
    assert!(sent[0].starts_with("sh -c "), "{sent:?}");
    assert!(sent[0].contains(LOCK), "{sent:?}");
    assert!(sent[1].starts_with("pvesh get /nodes/pve/qemu"), "{sent:?}");
    assert_eq!(
        sent[2],
        "qm create 100 --name web --tags pvefleet --description managed-by: pvefleet"
    );
    assert_eq!(sent[3], format!("rmdir {LOCK}"));
    assert_eq!(
        sent[4..],
        [
            "qm set 100 --name web --memory 2048 --tags pvefleet --description managed-by: pvefleet",
            "qm start 100"
        ]
    );
}

#[tokio::test]
async fn a_name_another_run_made_meanwhile_is_that_runs_vm() {
    let fake = Arc::new(FakeTransport::new());
    listing(
        &fake,
        r#"[{"vmid": 104, "name": "web", "tags": "pvefleet", "status": "stopped"}]"#,
    );
    let r = run(&fake, vec![unnamed("web")]).await;
    assert_eq!((r[0].result, r[0].vmid), (VmOutcome::Ok, Some(id(104))));
    let sent = fake.sent_lines();
    assert!(
        sent.iter().all(|l| !l.starts_with("qm ")),
        "nothing made: {sent:?}"
    );
    assert_eq!(
        sent.last().map(String::as_str),
        Some(&*format!("rmdir {LOCK}"))
    );
}

#[tokio::test]
async fn a_name_a_foreign_vm_took_meanwhile_fails_untouched() {
    let fake = Arc::new(FakeTransport::new());
    listing(
        &fake,
        r#"[{"vmid": 104, "name": "web", "status": "running"}]"#,
    );
    let r = run(&fake, vec![unnamed("web")]).await;
    assert_eq!(r[0].result, VmOutcome::Failed);
    assert!(
        r[0].error
            .as_deref()
            .unwrap_or_default()
            .contains("does not manage"),
        "{:?}",
        r[0].error
    );
    assert!(fake.sent_lines().iter().all(|l| !l.starts_with("qm ")));
}

#[tokio::test]
async fn an_id_a_guest_holds_is_skipped_under_the_lock() {
    let fake = Arc::new(FakeTransport::new());
    listing(
        &fake,
        r#"[{"vmid": 100, "name": "other", "status": "stopped"}, {"vmid": 101, "name": "x", "status": "stopped"}]"#,
    );
    let r = run(&fake, vec![unnamed("web")]).await;
    assert_eq!((r[0].result, r[0].vmid), (VmOutcome::Ok, Some(id(102))));
    let sent = fake.sent_lines();
    assert!(sent.contains(&"qm start 102".to_string()), "{sent:?}");
    assert!(sent
        .iter()
        .any(|l| l.starts_with("qm create 102 --name web")));
}

#[tokio::test]
async fn a_lock_that_cannot_be_taken_makes_nothing() {
    let fake = Arc::new(FakeTransport::new());
    fake.always(
        &["sh", "-c"],
        FakeReply::Fail(
            1,
            format!("cannot take the cluster lock {LOCK}: another run holds it"),
        ),
    );
    let r = run(&fake, vec![unnamed("a"), unnamed("b")]).await;
    for v in &r {
        assert_eq!(v.result, VmOutcome::Failed);
        assert!(v
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("another run holds it"));
    }
    assert!(fake.sent_lines().iter().all(|l| !l.starts_with("qm ")));
}

#[tokio::test]
async fn vms_that_start_together_share_one_hold_of_the_lock() {
    let fake = Arc::new(FakeTransport::new());
    listing(&fake, "[]");
    let mut b = unnamed("b");
    for s in &mut b.steps {
        s.command = s.command.retarget(id(100), id(101));
    }
    b.vmid = Some(id(101));
    let r = run(&fake, vec![unnamed("a"), b]).await;
    assert!(r.iter().all(|v| v.result == VmOutcome::Ok), "{r:?}");
    let locks = fake
        .sent_lines()
        .iter()
        .filter(|l| l.contains(LOCK) && l.starts_with("sh -c"))
        .count();
    assert_eq!(locks, 1, "{:?}", fake.sent_lines());
}
