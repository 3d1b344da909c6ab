//! The runner's rules, end to end through `runner::apply` on scripted
//! transports: what is sent in which round trip, what each VM's result
//! says, and which events a run reports.
//!
//! Plans are built from `pvefleet_plan` types directly, so these tests
//! depend on no config file and no planner. Host answers follow
//! CONTRACT §2.1 (create), §4.2 (import output), §9 (clone) and §11 (locks).

use pvefleet_exec::event::{Event, Reporter, VmOutcome, VmResult};
use pvefleet_exec::runner::machine::{FIRST_BACKOFF, MAX_ID_RETRIES, MAX_LOCK_RETRIES};
use pvefleet_exec::runner::steps::Rollback;
use pvefleet_exec::runner::{apply, ApplyOptions, Transports};
use pvefleet_exec::transport::fake::{FakeReply, FakeTransport};
use pvefleet_exec::transport::{Judge, StepOutput, Transport, TransportError};
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::{
    Action, Check, InputSource, Plan, PlanProblem, Prelude, Step, StorageLock, Upload, VmPlan,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODE: &str = "pve";

// Host answers (CONTRACT §2.1, §9, §11).
const CREATE_TAKEN_100: &str = "unable to create VM 100 - VM 100 already exists on node 'pve'";
const CLONE_TAKEN_100: &str = "unable to create VM 100: config file already exists";
const FLOCK_TIMEOUT_100: &str =
    "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout";
const CFS_TIMEOUT: &str = "trying to acquire cfs lock 'storage-local-lvm' ...\n\
     cfs-lock 'storage-local-lvm' error: got lock request timeout";
const OUR_CONFIG: &str = "boot: order=scsi0\nmemory: 2048\nname: web\ntags: pvefleet;web\n";
const ROLLBACK_100: [&str; 3] = [
    "qm config 100",
    "qm stop 100 --skiplock 1",
    "qm destroy 100 --purge 1 --destroy-unreferenced-disks 1 --skiplock 1",
];

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

fn options(pairs: &[(&str, &str)]) -> QmOptions {
    let mut o = QmOptions::new();
    for (k, v) in pairs {
        o.push(k, *v);
    }
    o
}

fn create(vmid: u32, pairs: &[(&str, &str)]) -> Step {
    Step::checked(
        Command::Qm(Qm::Create {
            vmid: id(vmid),
            options: options(pairs),
        }),
        Check::Reserve,
    )
}

fn set(vmid: u32, pairs: &[(&str, &str)]) -> Step {
    Step::exit(Command::Qm(Qm::Set {
        vmid: id(vmid),
        options: options(pairs),
        delete: Vec::new(),
    }))
}

fn start(vmid: u32) -> Step {
    Step::exit(Command::Qm(Qm::Start { vmid: id(vmid) }))
}

fn resize(vmid: u32) -> Step {
    Step::checked(
        Command::Qm(Qm::DiskResize {
            vmid: id(vmid),
            disk: "scsi0".into(),
            size: "20G".into(),
            legacy: false,
        }),
        Check::QuietStderr,
    )
}

fn clone(template: u32, newid: u32, name: &str) -> Step {
    Step::checked(
        Command::Qm(Qm::Clone {
            vmid: id(template),
            newid: id(newid),
            name: name.into(),
            full: false,
            storage: None,
        }),
        Check::Reserve,
    )
}

/// A VM to create on [`NODE`].
fn vm(name: &str, vmid: u32, allocated: bool, steps: Vec<Step>) -> VmPlan {
    let mut vp = VmPlan::new(name, NODE);
    vp.vmid = Some(id(vmid));
    vp.vmid_allocated = allocated;
    vp.action = Action::Create;
    vp.steps = steps;
    vp
}

/// The usual create: `qm create`, `qm set`, `qm start`.
fn web(vmid: u32, allocated: bool) -> VmPlan {
    vm(
        "web",
        vmid,
        allocated,
        vec![
            create(vmid, &[("name", "web")]),
            set(vmid, &[("memory", "2048")]),
            start(vmid),
        ],
    )
}

fn plan_of(vms: Vec<VmPlan>) -> Plan {
    Plan {
        vms,
        ..Plan::default()
    }
}

struct Run {
    results: Vec<VmResult>,
    events: Vec<Event>,
}

impl Run {
    fn only(&self) -> &VmResult {
        assert_eq!(self.results.len(), 1, "{:?}", self.results);
        &self.results[0]
    }

    fn result(&self, name: &str) -> &VmResult {
        self.results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no result for {name}"))
    }

    fn notes(&self, of: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Note { name, message } if name == of => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The events of `name` other than commands.
    fn milestones(&self, of: &str) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| match e {
                Event::Started { name } | Event::Finished { name, .. } => name == of,
                Event::Note { name, .. } => name == of,
                Event::Command { .. } => false,
            })
            .cloned()
            .collect()
    }

    fn commands(&self, of: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Command { name, line } if name == of => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

async fn run_on(plan: Plan, transports: Transports, used: &[u32], opts: ApplyOptions) -> Run {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let report: Arc<dyn Reporter> = Arc::new(move |e: Event| {
        if let Ok(mut v) = sink.lock() {
            v.push(e);
        }
    });
    let used: BTreeSet<u32> = used.iter().copied().collect();
    let results = apply(plan, &transports, used, opts, report).await;
    let events = log.lock().map(|v| v.clone()).unwrap_or_default();
    Run { results, events }
}

async fn run(plan: Plan, fake: &Arc<FakeTransport>, used: &[u32], opts: ApplyOptions) -> Run {
    let mut transports = Transports::new();
    transports.insert(NODE.into(), fake.clone() as Arc<dyn Transport>);
    run_on(plan, transports, used, opts).await
}

fn started(name: &str) -> Event {
    Event::Started { name: name.into() }
}

fn finished(name: &str, ok: bool) -> Event {
    Event::Finished {
        name: name.into(),
        ok,
    }
}

fn note(name: &str, message: &str) -> Event {
    Event::Note {
        name: name.into(),
        message: message.into(),
    }
}

fn command(name: &str, line: &str) -> Event {
    Event::Command {
        name: name.into(),
        line: line.into(),
    }
}

/// The lines sent that act on VM `vmid` (third word), in order.
fn lines_for(fake: &FakeTransport, vmid: u32) -> Vec<String> {
    let want = vmid.to_string();
    fake.sent()
        .into_iter()
        .filter(|a| a.get(2) == Some(&want) || a.get(3) == Some(&want))
        .map(|a| a.join(" "))
        .collect()
}

#[test]
fn rollback_spells_a_guard_read_then_stop_and_destroy_skipping_the_lock() {
    let r = Rollback::of(id(100));
    let mut lines = vec![r.guard.argv().join(" ")];
    lines.extend(r.steps.iter().map(|c| c.argv().join(" ")));
    assert_eq!(lines, ROLLBACK_100);
    assert!(Rollback::is_ours(OUR_CONFIG));
    assert!(Rollback::is_ours("lock: create\n"));
    assert!(Rollback::is_ours("lock: clone\n"));
    assert!(!Rollback::is_ours("name: db\ntags: prod\n"));
    assert!(!Rollback::is_ours("lock: backup\nname: pvefleet\n"));
}

// Everything succeeds: one round trip.

#[tokio::test]
async fn all_steps_succeed_in_one_round_trip() {
    let fake = Arc::new(FakeTransport::new());
    let mut vp = web(100, true);
    // Without --wait nothing asks the guest agent, even for a running VM.
    vp.running = true;
    vp.starts = true;
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 100 --name web",
            "qm set 100 --memory 2048",
            "qm start 100"
        ]
    );
    assert_eq!(fake.round_trips(), 1);
    let r = run.only();
    assert_eq!(
        (r.name.as_str(), r.vmid, r.node.as_str(), r.action),
        ("web", Some(id(100)), NODE, Action::Create)
    );
    assert_eq!(r.result, VmOutcome::Ok);
    assert_eq!(r.error, None);
    assert!(!r.rolled_back);
    assert_eq!(r.ip, None);
    assert_eq!(
        run.events,
        [
            started("web"),
            command("web", "qm create 100 --name web"),
            command("web", "qm set 100 --memory 2048"),
            command("web", "qm start 100"),
            finished("web", true),
        ]
    );
}

