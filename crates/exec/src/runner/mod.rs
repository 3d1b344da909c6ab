//! Applying a plan: each VM's steps in order, VMs side by side (bounded per
//! node), with honest checks, id re-allocation, rollback and the wait for
//! the guest agent.
//!
//! A VM's steps go to its node in one round trip where it is safe (the
//! shell stops at the first failing command and reports each status back);
//! only the classic import sequence needs a second one, for the volume name.
//! The rules that follow each step's answer are in [`machine`], the
//! classification of answers in [`outcome`], the driver in [`steps`].

pub mod agent;
pub mod claim;
pub mod cloudinit;
mod download;
pub mod machine;
pub mod outcome;
mod snippets;
pub mod steps;
mod tasks;

pub use agent::probe_ip;
pub use outcome::{StepFailure, StepOutcome};

use crate::event::{Event, Reporter, VmOutcome, VmResult};
use crate::transport::Transport;
use pvefleet_model::spec::WaitFor;
use pvefleet_model::{Command, Qm, VmId};
use pvefleet_plan::types::Download;
use pvefleet_plan::{Action, Plan, Prelude, StorageLock, Upload, VmPlan};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tasks::Tasks;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Wait for the guest agent to report an address.
    pub wait: bool,
    /// How long to wait for it.
    pub wait_timeout: Duration,
    /// After this long without any agent answer, say that the image probably
    /// lacks qemu-guest-agent.
    pub boot_window: Duration,
    /// Keep VMs whose creation failed half-way.
    pub keep_failed: bool,
    /// VMs worked on at once per node.
    pub parallel: usize,
    /// Allocating steps at once per storage lock (a local storage's on its
    /// node, a shared storage's across the cluster); applied only where
    /// more than this many could otherwise meet there.
    pub parallel_storage: usize,
    /// Cancelled when the user interrupts the run: no new step is started,
    /// the round trips under way end (bounded by the command timeout), VMs
    /// this run created and did not finish are rolled back.
    pub cancel: CancellationToken,
}

/// Why a VM that never started or was stopped half-way says so.
pub const INTERRUPTED: &str = "interrupted";

/// The transports of a run, by node name.
pub type Transports = BTreeMap<String, Arc<dyn Transport>>;

/// VM ids taken anywhere in the cluster, shared by all nodes of a run.
struct Ids {
    used: Mutex<BTreeSet<u32>>,
}

impl Ids {
    /// Records ids found in use.
    fn mark_used(&self, ids: &[u32]) {
        if let Ok(mut used) = self.used.lock() {
            used.extend(ids);
        }
    }

    fn next(&self, after: u32) -> Option<VmId> {
        let mut used = self.used.lock().ok()?;
        let mut c = after.checked_add(1)?;
        while used.contains(&c) {
            c = c.checked_add(1)?;
        }
        used.insert(c);
        VmId::new(i64::from(c)).ok()
    }
}

/// Work that several VMs of a node wait for, each done once by whichever
/// VM needs it first: key file uploads and image-cache templates.
struct Prerequisites {
    /// Permits of the storage locks that need a bound of their own.
    storage: BTreeMap<StorageLock, Arc<Semaphore>>,
    /// The run's private upload folder on each node.
    dirs: BTreeMap<String, String>,
    uploads: Vec<(Upload, OnceCell<bool>)>,
    preludes: Vec<(Prelude, OnceCell<Option<VmId>>)>,
    /// Images by URL, each downloaded once (on its node's transport).
    downloads: Vec<(Download, OnceCell<Result<(), String>>)>,
    transports: Transports,
}

impl Prerequisites {
    /// The path on its node of upload `i`.
    fn upload_path(&self, i: usize) -> Option<String> {
        let (u, _) = self.uploads.get(i)?;
        let dir = self.dirs.get(&u.node)?;
        Some(format!("{dir}/{}", u.file_name))
    }
}

