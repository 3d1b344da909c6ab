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
use pvefleet_exec::transport::Transport;
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::{Action, Check, InputSource, Plan, Step, VmPlan};
use std::collections::BTreeSet;
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
async fn rollback_is_refused_for_a_vm_that_is_not_ours() {
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
    assert_eq!(
        fake.sent_lines(),
        [
            "qm create 100 --name web",
            "qm set 100 --memory 2048",
            "qm start 100",
            "qm config 100",
        ]
    );
    let r = run.only();
    assert_eq!(r.result, VmOutcome::Failed);
    assert_eq!(r.error.as_deref(), Some("qm start 100: start failed"));
    assert!(!r.rolled_back);
    assert!(run.commands("web").iter().all(|l| !l.contains("destroy")));
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