#[tokio::test]
async fn events_hide_the_password_the_node_receives() {
    let fake = Arc::new(FakeTransport::new());
    let vp = vm(
        "web",
        100,
        true,
        vec![create(100, &[("name", "web"), ("cipassword", "s3cret")])],
    );
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        ["qm create 100 --name web --cipassword s3cret"]
    );
    assert_eq!(
        run.commands("web"),
        ["qm create 100 --name web --cipassword '<hidden>'"]
    );
}

// An id taken since the node was read.

#[tokio::test]
async fn a_taken_allocated_id_moves_the_whole_vm_to_the_next_free_id() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "create", "100"],
        FakeReply::Fail(255, CREATE_TAKEN_100.into()),
    );
    // 101 is known to be in use: the next free id is 102.
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100, 101], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 100 --name web",
            "qm create 102 --name web",
            "qm set 102 --memory 2048",
            "qm start 102",
        ]
    );
    assert_eq!(fake.round_trips(), 2);
    let r = run.only();
    assert_eq!((r.result, r.vmid), (VmOutcome::Ok, Some(id(102))));
    assert_eq!(r.error, None);
    assert!(!r.rolled_back);
    assert_eq!(
        run.milestones("web"),
        [
            started("web"),
            note("web", "vmid 100 was taken meanwhile; using 102"),
            finished("web", true),
        ]
    );
    let cmds = run.commands("web");
    assert_eq!(
        cmds[cmds.len() - 3..],
        [
            "qm create 102 --name web",
            "qm set 102 --memory 2048",
            "qm start 102"
        ]
    );
}

#[tokio::test]
async fn a_taken_clone_target_is_moved_but_its_source_is_kept() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(&["qm", "clone"], FakeReply::Fail(2, CLONE_TAKEN_100.into()));
    let vp = vm(
        "web",
        100,
        true,
        vec![clone(9000, 100, "web"), set(100, &[("memory", "2048")])],
    );
    let run = run(plan_of(vec![vp]), &fake, &[100, 9000], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        [
            "qm clone 9000 100 --name web --full 0",
            "qm clone 9000 101 --name web --full 0",
            "qm set 101 --memory 2048",
        ]
    );
    assert_eq!(
        (run.only().result, run.only().vmid),
        (VmOutcome::Ok, Some(id(101)))
    );
}

#[tokio::test]
async fn vms_that_clash_at_once_get_different_new_ids() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "create", "100"],
        FakeReply::Fail(255, CREATE_TAKEN_100.into()),
    );
    fake.once(
        &["qm", "create", "101"],
        FakeReply::Fail(
            255,
            "unable to create VM 101 - VM 101 already exists on node 'pve'".into(),
        ),
    );
    let a = vm("a", 100, true, vec![create(100, &[("name", "a")])]);
    let b = vm("b", 101, true, vec![create(101, &[("name", "b")])]);
    let run = run(plan_of(vec![a, b]), &fake, &[100, 101], opts()).await;
    let ids: BTreeSet<Option<VmId>> = run.results.iter().map(|r| r.vmid).collect();
    assert_eq!(ids, BTreeSet::from([Some(id(102)), Some(id(103))]));
    assert!(run.results.iter().all(|r| r.result == VmOutcome::Ok));
    assert_eq!(fake.sent().len(), 4);
}

#[tokio::test]
async fn a_taken_file_given_id_fails_and_nothing_is_destroyed() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "create", "100"],
        FakeReply::Fail(255, CREATE_TAKEN_100.into()),
    );
    let run = run(plan_of(vec![web(100, false)]), &fake, &[100], opts()).await;
    // No other id, no guard read, no stop, no destroy: the VM is someone else's.
    assert_eq!(fake.sent_lines(), ["qm create 100 --name web"]);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(r.vmid, Some(id(100)));
    assert_eq!(
        r.error.as_deref(),
        Some(format!("qm create 100: {CREATE_TAKEN_100}").as_str())
    );
    assert!(!r.rolled_back);
    assert_eq!(
        run.milestones("web"),
        [started("web"), finished("web", false)]
    );
}

#[tokio::test]
async fn an_id_that_keeps_clashing_fails_after_the_retry_limit() {
    let fake = Arc::new(FakeTransport::new());
    fake.always(
        &["qm", "create"],
        FakeReply::Fail(255, "config file already exists".into()),
    );
    let vp = vm("web", 100, true, vec![create(100, &[("name", "web")])]);
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    let last = 100 + MAX_ID_RETRIES;
    let expected: Vec<String> = (100..=last)
        .map(|n| format!("qm create {n} --name web"))
        .collect();
    assert_eq!(fake.sent_lines(), expected);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("qm create {last}: config file already exists").as_str())
    );
    assert!(!r.rolled_back);
    // The result names the last id tried.
    assert_eq!(r.vmid, Some(id(last)));
    assert_eq!(run.notes("web").len(), MAX_ID_RETRIES as usize);
}