/// The private folder of a run's uploads on `node`: node names are host
/// names, anything else is kept out of the path.
fn upload_dir(run: &str, node: &str) -> String {
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/tmp/pvefleet-{run}-{safe}")
}

/// One node's share of a run: its transport, its permits (`--parallel`),
/// and what all nodes share.
struct Lane {
    node: String,
    /// Where VMs without a file-given id claim their name.
    claims: Option<tokio::sync::mpsc::Sender<claim::Request>>,
    transport: Arc<dyn Transport>,
    report: Arc<dyn Reporter>,
    ids: Arc<Ids>,
    permits: Arc<Semaphore>,
    pre: Arc<Prerequisites>,
    opts: ApplyOptions,
}

impl Lane {
    fn emit(&self, event: Event) {
        self.report.report(event);
    }

    fn say(&self, name: &str, message: String) {
        self.emit(Event::Note {
            name: name.into(),
            message,
        });
    }

    fn finished(&self, name: &str, ok: bool) {
        self.emit(Event::Finished {
            name: name.into(),
            ok,
        });
    }

    /// The permits of a storage lock, when it is bounded.
    fn storage_permits(&self, lock: Option<&StorageLock>) -> Option<Arc<Semaphore>> {
        lock.and_then(|l| self.pre.storage.get(l)).cloned()
    }

    /// Uploads `plan.uploads[i]` once; later callers wait for the first.
    async fn upload(&self, i: usize) -> bool {
        let (Some((u, done)), Some(path)) = (self.pre.uploads.get(i), self.pre.upload_path(i))
        else {
            return false;
        };
        let Some(dir) = self.pre.dirs.get(&u.node) else {
            return false;
        };
        *done
            .get_or_init(|| async {
                let sent = match self.transport.upload(dir, &path, &u.content).await {
                    Ok(()) => true,
                    Err(e) => {
                        self.say(&u.node, e.to_string());
                        false
                    }
                };
                match (&u.install_to, sent) {
                    (Some(dest), true) => self.install(&u.node, &path, dest).await,
                    _ => sent,
                }
            })
            .await
    }

    /// Prepares image-cache template `plan.preludes[i]` once, holding one of
    /// the node's permits; VMs that clone it wait for the first caller.
    /// Returns the template's id: the planned one, or the next free one when
    /// another run took it meanwhile.
    async fn prelude(&self, i: usize) -> Option<VmId> {
        let (p, done) = self.pre.preludes.get(i)?;
        *done
            .get_or_init(|| async {
                let _held = self.permits.acquire().await;
                self.say(&p.node, format!("preparing {}", p.label));
                // The template is made like a VM: the same id re-allocation,
                // lock retries, storage bound and rollback.
                let mut vp = VmPlan::new(&p.label, &p.node);
                vp.vmid = Some(p.vmid);
                vp.vmid_allocated = true;
                vp.action = Action::Create;
                vp.steps = p.steps.clone();
                vp.storage_lock = Some(p.storage_lock.clone());
                match self.run_steps(&mut vp, false).await {
                    Ok(warnings) => {
                        for w in warnings {
                            self.say(&p.node, format!("{}: {w}", p.label));
                        }
                        vp.vmid
                    }
                    Err(f) => {
                        self.say(&p.node, format!("failed: {}: {}", p.label, f.error));
                        if let (true, false, Some(id)) = (f.ours, self.opts.keep_failed, vp.vmid) {
                            self.rollback(&p.label, id, f.made).await;
                        }
                        None
                    }
                }
            })
            .await
    }