// Lock timeouts.

#[tokio::test]
async fn a_lock_timeout_resends_that_step_and_the_rest_after_a_pause() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "set"],
        FakeReply::Fail(255, FLOCK_TIMEOUT_100.into()),
    );
    let begun = std::time::Instant::now();
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    assert!(begun.elapsed() >= FIRST_BACKOFF, "{:?}", begun.elapsed());
    // The create that succeeded is not sent again.
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 100 --name web",
            "qm set 100 --memory 2048",
            "qm set 100 --memory 2048",
            "qm start 100",
        ]
    );
    assert_eq!(fake.round_trips(), 2);
    let r = run.only();
    assert_eq!((r.result, r.vmid), (VmOutcome::Ok, Some(id(100))));
    assert!(!r.rolled_back);
    assert_eq!(
        run.notes("web"),
        [format!("{FLOCK_TIMEOUT_100}; retrying in 500 ms")]
    );
}

#[tokio::test(start_paused = true)]
async fn a_storage_lock_timeout_on_the_create_retries_the_same_id() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(&["qm", "create"], FakeReply::Fail(255, CFS_TIMEOUT.into()));
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 100 --name web",
            "qm create 100 --name web",
            "qm set 100 --memory 2048",
            "qm start 100",
        ]
    );
    let r = run.only();
    assert_eq!((r.result, r.vmid), (VmOutcome::Ok, Some(id(100))));
    assert_eq!(run.notes("web").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn lock_timeouts_beyond_the_limit_fail_and_roll_back() {
    let fake = Arc::new(FakeTransport::new());
    fake.always(
        &["qm", "set"],
        FakeReply::Fail(255, FLOCK_TIMEOUT_100.into()),
    );
    fake.always(&["qm", "config"], FakeReply::Ok(OUR_CONFIG.into()));
    let begun = tokio::time::Instant::now();
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    // 0.5 + 1 + 2 + 4 + 8 + 8 s of back-off, on the paused clock.
    assert!(begun.elapsed() >= Duration::from_millis(23_500));
    let mut expected = vec!["qm create 100 --name web".to_string()];
    expected.extend((0..=MAX_LOCK_RETRIES).map(|_| "qm set 100 --memory 2048".to_string()));
    expected.extend(ROLLBACK_100.map(String::from));
    assert_eq!(fake.sent_lines(), expected);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("qm set 100: {FLOCK_TIMEOUT_100}").as_str())
    );
    assert!(r.rolled_back);
    let pauses: Vec<String> = run
        .notes("web")
        .iter()
        .filter_map(|n| n.rsplit("retrying in ").next().map(String::from))
        .collect();
    assert_eq!(
        pauses,
        ["500 ms", "1000 ms", "2000 ms", "4000 ms", "8000 ms", "8000 ms"]
    );
}

// Failures and rollback.

#[tokio::test]
async fn a_failing_step_after_the_create_rolls_back_a_vm_that_is_ours() {
    for config in [OUR_CONFIG, "lock: create\n", "lock: clone\n"] {
        let fake = Arc::new(FakeTransport::new());
        fake.once(
            &["qm", "set"],
            FakeReply::Fail(
                255,
                "400 Parameter verification failed.\nmemory: value must have a minimum value of 16"
                    .into(),
            ),
        );
        fake.always(&["qm", "config"], FakeReply::Ok(config.into()));
        let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
        let mut expected = vec![
            "qm create 100 --name web".to_string(),
            "qm set 100 --memory 2048".into(),
        ];
        expected.extend(ROLLBACK_100.map(String::from));
        assert_eq!(fake.sent_lines(), expected, "config {config:?}");
        let r = run.only();
        assert_eq!(r.result, VmOutcome::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some(
                "qm set 100: 400 Parameter verification failed.\nmemory: value must have a minimum value of 16"
            )
        );
        assert!(r.rolled_back, "config {config:?}");
        assert_eq!(r.vmid, Some(id(100)));
        // The stop and destroy are reported as commands, after the steps.
        let cmds = run.commands("web");
        assert_eq!(cmds[cmds.len() - 2..], ROLLBACK_100[1..]);
        assert_eq!(run.events.last(), Some(&finished("web", false)));
    }
}

#[tokio::test]
async fn rollback_after_a_reallocation_destroys_the_new_id_only() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "create", "100"],
        FakeReply::Fail(255, CREATE_TAKEN_100.into()),
    );
    fake.once(
        &["qm", "start"],
        FakeReply::Fail(255, "start failed: QEMU exited with code 1".into()),
    );
    fake.always(&["qm", "config"], FakeReply::Ok(OUR_CONFIG.into()));
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 100 --name web",
            "qm create 101 --name web",
            "qm set 101 --memory 2048",
            "qm start 101",
            "qm config 101",
            "qm stop 101 --skiplock 1",
            "qm destroy 101 --purge 1 --destroy-unreferenced-disks 1 --skiplock 1",
        ]
    );
    let r = run.only();
    assert_eq!(
        (r.result, r.vmid, r.rolled_back),
        (VmOutcome::Failed, Some(id(101)), true)
    );
}

#[tokio::test]
async fn a_vm_this_runs_create_made_is_rolled_back_whatever_its_config_says() {
    // The create succeeded in this run, so the VM is ours even when its
    // config shows neither the tag nor a lock (a clone before its qm set).
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "start"],
        FakeReply::Fail(255, "start failed".into()),
    );
    fake.always(
        &["qm", "config"],
        FakeReply::Ok("memory: 8192\nname: db\ntags: prod\n".into()),
    );
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    let mut expected = vec![
        "qm create 100 --name web".to_string(),
        "qm set 100 --memory 2048".into(),
        "qm start 100".into(),
    ];
    expected.extend(ROLLBACK_100.map(String::from));
    assert_eq!(fake.sent_lines(), expected);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert!(r.rolled_back);
}

#[tokio::test]
async fn a_clone_whose_settings_failed_is_rolled_back() {
    // After `qm clone` the VM has the admin template's config: no
    // pvefleet tag, no lock. It is this run's all the same.
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "set"],
        FakeReply::Fail(255, "400 Parameter verification failed.".into()),
    );
    fake.always(
        &["qm", "config"],
        FakeReply::Ok(
            "memory: 1024\nname: ci-1\nscsi0: local-lvm:base-9000-disk-0/vm-100-disk-0\n".into(),
        ),
    );
    let vp = vm(
        "ci-1",
        100,
        true,
        vec![
            clone(9000, 100, "ci-1"),
            set(100, &[("memory", "2048")]),
            start(100),
        ],
    );
    let run = run(plan_of(vec![vp]), &fake, &[100, 9000], opts()).await;
    let sent = fake.sent_lines();
    assert_eq!(sent[0], "qm clone 9000 100 --name ci-1 --full 0");
    assert_eq!(sent[1], "qm set 100 --memory 2048");
    assert_eq!(sent[2..], ROLLBACK_100, "no start; rolled back");
    let r = run.only();
    assert_eq!((r.result, r.rolled_back), (VmOutcome::Failed, true));
}

#[tokio::test]
async fn rollback_of_a_vm_that_is_already_gone_destroys_nothing() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "start"],
        FakeReply::Fail(255, "start failed".into()),
    );
    fake.always(
        &["qm", "config"],
        FakeReply::Fail(
            2,
            "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist".into(),
        ),
    );
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    assert_eq!(
        fake.sent_lines().last().map(String::as_str),
        Some("qm config 100")
    );
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    // Nothing is left behind: counted as rolled back.
    assert!(r.rolled_back);
}

#[tokio::test]
async fn keep_failed_keeps_the_half_made_vm() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(&["qm", "set"], FakeReply::Fail(255, "set failed".into()));
    fake.always(&["qm", "config"], FakeReply::Ok(OUR_CONFIG.into()));
    let opts = ApplyOptions {
        keep_failed: true,
        ..opts()
    };
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts).await;
    assert_eq!(
        fake.sent_lines(),
        ["qm create 100 --name web", "qm set 100 --memory 2048"]
    );
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(r.error.as_deref(), Some("qm set 100: set failed"));
    assert!(!r.rolled_back);
}

#[tokio::test]
async fn a_failed_create_may_have_left_a_vm_and_is_rolled_back() {
    let fake = Arc::new(FakeTransport::new());
    let why = "unable to create VM 100 - import-from: could not open '/var/lib/vz/x.img'";
    fake.once(&["qm", "create"], FakeReply::Fail(255, why.into()));
    fake.always(&["qm", "config"], FakeReply::Ok("lock: create\n".into()));
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    let mut expected = vec!["qm create 100 --name web".to_string()];
    expected.extend(ROLLBACK_100.map(String::from));
    assert_eq!(fake.sent_lines(), expected);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("qm create 100: {why}").as_str())
    );
    assert_eq!(r.vmid, Some(id(100)));
    assert!(r.rolled_back);
}

#[tokio::test]
async fn a_failed_update_is_never_rolled_back() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(&["qm", "set"], FakeReply::Fail(255, "set failed".into()));
    fake.always(&["qm", "config"], FakeReply::Ok(OUR_CONFIG.into()));
    let mut vp = VmPlan::new("web", NODE);
    vp.vmid = Some(id(100));
    vp.action = Action::Update;
    vp.steps = vec![set(100, &[("memory", "4096")])];
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    assert_eq!(fake.sent_lines(), ["qm set 100 --memory 4096"]);
    let r = run.only();
    assert_eq!((r.result, r.rolled_back), (VmOutcome::Failed, false));
    assert_eq!(r.action, Action::Update);
}

#[tokio::test]
async fn a_connection_lost_during_a_create_fails_and_rolls_back() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(&["qm", "set"], FakeReply::Lost);
    fake.always(&["qm", "config"], FakeReply::Ok("lock: create\n".into()));
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    let mut expected = vec![
        "qm create 100 --name web".to_string(),
        "qm set 100 --memory 2048".into(),
    ];
    expected.extend(ROLLBACK_100.map(String::from));
    assert_eq!(fake.sent_lines(), expected);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("connection to fake lost: scripted drop")
    );
    assert!(r.rolled_back);
}

#[tokio::test]
async fn a_connection_lost_on_the_create_itself_still_guards_the_rollback() {
    // The create may or may not have run: the guard read decides, and a VM
    // of someone else under that id is left alone.
    let fake = Arc::new(FakeTransport::new());
    fake.once(&["qm", "create"], FakeReply::Lost);
    fake.always(
        &["qm", "config"],
        FakeReply::Ok("name: db\ntags: prod\n".into()),
    );
    let run = run(plan_of(vec![web(100, false)]), &fake, &[100], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        ["qm create 100 --name web", "qm config 100"]
    );
    let r = run.only();
    assert_eq!((r.result, r.rolled_back), (VmOutcome::Failed, false));
}

// Tasks that exit 0 when they failed.

#[tokio::test]
async fn a_quiet_stderr_step_with_stderr_fails_and_rolls_back() {
    let fake = Arc::new(FakeTransport::new());
    let why = "Insufficient free space: 5120 extents needed, but only 1024 available";
    fake.once(
        &["qm", "disk", "resize"],
        FakeReply::OkWithStderr(String::new(), why.into()),
    );
    fake.always(&["qm", "config"], FakeReply::Ok(OUR_CONFIG.into()));
    let vp = vm(
        "web",
        100,
        true,
        vec![create(100, &[("name", "web")]), resize(100), start(100)],
    );
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    let sent = fake.sent_lines();
    assert_eq!(
        sent[..2],
        ["qm create 100 --name web", "qm disk resize 100 scsi0 20G"]
    );
    assert_eq!(sent[sent.len() - 3..], ROLLBACK_100);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("qm disk resize: {why}").as_str())
    );
    assert!(r.rolled_back);
}

#[tokio::test]

async fn no_step_runs_after_a_quiet_stderr_step_failed() {
    // `qm disk resize` and `qm template` exit 0 when their task failed
    // (CONTRACT §1.4), so the shell's stop-at-first-failure does not stop
    // there. The planner puts `qm start` after the resize of a new VM, and
    // a start or reboot after the resize of an update, which is never
    // rolled back: the VM is started although the run calls it failed.
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "disk", "resize"],
        FakeReply::OkWithStderr(String::new(), "Insufficient free space".into()),
    );
    fake.always(&["qm", "config"], FakeReply::Ok(OUR_CONFIG.into()));
    let vp = vm(
        "web",
        100,
        true,
        vec![create(100, &[("name", "web")]), resize(100), start(100)],
    );
    run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    let mut expected = vec![
        "qm create 100 --name web".to_string(),
        "qm disk resize 100 scsi0 20G".into(),
    ];
    expected.extend(ROLLBACK_100.map(String::from));
    // Today `qm start 100` is sent between the resize and the rollback.
    assert_eq!(fake.sent_lines(), expected);
}

#[tokio::test]