    /// Waits for what the VM depends on (its key upload, its cache
    /// template), each done once for all that need it, without a permit.
    /// Returns why the VM cannot proceed, if it cannot.
    async fn prerequisites(&self, vp: &mut VmPlan) -> Option<String> {
        for &u in &vp.uploads {
            if !self.upload(u).await {
                let snippet = self
                    .pre
                    .uploads
                    .get(u)
                    .is_some_and(|(x, _)| x.install_to.is_some());
                return Some(if snippet {
                    "the cloud-init snippet could not be written to the node".into()
                } else {
                    "the key file could not be written to the node".into()
                });
            }
        }
        if let Some(d) = vp.download {
            if let Err(e) = self.download(d).await {
                return Some(e);
            }
        }
        let p = vp.prelude?;
        let Some(actual) = self.prelude(p).await else {
            return Some("the image cache template could not be prepared".into());
        };
        let planned = self.pre.preludes.get(p).map(|(x, _)| x.vmid);
        if planned != Some(actual) {
            for s in &mut vp.steps {
                if let Command::Qm(Qm::Clone { vmid, .. }) = &mut s.command {
                    if Some(*vmid) == planned {
                        *vmid = actual;
                    }
                }
            }
        }
        None
    }

    /// Claims the name of a VM the file gives no id (see [`claim`]): on
    /// success its first step is done and the rest move to the id it got
    /// (true: this run made it). A VM another run made meanwhile, or a
    /// failed claim, ends here with its result.
    async fn claim(&self, vp: &mut VmPlan) -> Result<bool, VmResult> {
        let (Some(claims), true, Some(vmid)) = (
            &self.claims,
            vp.claim_name && vp.action == Action::Create,
            vp.vmid,
        ) else {
            return Ok(false);
        };
        let Some(first) = vp.steps.first() else {
            return Ok(false);
        };
        let make = match &first.command {
            Command::Qm(Qm::Clone { .. }) => first.command.clone(),
            _ => match claim::bare_create(first) {
                Some(bare) => bare,
                None => return Ok(false),
            },
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request = claim::Request {
            node: vp.node.clone(),
            name: vp.name.clone(),
            vmid,
            make,
            reply: tx,
        };
        let r = VmResult::of(vp);
        if claims.send(request).await.is_err() {
            return Err(r.failed("the name could not be claimed: the run is ending"));
        }
        match rx.await {
            Ok(claim::Claim::Made(id)) => {
                claim::claimed_steps(vp, vmid, id);
                Ok(true)
            }
            Ok(claim::Claim::MadeByAnother(id)) => {
                self.say(&vp.name, format!("made by another run at the same time (vmid {id}); this run leaves it to that one"));
                Err(VmResult {
                    vmid: Some(id),
                    made_by_another: true,
                    ..r
                })
            }
            Ok(claim::Claim::Foreign(id)) => Err(r.failed(format!(
                "a VM named '{}' (id {id}) that pvefleet does not manage appeared meanwhile; it is left untouched",
                vp.name
            ))),
            Ok(claim::Claim::Failed(why)) => Err(r.failed(why)),
            Err(_) => Err(r.failed("the name could not be claimed")),
        }
    }

    /// Runs a VM's steps while holding one of its node's permits. Returns
    /// the result so far, and the plan again when the guest agent is to be
    /// waited for: that wait happens after the permit is released, since
    /// waiting for a guest to boot costs the host nothing and must not keep
    /// other VMs waiting.
    async fn vm_steps(&self, mut vp: VmPlan) -> (VmResult, Option<VmPlan>) {
        let r = VmResult::of(&vp);
        if r.result == VmOutcome::Skipped {
            return (r, None);
        }
        if let Some(why) = self.prerequisites(&mut vp).await {
            self.finished(&vp.name, false);
            return (r.failed(why), None);
        }
        let _held = tokio::select! {
            held = self.permits.acquire() => held,
            () = self.opts.cancel.cancelled() => {
                self.finished(&vp.name, false);
                return (r.failed(format!("{INTERRUPTED} before it started; nothing was sent")), None);
            }
        };
        if self.opts.cancel.is_cancelled() {
            self.finished(&vp.name, false);
            return (
                r.failed(format!("{INTERRUPTED} before it started; nothing was sent")),
                None,
            );
        }
        let started = Instant::now();
        self.emit(Event::Started {
            name: vp.name.clone(),
        });
        let claimed = match self.claim(&mut vp).await {
            Ok(claimed) => claimed,
            Err(done) => {
                let ok = done.result == VmOutcome::Ok;
                let done = VmResult {
                    seconds: started.elapsed().as_secs_f64(),
                    ..done
                };
                self.finished(&vp.name, ok);
                return (done, None);
            }
        };
        let run = self.run_steps(&mut vp, claimed).await;
        let mut r = VmResult { vmid: vp.vmid, ..r };
        if let Ok(warnings) = &run {
            r.warnings.clone_from(warnings);
        }
        if let Err(f) = run {
            r = r.failed(f.error);
            if let (Action::Create, true, false, Some(id)) =
                (vp.action, f.ours, self.opts.keep_failed, vp.vmid)
            {
                r.rolled_back = self.rollback(&vp.name, id, f.made).await;
            }
            r.seconds = started.elapsed().as_secs_f64();
            self.finished(&vp.name, false);
            return (r, None);
        }
        r.seconds = started.elapsed().as_secs_f64();
        // --no-wait, `wait: none` or the agent turned off: no agent query
        // at all, not even one probe.
        if vp.running && self.opts.wait && vp.wait != WaitFor::None && !vp.no_agent {
            return (r, Some(vp));
        }
        self.finished(&vp.name, true);
        (r, None)
    }

    /// Waits for the guest agent of a VM whose steps succeeded.
    async fn vm_wait(&self, vp: VmPlan, mut r: VmResult) -> VmResult {
        let started = Instant::now();
        let wait = vp.starts || vp.action == Action::Create;
        match self.agent_ip(&vp, wait).await {
            Ok(ip) => r.ip = ip,
            Err(e) => r = r.failed(e),
        }
        if wait && vp.wait == WaitFor::CloudInit && r.result == VmOutcome::Ok {
            match self.cloud_init(&vp).await {
                Ok(warning) => r.warnings.extend(warning),
                Err(e) => r = r.failed(e),
            }
        }
        r.seconds += started.elapsed().as_secs_f64();
        self.finished(&vp.name, r.result == VmOutcome::Ok);
        r
    }

    /// Drives one node's VMs: their steps side by side under the node's
    /// permits, each agent wait as soon as its VM's steps are done, and the
    /// removal of the uploaded key files once no step needs them. A VM task
    /// that panics is a failed VM, never a lost one.
    async fn node(self: Arc<Self>, vms: Vec<(usize, VmPlan)>) -> Vec<(usize, VmResult)> {
        let mut steps = Tasks::default();
        for (index, vp) in vms {
            let lane = self.clone();
            let before = VmResult::of(&vp);
            steps.spawn(index, before, async move { lane.vm_steps(vp).await });
        }
        let mut waits = Tasks::default();
        let mut done = Vec::new();
        while let Some((index, joined)) = steps.next().await {
            match joined {
                (r, Some(vp)) => {
                    let lane = self.clone();
                    let before = r.clone();
                    waits.spawn(index, before, async move { lane.vm_wait(vp, r).await });
                }
                (r, None) => done.push((index, r)),
            }
        }
        self.remove_uploads().await;
        while let Some((index, r)) = waits.next().await {
            done.push((index, r));
        }
        done
    }

    /// Removes this node's upload folder once every step is sent.
    async fn remove_uploads(&self) {
        let used = self
            .pre
            .uploads
            .iter()
            .any(|(u, up)| u.node == self.node && up.initialized());
        if let (true, Some(dir)) = (used, self.pre.dirs.get(&self.node)) {
            self.transport.remove_dir(dir).await;
        }
    }
}

/// Where a storage lock gets permits of its own: only where more
/// allocations could meet there than `--parallel-storage` (a shared
/// storage used from several nodes, or a local one with `--parallel`
/// above the bound).
fn storage_bounds(plan: &Plan, opts: &ApplyOptions) -> BTreeMap<StorageLock, Arc<Semaphore>> {
    let mut feeders: BTreeMap<&StorageLock, BTreeSet<&str>> = BTreeMap::new();
    for vp in &plan.vms {
        if let Some(l) = &vp.storage_lock {
            feeders.entry(l).or_default().insert(&vp.node);
        }
    }
    for p in &plan.preludes {
        feeders.entry(&p.storage_lock).or_default().insert(&p.node);
    }
    let bound = opts.parallel_storage.max(1);
    feeders
        .into_iter()
        .filter(|(_, nodes)| nodes.len() * opts.parallel.max(1) > bound)
        .map(|(l, _)| (l.clone(), Arc::new(Semaphore::new(bound))))
        .collect()
}

/// Applies `plan`. `used_ids` are the VM ids known in the cluster.
///
/// Every node is driven at once and on its own: its VMs wait only for what
/// they need on that node (its key upload, their cache template), so a slow
/// or failing node does not hold up the others. The run's upload folder on
/// each node is named here, fresh for every run.
pub async fn apply(
    plan: Plan,
    transports: &Transports,
    used_ids: BTreeSet<u32>,
    opts: ApplyOptions,
    report: Arc<dyn Reporter>,
) -> Vec<VmResult> {
    let ids = Arc::new(Ids {
        used: Mutex::new(used_ids),
    });
    let run: String = std::iter::repeat_with(fastrand::lowercase)
        .take(12)
        .collect();
    let pre = Arc::new(Prerequisites {
        storage: storage_bounds(&plan, &opts),
        dirs: transports
            .keys()
            .map(|n| (n.clone(), upload_dir(&run, n)))
            .collect(),
        uploads: plan
            .uploads
            .into_iter()
            .map(|u| (u, OnceCell::new()))
            .collect(),
        preludes: plan
            .preludes
            .into_iter()
            .map(|p| (p, OnceCell::new()))
            .collect(),
        downloads: plan
            .downloads
            .into_iter()
            .map(|d| (d, OnceCell::new()))
            .collect(),
        transports: transports.clone(),
    });
    let wants_claims = plan
        .vms
        .iter()
        .any(|v| v.claim_name && v.action == Action::Create);
    let (claims, claimer) = match wants_claims {
        true => {
            let (tx, rx) = tokio::sync::mpsc::channel(256);
            let claimer = claim::Claimer {
                rx,
                transports: transports.clone(),
                ids: ids.clone(),
                report: report.clone(),
            };
            (Some(tx), Some(tokio::spawn(claimer.serve())))
        }
        false => (None, None),
    };
    let mut by_node: BTreeMap<String, Vec<(usize, VmPlan)>> = BTreeMap::new();
    for (index, vp) in plan.vms.into_iter().enumerate() {
        by_node
            .entry(vp.node.clone())
            .or_default()
            .push((index, vp));
    }
    let mut results = Vec::new();
    let mut nodes = tokio::task::JoinSet::new();
    for (node, vms) in by_node {
        let Some(transport) = transports.get(&node).cloned() else {
            // No connection of this run reaches the node: nothing is sent.
            for (index, vp) in vms {
                let r = VmResult::of(&vp);
                let r = if r.result == VmOutcome::Ok {
                    r.failed(format!("no connection to node {node}"))
                } else {
                    r
                };
                results.push((index, r));
            }
            continue;
        };
        let lane = Arc::new(Lane {
            node,
            claims: claims.clone(),
            transport,
            report: report.clone(),
            ids: ids.clone(),
            permits: Arc::new(Semaphore::new(opts.parallel.max(1))),
            pre: pre.clone(),
            opts: opts.clone(),
        });
        nodes.spawn(lane.node(vms));
    }
    // Every lane holds a sender; the claimer ends with the last of them.
    drop(claims);
    while let Some(joined) = nodes.join_next().await {
        // A node task only joins VM tasks; each VM's panic is its own result.
        if let Ok(r) = joined {
            results.extend(r);
        }
    }
    if let Some(claimer) = claimer {
        let _ = claimer.await;
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