async fn a_quiet_stderr_task_that_only_warned_succeeds() {
    // TASK WARNINGS is a success (exit 0) whose only stderr line is the
    // warning count; the task's own WARN lines go to stdout (CONTRACT §1.3).
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "disk", "resize"],
        FakeReply::OkWithStderr(
            "WARN: volume is nearly full\n".into(),
            "Task finished with 1 warning(s)!".into(),
        ),
    );
    let vp = vm(
        "web",
        100,
        true,
        vec![create(100, &[("name", "web")]), resize(100), start(100)],
    );
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    assert_eq!(run.only().result, VmOutcome::Ok);
    assert!(!run.only().rolled_back);
}

#[tokio::test]
async fn an_exit_step_with_stderr_and_exit_zero_succeeds() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "set"],
        FakeReply::OkWithStderr(String::new(), "WARN: old cloud-init drive".into()),
    );
    let run = run(plan_of(vec![web(100, true)]), &fake, &[100], opts()).await;
    assert_eq!(fake.sent().len(), 3);
    let r = run.only();
    assert_eq!((r.result, r.error.as_deref()), (VmOutcome::Ok, None));
}

// The classic import, in two round trips.

fn classic_import(vmid: u32) -> VmPlan {
    let import = Step::checked(
        Command::Qm(Qm::ImportDisk {
            vmid: id(vmid),
            source: "/var/lib/vz/template/iso/jammy.img".into(),
            storage: "local-lvm".into(),
            legacy: true,
        }),
        Check::Import,
    );
    let attach =
        set(vmid, &[("boot", "order=scsi0")]).with_input("scsi0", InputSource::ImportedVolume);
    vm(
        "web",
        vmid,
        true,
        vec![create(vmid, &[("name", "web")]), import, attach],
    )
}

#[tokio::test]
async fn the_imported_volume_is_attached_in_a_second_round_trip() {
    let outputs = [
        // PVE ≤ 8.2
        "importing disk '/var/lib/vz/template/iso/jammy.img' to VM 100 ...\n\
         transferred 2.2 GiB of 2.2 GiB (100.00%)\n\
         Successfully imported disk as 'unused0:local-lvm:vm-100-disk-0'\n",
        // PVE ≥ 8.3
        "importing disk '/var/lib/vz/template/iso/jammy.img' to VM 100 ...\n\
         transferred 2.2 GiB of 2.2 GiB (100.00%)\n\
         unused0: successfully imported disk 'local-lvm:vm-100-disk-0'\n",
    ];
    for stdout in outputs {
        let fake = Arc::new(FakeTransport::new());
        fake.once(&["qm", "importdisk"], FakeReply::Ok(stdout.into()));
        let run = run(plan_of(vec![classic_import(100)]), &fake, &[100], opts()).await;
        assert_eq!(
            fake.sent_lines(),
            [
                "qm create 100 --name web",
                "qm importdisk 100 /var/lib/vz/template/iso/jammy.img local-lvm",
                "qm set 100 --boot order=scsi0 --scsi0 local-lvm:vm-100-disk-0",
            ]
        );
        assert_eq!(fake.round_trips(), 2);
        assert_eq!(run.only().result, VmOutcome::Ok);
        assert_eq!(
            run.commands("web").last().map(String::as_str),
            Some("qm set 100 --boot 'order=scsi0' --scsi0 local-lvm:vm-100-disk-0")
        );
    }
}

#[tokio::test]
async fn an_import_that_names_no_volume_fails_and_rolls_back() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "importdisk"],
        FakeReply::Ok("importing disk '/var/lib/vz/template/iso/jammy.img' to VM 100 ...\n".into()),
    );
    fake.always(&["qm", "config"], FakeReply::Ok("lock: create\n".into()));
    let run = run(plan_of(vec![classic_import(100)]), &fake, &[100], opts()).await;
    let mut expected = vec![
        "qm create 100 --name web".to_string(),
        "qm importdisk 100 /var/lib/vz/template/iso/jammy.img local-lvm".into(),
    ];
    expected.extend(ROLLBACK_100.map(String::from));
    assert_eq!(fake.sent_lines(), expected);
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("qm importdisk 100: cannot find the imported volume in the output of qm importdisk")
    );
    assert!(r.rolled_back);
}

// Key file uploads.

/// A transport that journals every call in one sequence, and counts the
/// round trips that allocate (create or clone) in flight at once. It
/// answers through a [`FakeTransport`].
struct Probe {
    fake: FakeTransport,
    journal: Mutex<Vec<String>>,
    busy: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Probe {
    fn new(busy: Arc<AtomicUsize>, peak: Arc<AtomicUsize>) -> Self {
        Self {
            fake: FakeTransport::new(),
            journal: Mutex::new(Vec::new()),
            busy,
            peak,
        }
    }

    fn log(&self, entry: String) {
        if let Ok(mut j) = self.journal.lock() {
            j.push(entry);
        }
    }

    fn journal(&self) -> Vec<String> {
        self.journal.lock().map(|j| j.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Transport for Probe {
    fn describe(&self) -> String {
        "probe".into()
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
        stop_on_error: bool,
    ) -> Result<Vec<StepOutput>, TransportError> {
        let judges = vec![Judge::Exit; argvs.len()];
        if stop_on_error {
            self.run_checked(argvs, &judges).await
        } else {
            self.fake.run_batch(argvs, false).await
        }
    }

    async fn run_checked(
        &self,
        argvs: &[Vec<String>],
        judges: &[Judge],
    ) -> Result<Vec<StepOutput>, TransportError> {
        let allocating = argvs
            .iter()
            .any(|a| matches!(a.get(1).map(String::as_str), Some("create" | "clone")));
        if allocating {
            let now = self.busy.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
        }
        let lines: Vec<String> = argvs.iter().map(|a| a.join(" ")).collect();
        self.log(format!("batch: {}", lines.join(" ; ")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let out = self.fake.run_checked(argvs, judges).await;
        if allocating {
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
        out
    }

    async fn run_concurrent(
        &self,
        argvs: &[Vec<String>],
    ) -> Result<Vec<StepOutput>, TransportError> {
        self.fake.run_concurrent(argvs).await
    }

    async fn upload(&self, dir: &str, path: &str, content: &str) -> Result<(), TransportError> {
        self.log(format!("upload {path} into {dir}"));
        self.fake.upload(dir, path, content).await
    }

    async fn remove_dir(&self, dir: &str) {
        self.log(format!("remove {dir}"));
        self.fake.remove_dir(dir).await
    }

    async fn close(&self) {}
}

fn probe() -> Arc<Probe> {
    Arc::new(Probe::new(Arc::default(), Arc::default()))
}

fn transports(nodes: &[(&str, Arc<Probe>)]) -> Transports {
    nodes
        .iter()
        .map(|(n, p)| (n.to_string(), p.clone() as Arc<dyn Transport>))
        .collect()
}

/// The run folder `dir` is `/tmp/pvefleet-<12 lowercase letters>-<node>`;
/// returns the letters.
fn run_letters<'a>(dir: &'a str, node: &str) -> &'a str {
    let rest = dir
        .strip_prefix("/tmp/pvefleet-")
        .unwrap_or_else(|| panic!("{dir} is not in /tmp/pvefleet-*"));
    let (letters, tail) = rest.split_at(12.min(rest.len()));
    assert!(
        letters.len() == 12 && letters.bytes().all(|b| b.is_ascii_lowercase()),
        "{dir}"
    );
    assert_eq!(tail, format!("-{node}"), "{dir}");
    letters
}

fn keyed(name: &str, vmid: u32, node: &str, upload: usize) -> VmPlan {
    let mut vp = vm(
        name,
        vmid,
        true,
        vec![create(vmid, &[("name", name)]).with_input("sshkeys", InputSource::Upload(upload))],
    );
    vp.node = node.into();
    vp.uploads = vec![upload];
    vp
}

fn key_upload(node: &str) -> Upload {
    Upload {
        node: node.into(),
        file_name: "sshkeys-0.pub".into(),
        content: "ssh-ed25519 AAAAC3Nza me@example\n".into(),
        install_to: None,
    }
}

#[tokio::test]
async fn a_key_file_is_uploaded_once_into_the_run_folder_and_removed_after() {
    let p = probe();
    let plan = Plan {
        vms: vec![keyed("a", 100, NODE, 0), keyed("b", 101, NODE, 0)],
        uploads: vec![key_upload(NODE)],
        preludes: Vec::new(),
        leftovers: Vec::new(),
        downloads: Vec::new(),
    };
    let run = run_on(plan, transports(&[(NODE, p.clone())]), &[100, 101], opts()).await;
    assert!(run.results.iter().all(|r| r.result == VmOutcome::Ok));
    let uploads = p.fake.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let (path, content) = &uploads[0];
    assert_eq!(content, "ssh-ed25519 AAAAC3Nza me@example\n");
    let dir = path
        .strip_suffix("/sshkeys-0.pub")
        .unwrap_or_else(|| panic!("{path}"));
    run_letters(dir, NODE);
    let mut creates = p.fake.sent_lines();
    creates.retain(|l| l.starts_with("qm create"));
    creates.sort();
    assert_eq!(
        creates,
        [
            format!("qm create 100 --name a --sshkeys {path}"),
            format!("qm create 101 --name b --sshkeys {path}"),
        ]
    );
    assert_eq!(p.fake.removed(), [dir]);
    // Upload first, removal last, once each.
    let journal = p.journal();
    assert_eq!(journal.len(), 4, "{journal:?}");
    assert_eq!(journal[0], format!("upload {path} into {dir}"));
    assert_eq!(journal[3], format!("remove {dir}"));
}

#[tokio::test]
async fn each_node_gets_its_own_folder_of_the_same_run() {
    let (p1, p2) = (probe(), probe());
    let plan = Plan {
        vms: vec![keyed("a", 100, "pve1", 0), keyed("b", 101, "pve2", 1)],
        uploads: vec![key_upload("pve1"), key_upload("pve2")],
        preludes: Vec::new(),
        leftovers: Vec::new(),
        downloads: Vec::new(),
    };
    let ts = transports(&[("pve1", p1.clone()), ("pve2", p2.clone())]);
    let run = run_on(plan, ts, &[100, 101], opts()).await;
    assert!(run.results.iter().all(|r| r.result == VmOutcome::Ok));
    let (d1, d2) = (p1.fake.removed(), p2.fake.removed());
    assert_eq!((d1.len(), d2.len()), (1, 1));
    assert_eq!(run_letters(&d1[0], "pve1"), run_letters(&d2[0], "pve2"));
    assert_eq!(p1.fake.uploads()[0].0, format!("{}/sshkeys-0.pub", d1[0]));
    assert_eq!(p2.fake.uploads()[0].0, format!("{}/sshkeys-0.pub", d2[0]));
}

#[tokio::test]
async fn a_failed_upload_fails_the_vms_that_need_it_and_sends_none_of_their_steps() {
    let fake = Arc::new(FakeTransport::new());
    let why = "mkdir: cannot create directory: No space left on device";
    fake.always(&["upload"], FakeReply::Fail(1, why.into()));
    let plan = Plan {
        vms: vec![
            keyed("a", 100, NODE, 0),
            keyed("b", 101, NODE, 0),
            vm("c", 102, true, vec![create(102, &[("name", "c")])]),
        ],
        uploads: vec![key_upload(NODE)],
        preludes: Vec::new(),
        leftovers: Vec::new(),
        downloads: Vec::new(),
    };
    let run = run(plan, &fake, &[100, 101, 102], opts()).await;
    let sent = fake.sent_lines();
    // One attempt for both VMs; only the VM without keys is created.
    assert_eq!(sent.iter().filter(|l| l.starts_with("upload ")).count(), 1);
    assert_eq!(
        sent.iter()
            .filter(|l| l.starts_with("qm "))
            .collect::<Vec<_>>(),
        ["qm create 102 --name c"]
    );
    for name in ["a", "b"] {
        let r = run.result(name);
        assert_eq!(r.result, VmOutcome::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some("the key file could not be written to the node")
        );
        assert!(!r.rolled_back);
        assert_eq!(run.milestones(name), [finished(name, false)]);
    }
    assert_eq!(run.result("c").result, VmOutcome::Ok);
    assert_eq!(run.notes(NODE), [why]);
}

// VMs that are sent nothing.

#[tokio::test]
async fn a_blocked_vm_is_skipped_and_nothing_is_sent() {
    let fake = Arc::new(FakeTransport::new());
    let problem = PlanProblem::ForeignVm {
        kind: "VM",
        vmid: id(100),
        node: NODE.into(),
    };
    let mut vp = web(100, false);
    vp.block(problem.clone());
    let run = run(plan_of(vec![vp]), &fake, &[100], opts()).await;
    assert!(fake.sent().is_empty());
    assert_eq!(fake.round_trips(), 0);
    let r = run.only();
    assert_eq!((r.result, r.action), (VmOutcome::Skipped, Action::Conflict));
    assert_eq!(r.error, Some(problem.to_string()));
    assert!(run.events.is_empty());
}

#[tokio::test]
async fn a_vm_on_a_node_without_a_connection_fails_and_others_go_on() {
    let fake = Arc::new(FakeTransport::new());
    let mut away = web(100, true);
    away.node = "pve2".into();
    let mut blocked = vm("db", 101, false, Vec::new());
    blocked.node = "pve2".into();
    blocked.block(PlanProblem::NodeNotObserved {
        node: "pve2".into(),
    });
    let here = vm("c", 102, true, vec![create(102, &[("name", "c")])]);
    let run = run(
        plan_of(vec![away, blocked, here]),
        &fake,
        &[100, 101, 102],
        opts(),
    )
    .await;
    assert_eq!(fake.sent_lines(), ["qm create 102 --name c"]);
    let names: Vec<&str> = run.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["web", "db", "c"], "results keep the plan's order");
    let r = run.result("web");
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(r.error.as_deref(), Some("no connection to node pve2"));
    assert_eq!(run.result("db").result, VmOutcome::Skipped);
    assert_eq!(
        run.result("db").error.as_deref(),
        Some("node pve2 was not observed")
    );
    assert_eq!(run.result("c").result, VmOutcome::Ok);
}

// The image-cache prelude.

const LABEL: &str = "image cache pvefleet-img-0badcafe (local:iso/jammy.img)";

fn cache_plan(template: u32) -> Plan {
    let lock = StorageLock::Local {
        node: NODE.into(),
        storage: "local-lvm".into(),
    };
    let prelude = Prelude {
        node: NODE.into(),
        vmid: id(template),
        label: LABEL.into(),
        steps: vec![
            create(template, &[("name", "pvefleet-img-0badcafe")]),
            Step::checked(
                Command::Qm(Qm::Template { vmid: id(template) }),
                Check::QuietStderr,
            ),
        ],
        storage_lock: lock.clone(),
    };
    let clone_vm = |name: &str, vmid: u32| {
        let mut vp = vm(
            name,
            vmid,
            true,
            vec![
                clone(template, vmid, name),
                set(vmid, &[("memory", "1024")]),
            ],
        );
        vp.prelude = Some(0);
        vp.storage_lock = Some(lock.clone());
        vp
    };
    Plan {
        vms: vec![clone_vm("a", 100), clone_vm("b", 101)],
        uploads: Vec::new(),
        preludes: vec![prelude],
        leftovers: Vec::new(),
        downloads: Vec::new(),
    }
}

#[tokio::test]
async fn the_cache_template_is_made_once_and_moved_with_its_clones() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "create", "9000"],
        FakeReply::Fail(
            255,
            "unable to create VM 9000 - VM 9000 already exists on node 'pve'".into(),
        ),
    );
    let run = run(cache_plan(9000), &fake, &[100, 101, 9000, 9001], opts()).await;
    assert!(
        run.results.iter().all(|r| r.result == VmOutcome::Ok),
        "{:?}",
        run.results
    );
    let template: Vec<String> = fake
        .sent_lines()
        .into_iter()
        .filter(|l| l.contains(" 900"))
        .filter(|l| !l.starts_with("qm clone"))
        .collect();
    assert_eq!(
        template,
        [
            "qm create 9000 --name pvefleet-img-0badcafe",
            "qm create 9002 --name pvefleet-img-0badcafe",
            "qm template 9002",
        ]
    );
    assert_eq!(
        lines_for(&fake, 100),
        [
            "qm clone 9002 100 --name a --full 0",
            "qm set 100 --memory 1024"
        ]
    );
    assert_eq!(
        lines_for(&fake, 101),
        [
            "qm clone 9002 101 --name b --full 0",
            "qm set 101 --memory 1024"
        ]
    );
    assert_eq!(run.notes(NODE), [format!("preparing {LABEL}")]);
    assert_eq!(
        run.notes(LABEL),
        ["vmid 9000 was taken meanwhile; using 9002"]
    );
}

#[tokio::test]
async fn a_failed_cache_template_fails_its_clones_and_is_rolled_back() {
    let fake = Arc::new(FakeTransport::new());
    let why = "unable to convert to template: lvchange failed";
    fake.always(
        &["qm", "template"],
        FakeReply::OkWithStderr(String::new(), why.into()),
    );
    fake.always(
        &["qm", "config"],
        FakeReply::Ok("name: pvefleet-img-0badcafe\ntags: pvefleet-cache;pvefleet\n".into()),
    );
    let run = run(cache_plan(9000), &fake, &[100, 101, 9000], opts()).await;
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 9000 --name pvefleet-img-0badcafe",
            "qm template 9000",
            "qm config 9000",
            "qm stop 9000 --skiplock 1",
            "qm destroy 9000 --purge 1 --destroy-unreferenced-disks 1 --skiplock 1",
        ]
    );
    for name in ["a", "b"] {
        let r = run.result(name);
        assert_eq!(r.result, VmOutcome::Failed);
        assert_eq!(
            r.error.as_deref(),
            Some("the image cache template could not be prepared")
        );
        assert!(!r.rolled_back);
    }
    assert_eq!(
        run.notes(NODE),
        [
            format!("preparing {LABEL}"),
            format!("failed: {LABEL}: qm template 9000: {why}"),
        ]
    );
}

// The storage bound.

/// A create that allocates a volume on `storage`.
fn allocating_vm(name: &str, vmid: u32, node: &str, lock: &StorageLock) -> VmPlan {
    let mut vp = vm(
        name,
        vmid,
        true,
        vec![
            create(
                vmid,
                &[
                    ("name", name),
                    (
                        "scsi0",
                        "local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img",
                    ),
                ],
            ),
            set(vmid, &[("memory", "2048")]),
            start(vmid),
        ],
    );
    vp.node = node.into();
    vp.storage_lock = Some(lock.clone());
    vp
}

#[tokio::test(start_paused = true)]
async fn a_bounded_storage_gets_its_allocations_in_round_trips_of_their_own() {
    let lock = StorageLock::Local {
        node: NODE.into(),
        storage: "local-lvm".into(),
    };
    let vms = || -> Vec<VmPlan> {
        (0..4)
            .map(|i| allocating_vm(&format!("vm{i}"), 100 + i, NODE, &lock))
            .collect()
    };
    let used = [100, 101, 102, 103];

    // 4 at once per node, 1 per storage: bounded.
    let p = probe();
    let bounded = ApplyOptions {
        parallel: 4,
        parallel_storage: 1,
        ..opts()
    };
    let run = run_on(
        plan_of(vms()),
        transports(&[(NODE, p.clone())]),
        &used,
        bounded,
    )
    .await;
    assert!(run.results.iter().all(|r| r.result == VmOutcome::Ok));
    assert_eq!(p.round_trips(), 8);
    assert_eq!(p.peak.load(Ordering::SeqCst), 1);
    let journal = p.journal();
    for i in 0..4 {
        let vmid = 100 + i;
        let mine: Vec<&String> = journal
            .iter()
            .filter(|l| l.contains(&format!(" {vmid} ")) || l.ends_with(&format!(" {vmid}")))
            .collect();
        assert_eq!(
            mine,
            [
                &format!("batch: qm create {vmid} --name vm{i} --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img"),
                &format!("batch: qm set {vmid} --memory 2048 ; qm start {vmid}"),
            ]
        );
    }

    // 4 per storage: the bound is never reached, one round trip each.
    let p = probe();
    let unbounded = ApplyOptions {
        parallel: 4,
        parallel_storage: 4,
        ..opts()
    };
    let run = run_on(
        plan_of(vms()),
        transports(&[(NODE, p.clone())]),
        &used,
        unbounded,
    )
    .await;
    assert!(run.results.iter().all(|r| r.result == VmOutcome::Ok));
    assert_eq!(p.round_trips(), 4);
    assert_eq!(p.peak.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_shared_storage_is_bounded_across_nodes() {
    let lock = StorageLock::Shared {
        storage: "ceph".into(),
    };
    let busy = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let p1 = Arc::new(Probe::new(busy.clone(), peak.clone()));
    let p2 = Arc::new(Probe::new(busy.clone(), peak.clone()));
    let plan = plan_of(vec![
        allocating_vm("a", 100, "pve1", &lock),
        allocating_vm("b", 101, "pve2", &lock),
    ]);
    // 2 nodes × 1 VM at once > 1 per storage.
    let o = ApplyOptions {
        parallel: 1,
        parallel_storage: 1,
        ..opts()
    };
    let ts = transports(&[("pve1", p1.clone()), ("pve2", p2.clone())]);
    let run = run_on(plan, ts, &[100, 101], o).await;
    assert!(run.results.iter().all(|r| r.result == VmOutcome::Ok));
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!((p1.round_trips(), p2.round_trips()), (2, 2));
}

#[tokio::test]
async fn the_bounded_round_trip_ends_at_the_last_allocating_step() {
    let lock = StorageLock::Local {
        node: NODE.into(),
        storage: "local-lvm".into(),
    };
    let mut vp = allocating_vm("web", 100, NODE, &lock);
    // create (allocates), set, resize (allocates), start
    vp.steps.insert(2, resize(100));
    let p = probe();
    let o = ApplyOptions {
        parallel: 2,
        parallel_storage: 1,
        ..opts()
    };
    let run = run_on(
        plan_of(vec![vp]),
        transports(&[(NODE, p.clone())]),
        &[100],
        o,
    )
    .await;
    assert_eq!(run.only().result, VmOutcome::Ok);
    assert_eq!(
        p.journal(),
        [
            "batch: qm create 100 --name web --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img ; qm set 100 --memory 2048 ; qm disk resize 100 scsi0 20G",
            "batch: qm start 100",
        ]
    );
}

// The guest agent wait.

const AGENT_ANSWER: &str = r#"[{"name":"lo","ip-addresses":[{"ip-address":"127.0.0.1","ip-address-type":"ipv4","prefix":8}]},{"name":"eth0","ip-addresses":[{"ip-address":"fe80::be24:11ff:fe2c:1","ip-address-type":"ipv6","prefix":64},{"ip-address":"192.0.2.10","ip-address-type":"ipv4","prefix":24}]}]"#;
const NO_AGENT: &str = "QEMU guest agent is not running";

fn running_web() -> VmPlan {
    let mut vp = web(100, true);
    vp.running = true;
    vp.starts = true;
    vp
}

#[tokio::test]
async fn the_run_waits_for_the_guest_agent_to_report_an_address() {
    let fake = Arc::new(FakeTransport::new());
    fake.once(
        &["qm", "guest", "cmd"],
        FakeReply::Fail(255, NO_AGENT.into()),
    );
    fake.always(&["qm", "guest", "cmd"], FakeReply::Ok(AGENT_ANSWER.into()));
    let o = ApplyOptions {
        wait: true,
        wait_timeout: Duration::from_secs(5),
        boot_window: Duration::from_secs(5),
        ..opts()
    };
    let run = run(plan_of(vec![running_web()]), &fake, &[100], o).await;
    let sent = fake.sent_lines();
    assert_eq!(
        sent[3..],
        [
            "qm guest cmd 100 network-get-interfaces",
            "qm guest cmd 100 network-get-interfaces"
        ]
    );
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Ok);
    assert_eq!(r.ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(run.events.last(), Some(&finished("web", true)));
}

#[tokio::test]
async fn an_agent_that_never_answers_fails_the_vm_after_the_timeout_without_rollback() {
    let fake = Arc::new(FakeTransport::new());
    fake.always(
        &["qm", "guest", "cmd"],
        FakeReply::Fail(255, NO_AGENT.into()),
    );
    let o = ApplyOptions {
        wait: true,
        wait_timeout: Duration::from_secs(1),
        boot_window: Duration::ZERO,
        ..opts()
    };
    let run = run(plan_of(vec![running_web()]), &fake, &[100], o).await;
    let sent = fake.sent_lines();
    // Asked at 0, 0.25 and 0.75 s; the next pause would pass the timeout.
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert!(sent[3..]
        .iter()
        .all(|l| l == "qm guest cmd 100 network-get-interfaces"));
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("no address from the guest agent after 1 s: {NO_AGENT}").as_str())
    );
    assert!(!r.rolled_back);
    let notes = run.notes("web");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("lacks qemu-guest-agent"), "{notes:?}");
    assert_eq!(run.events.last(), Some(&finished("web", false)));
}

#[tokio::test]
async fn a_vm_whose_agent_is_off_is_not_asked_for_its_address() {
    let fake = Arc::new(FakeTransport::new());
    fake.always(
        &["qm", "guest", "cmd"],
        FakeReply::Fail(255, NO_AGENT.into()),
    );
    let mut vp = running_web();
    vp.no_agent = true;
    let o = ApplyOptions {
        wait: true,
        wait_timeout: Duration::from_secs(1),
        boot_window: Duration::ZERO,
        ..opts()
    };
    let run = run(plan_of(vec![vp]), &fake, &[100], o).await;
    let sent = fake.sent_lines();
    assert!(sent.iter().all(|l| !l.starts_with("qm guest")), "{sent:?}");
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Ok);
    assert_eq!(r.ip, None);
}
