//! Applying a plan: each VM's steps in order, VMs side by side (bounded per
//! node), with honest checks, id re-allocation, rollback and the wait for
//! the guest agent.
//!
//! A VM's steps go to its node in one round trip where it is safe (the
//! shell stops at the first failing command and reports each status back);
//! only the classic import sequence needs a second one, for the volume name.

use crate::script::StepOutput;
use crate::transport::{Transport, TransportError};
use pvefleet_model::{Command, Qm, QmOptions, VmId};
use pvefleet_plan::diff::{Action, Check, Plan, Prelude, Step, Upload, VmPlan, IMPORTED_VOLUME};
use pvefleet_plan::observed::parse_agent_addresses;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

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
}

/// Progress of a run.
#[derive(Clone, Debug)]
pub enum Event {
    /// A VM's work starts.
    Started { name: String },
    /// A command is sent.
    Command { name: String, line: String },
    /// Something worth saying.
    Note { name: String, message: String },
    /// A VM is done.
    Finished { name: String, ok: bool },
}

/// How a VM ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmOutcome {
    /// Converged.
    Ok,
    /// Something failed.
    Failed,
    /// Not touched: managed by someone else, or not plannable.
    Skipped,
}

/// The result of one VM.
#[derive(Clone, Debug, Serialize)]
pub struct VmResult {
    /// Name.
    pub name: String,
    /// VM id.
    pub vmid: Option<VmId>,
    /// Node.
    pub node: String,
    /// Planned action.
    pub action: Action,
    /// Outcome.
    pub result: VmOutcome,
    /// Address from the guest agent.
    pub ip: Option<String>,
    /// Seconds spent.
    pub seconds: f64,
    /// What went wrong.
    pub error: Option<String>,
    /// The half-created VM was destroyed again.
    pub rolled_back: bool,
    /// Keys waiting for a reboot.
    pub reboot_pending: Vec<String>,
}

impl VmResult {
    /// The result before anything is sent: skipped for a conflict or a
    /// planning error, else ok so far.
    fn of(vp: &VmPlan) -> Self {
        let skipped = matches!(vp.action, Action::Conflict | Action::Error);
        Self {
            name: vp.name.clone(),
            vmid: vp.vmid,
            node: vp.node.clone(),
            action: vp.action,
            result: if skipped {
                VmOutcome::Skipped
            } else {
                VmOutcome::Ok
            },
            ip: None,
            seconds: 0.0,
            error: if skipped { vp.message.clone() } else { None },
            rolled_back: false,
            reboot_pending: vp.reboot_pending.clone(),
        }
    }
}

/// Callback for events.
pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

struct Ids {
    used: Mutex<BTreeSet<u32>>,
}

impl Ids {
    fn next(&self, after: u32) -> Option<VmId> {
        let mut used = self.used.lock().ok()?;
        let mut c = after + 1;
        while used.contains(&c) {
            c += 1;
        }
        used.insert(c);
        VmId::new(i64::from(c)).ok()
    }
}

fn judge(step: &Step, out: &StepOutput) -> Result<(), String> {
    match out.exit {
        None => Err("not run".into()),
        Some(0) if step.check == Check::QuietStderr && !out.stderr.trim().is_empty() => {
            Err(out.stderr.trim().to_string())
        }
        Some(0) => Ok(()),
        Some(code) => {
            let msg = out.stderr.trim();
            Err(if msg.is_empty() {
                ["exit ", &code.to_string()].concat()
            } else {
                msg.to_string()
            })
        }
    }
}

/// The volume named by an import (both output formats, CONTRACT §4.2).
pub fn imported_volume(stdout: &str) -> Option<String> {
    for line in stdout.lines().rev() {
        if let Some(rest) = line.split("successfully imported disk '").nth(1) {
            return rest.split('\'').next().map(str::to_string);
        }
        if let Some(rest) = line.split("Successfully imported disk as '").nth(1) {
            let inner = rest.split('\'').next()?;
            return inner.split_once(':').map(|(_, v)| v.to_string());
        }
    }
    None
}

fn substitute(step: &Step, volume: &str) -> Step {
    let mut s = step.clone();
    if let Command::Qm(Qm::Set { options, .. }) = &mut s.command {
        let mut o = QmOptions::new();
        for (k, v) in options.iter() {
            o.push(
                k,
                if v == IMPORTED_VOLUME {
                    volume.to_string()
                } else {
                    v.to_string()
                },
            );
        }
        *options = o;
    }
    s
}

/// Lock answers after which the operation surely did not happen (CONTRACT
/// §11): the config flock or the storage lock timed out, or the VM carries a
/// `lock:` of another operation.
fn is_lock_timeout(stderr: &str) -> bool {
    (stderr.contains("can't lock file") && stderr.contains("got timeout"))
        || stderr.contains("got lock request timeout")
        || stderr.starts_with("VM is locked")
}

fn already_exists(stderr: &str) -> bool {
    stderr.contains("already exists") || stderr.contains("config file already exists")
}

/// One node's share of a run: its transport, its permits (`--parallel`),
/// and what all nodes share.
struct Lane {
    node: String,
    transport: Arc<Transport>,
    report: Reporter,
    ids: Arc<Ids>,
    permits: Arc<Semaphore>,
    pre: Arc<Prerequisites>,
    opts: ApplyOptions,
}

impl Lane {
    fn say(&self, name: &str, message: String) {
        (self.report)(Event::Note {
            name: name.into(),
            message,
        });
    }

    /// Runs steps; returns Err((message, reserved)).
    async fn run_steps(&self, vp: &mut VmPlan) -> Result<(), (String, bool)> {
        let mut reserved = false;
        let mut attempts = 0;
        let mut lock_waits = 0;
        let mut backoff = Duration::from_millis(500);
        let mut i = 0;
        // Where the storage lock is bounded, the allocating steps go in a
        // round trip of their own, holding one of its permits.
        let bound = self.storage_permits(vp.storage_lock.as_deref());
        let alloc_end = vp
            .steps
            .iter()
            .rposition(|s| s.command.allocates())
            .map(|p| p + 1);
        'segments: while i < vp.steps.len() {
            // One round trip up to and including the next import.
            let mut end = vp.steps[i..]
                .iter()
                .position(|s| s.check == Check::Import)
                .map(|p| i + p + 1)
                .unwrap_or(vp.steps.len());
            let storage_permit = match (&bound, alloc_end) {
                (Some(sem), Some(a)) if i < a => {
                    end = end.min(a);
                    sem.clone().acquire_owned().await.ok()
                }
                _ => None,
            };
            let segment: Vec<Step> = vp.steps[i..end].to_vec();
            for s in &segment {
                (self.report)(Event::Command {
                    name: vp.name.clone(),
                    line: s.command.redacted(),
                });
            }
            let argvs: Vec<Vec<String>> = segment.iter().map(|s| s.command.argv()).collect();
            let outs = match self.transport.run_batch(&argvs, true).await {
                Ok(o) => o,
                Err(e) => {
                    return Err((
                        e.to_string(),
                        reserved || segment.iter().any(|s| s.check == Check::Reserve),
                    ))
                }
            };
            drop(storage_permit);
            for (k, (step, out)) in segment.iter().zip(&outs).enumerate() {
                match judge(step, out) {
                    Ok(()) => {
                        if step.check == Check::Reserve {
                            reserved = true;
                        }
                        if step.check == Check::Import {
                            let Some(vol) = imported_volume(&out.stdout) else {
                                return Err(("cannot find the imported volume in the output of qm importdisk".into(), reserved));
                            };
                            if let Some(next) = vp.steps.get(end) {
                                vp.steps[end] = substitute(next, &vol);
                            }
                        }
                    }
                    Err(msg)
                        if step.check == Check::Reserve
                            && already_exists(&msg)
                            && vp.vmid_allocated
                            && attempts < 20 =>
                    {
                        // The id was taken since we looked: take the next free
                        // one and send the segment again.
                        attempts += 1;
                        let Some(old) = vp.vmid else {
                            return Err(("no VM id".into(), false));
                        };
                        let Some(new) = self.ids.next(old.get()) else {
                            return Err(("no free VM id".into(), false));
                        };
                        self.say(
                            &vp.name,
                            [
                                "vmid ",
                                &old.to_string(),
                                " was taken meanwhile; using ",
                                &new.to_string(),
                            ]
                            .concat(),
                        );
                        vp.vmid = Some(new);
                        for s in vp.steps.iter_mut() {
                            s.command = s.command.retarget(old, new);
                        }
                        continue 'segments;
                    }
                    Err(msg) if is_lock_timeout(&msg) && lock_waits < 6 => {
                        // A lock timeout means the command did not run: send
                        // it and the rest again after a pause.
                        lock_waits += 1;
                        self.say(
                            &vp.name,
                            [
                                msg.as_str(),
                                "; retrying in ",
                                &backoff.as_millis().to_string(),
                                " ms",
                            ]
                            .concat(),
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(8));
                        i += k;
                        continue 'segments;
                    }
                    Err(msg) => {
                        let lock_clash =
                            msg.contains("got timeout") && step.check == Check::Reserve;
                        let ours = reserved
                            || (step.check == Check::Reserve
                                && !already_exists(&msg)
                                && !lock_clash);
                        let what: Vec<String> = step.command.argv().into_iter().take(3).collect();
                        return Err(([what.join(" "), ": ".into(), msg].concat(), ours));
                    }
                }
            }
            i = end;
        }
        Ok(())
    }

    async fn rollback(&self, vp: &VmPlan) -> bool {
        let Some(vmid) = vp.vmid else { return false };
        // Only what this run created goes: check the VM carries our tag or the
        // create lock before destroying it.
        let cfg = self
            .transport
            .run(Command::Qm(Qm::Config { vmid }).argv())
            .await;
        let ours = match &cfg {
            Ok(o) if o.success() => {
                o.stdout
                    .lines()
                    .any(|l| l.starts_with("tags:") && l.contains(pvefleet_model::OWNER_TAG))
                    || o.stdout
                        .lines()
                        .any(|l| l == "lock: create" || l == "lock: clone")
            }
            _ => false,
        };
        if !ours {
            return cfg.is_ok_and(|o| !o.success());
        }
        let cmds = vec![
            Command::Qm(Qm::Stop {
                vmid,
                skiplock: true,
            })
            .argv(),
            Command::Qm(Qm::Destroy {
                vmid,
                skiplock: true,
            })
            .argv(),
        ];
        for c in &cmds {
            (self.report)(Event::Command {
                name: vp.name.clone(),
                line: pvefleet_model::shell::quote_argv(c).unwrap_or_default(),
            });
        }
        matches!(self.transport.run_batch(&cmds, false).await, Ok(o) if o.get(1).is_some_and(StepOutput::success))
    }

    async fn agent_ip(&self, vp: &VmPlan, wait: bool) -> Result<Option<String>, String> {
        let Some(vmid) = vp.vmid else { return Ok(None) };
        let argv = Command::Qm(Qm::GuestCmd {
            vmid,
            command: "network-get-interfaces".into(),
        })
        .argv();
        let start = Instant::now();
        let mut delay = Duration::from_millis(250);
        let mut warned = false;
        loop {
            let last = match self.transport.run(argv.clone()).await {
                Ok(out) if out.success() => match parse_agent_addresses(out.stdout.as_bytes()) {
                    Ok(addrs) => {
                        let found = pick_address(&addrs, vp.expect_ip);
                        if found.is_some() {
                            return Ok(found);
                        }
                        "the guest agent reports no matching address yet".to_string()
                    }
                    Err(e) => e.to_string(),
                },
                Ok(out) => out.stderr.trim().to_string(),
                Err(e) => e.to_string(),
            };
            if !wait {
                return Ok(None);
            }
            if !warned
                && start.elapsed() >= self.opts.boot_window
                && last.contains("guest agent is not running")
            {
                warned = true;
                self.say(&vp.name, "the guest agent has not answered since boot: the image probably lacks qemu-guest-agent (install it via cloud-init or use an image that has it)".into());
            }
            if start.elapsed() + delay > self.opts.wait_timeout {
                return Err([
                    "no address from the guest agent after ",
                    &self.opts.wait_timeout.as_secs().to_string(),
                    " s: ",
                    &last,
                ]
                .concat());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// The permits of a storage lock, when it is bounded.
    fn storage_permits(&self, lock: Option<&str>) -> Option<Arc<Semaphore>> {
        lock.and_then(|l| self.pre.storage.get(l)).cloned()
    }

    /// Uploads `plan.uploads[i]` once; later callers wait for the first.
    async fn upload(&self, i: usize) -> bool {
        let Some((u, done)) = self.pre.uploads.get(i) else {
            return false;
        };
        *done
            .get_or_init(|| async {
                match self.transport.upload(&u.dir, &u.path, &u.content).await {
                    Ok(()) => true,
                    Err(e) => {
                        self.say(&u.node, e.to_string());
                        false
                    }
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
                self.say(&p.node, ["preparing ", &p.label].concat());
                // The template is made like a VM: the same id re-allocation,
                // lock retries, storage bound and rollback.
                let mut vp = VmPlan {
                    name: p.label.clone(),
                    vmid: Some(p.vmid),
                    vmid_allocated: true,
                    node: p.node.clone(),
                    action: Action::Create,
                    steps: p.steps.clone(),
                    uploads: Vec::new(),
                    prelude: None,
                    storage_lock: Some(p.storage_lock.clone()),
                    changes: Vec::new(),
                    reboot_pending: Vec::new(),
                    message: None,
                    expect_ip: None,
                    running: false,
                    starts: false,
                };
                match self.run_steps(&mut vp).await {
                    Ok(()) => vp.vmid,
                    Err((msg, ours)) => {
                        self.say(&p.node, ["failed: ", &p.label, ": ", &msg].concat());
                        if ours && !self.opts.keep_failed {
                            self.rollback(&vp).await;
                        }
                        None
                    }
                }
            })
            .await
    }

    /// Runs a VM's steps while holding one of its node's permits. Returns
    /// the result so far, and the plan again when the guest agent is to be
    /// waited for: that wait happens after the permit is released, since
    /// waiting for a guest to boot costs the host nothing and must not keep
    /// other VMs waiting.
    async fn vm_steps(&self, mut vp: VmPlan) -> (VmResult, Option<VmPlan>) {
        let mut r = VmResult::of(&vp);
        if r.result == VmOutcome::Skipped {
            return (r, None);
        }
        // What this VM depends on, done once for all that need it and
        // without a permit while waiting for it.
        let mut unready: Option<&str> = None;
        for &u in &vp.uploads {
            if !self.upload(u).await {
                unready = Some("the key file could not be written to the node");
            }
        }
        if let Some(p) = vp.prelude.filter(|_| unready.is_none()) {
            match self.prelude(p).await {
                Some(actual) => {
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
                }
                None => unready = Some("the image cache template could not be prepared"),
            }
        }
        if let Some(why) = unready {
            r.result = VmOutcome::Failed;
            r.error = Some(why.into());
            (self.report)(Event::Finished {
                name: vp.name.clone(),
                ok: false,
            });
            return (r, None);
        }
        let _held = self.permits.acquire().await;
        let started = Instant::now();
        (self.report)(Event::Started {
            name: vp.name.clone(),
        });
        if let Err((msg, ours)) = self.run_steps(&mut vp).await {
            r.vmid = vp.vmid;
            r.result = VmOutcome::Failed;
            r.error = Some(msg);
            if vp.action == Action::Create && ours && !self.opts.keep_failed {
                r.rolled_back = self.rollback(&vp).await;
            }
            r.seconds = started.elapsed().as_secs_f64();
            (self.report)(Event::Finished {
                name: vp.name.clone(),
                ok: false,
            });
            return (r, None);
        }
        r.vmid = vp.vmid;
        r.seconds = started.elapsed().as_secs_f64();
        // --no-wait: no agent query at all, not even one probe.
        if vp.running && self.opts.wait {
            return (r, Some(vp));
        }
        (self.report)(Event::Finished {
            name: vp.name.clone(),
            ok: true,
        });
        (r, None)
    }

    /// Waits for the guest agent of a VM whose steps succeeded.
    async fn vm_wait(&self, vp: VmPlan, mut r: VmResult) -> VmResult {
        let started = Instant::now();
        let wait = vp.starts || vp.action == Action::Create;
        match self.agent_ip(&vp, wait).await {
            Ok(ip) => r.ip = ip,
            Err(e) => {
                r.result = VmOutcome::Failed;
                r.error = Some(e);
            }
        }
        r.seconds += started.elapsed().as_secs_f64();
        (self.report)(Event::Finished {
            name: vp.name.clone(),
            ok: r.result == VmOutcome::Ok,
        });
        r
    }

    /// Drives one node's VMs: their steps side by side under the node's
    /// permits, each agent wait as soon as its VM's steps are done, and the
    /// removal of the uploaded key files once no step needs them.
    async fn node(self: Arc<Self>, vms: Vec<(usize, VmPlan)>) -> Vec<(usize, VmResult)> {
        let mut steps = tokio::task::JoinSet::new();
        for (index, vp) in vms {
            let lane = self.clone();
            steps.spawn(async move { (index, lane.vm_steps(vp).await) });
        }
        let mut waits = tokio::task::JoinSet::new();
        let mut done = Vec::new();
        while let Some(joined) = steps.join_next().await {
            let Ok((index, (r, next))) = joined else {
                continue;
            };
            match next {
                Some(vp) => {
                    let lane = self.clone();
                    waits.spawn(async move { (index, lane.vm_wait(vp, r).await) });
                }
                None => done.push((index, r)),
            }
        }
        let dirs: BTreeSet<&str> = self
            .pre
            .uploads
            .iter()
            .filter(|(u, up)| u.node == self.node && up.initialized())
            .map(|(u, _)| u.dir.as_str())
            .collect();
        for dir in dirs {
            self.transport.remove_dir(dir).await;
        }
        while let Some(joined) = waits.join_next().await {
            if let Ok(r) = joined {
                done.push(r);
            }
        }
        done
    }
}

/// Work that several VMs of a node wait for, each done once by whichever
/// VM needs it first: key file uploads and image-cache templates.
struct Prerequisites {
    /// Permits of the storage locks that need a bound of their own.
    storage: BTreeMap<String, Arc<Semaphore>>,
    uploads: Vec<(Upload, OnceCell<bool>)>,
    preludes: Vec<(Prelude, OnceCell<Option<VmId>>)>,
}

/// Applies `plan`. `used_ids` are the VM ids known in the cluster.
///
/// Every node is driven at once and on its own: its VMs wait only for what
/// they need on that node (its key upload, their cache template), so a slow
/// or failing node does not hold up the others.
pub async fn apply(
    plan: Plan,
    transports: &BTreeMap<String, Arc<Transport>>,
    used_ids: BTreeSet<u32>,
    opts: ApplyOptions,
    report: Reporter,
) -> Vec<VmResult> {
    let ids = Arc::new(Ids {
        used: Mutex::new(used_ids),
    });
    // A storage lock gets permits of its own only where more allocations
    // could meet there than --parallel-storage: a shared storage used from
    // several nodes, or a local one with --parallel above the bound.
    let mut feeders: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for vp in &plan.vms {
        if let Some(l) = &vp.storage_lock {
            feeders.entry(l).or_default().insert(&vp.node);
        }
    }
    for p in &plan.preludes {
        feeders.entry(&p.storage_lock).or_default().insert(&p.node);
    }
    let bound = opts.parallel_storage.max(1);
    let storage = feeders
        .into_iter()
        .filter(|(_, nodes)| nodes.len() * opts.parallel.max(1) > bound)
        .map(|(l, _)| (l.to_string(), Arc::new(Semaphore::new(bound))))
        .collect();
    let pre = Arc::new(Prerequisites {
        storage,
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
    });
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
                let mut r = VmResult::of(&vp);
                if r.result == VmOutcome::Ok {
                    r.result = VmOutcome::Failed;
                    r.error = Some(["no connection to node ", &node].concat());
                }
                results.push((index, r));
            }
            continue;
        };
        let lane = Arc::new(Lane {
            node,
            transport,
            report: report.clone(),
            ids: ids.clone(),
            permits: Arc::new(Semaphore::new(opts.parallel.max(1))),
            pre: pre.clone(),
            opts: opts.clone(),
        });
        nodes.spawn(lane.node(vms));
    }
    while let Some(joined) = nodes.join_next().await {
        if let Ok(r) = joined {
            results.extend(r);
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Reads the guest agent's address of a running VM once (for `status`).
pub async fn probe_ip(transport: &Transport, vmid: VmId) -> Result<Option<String>, TransportError> {
    let out = transport
        .run(
            Command::Qm(Qm::GuestCmd {
                vmid,
                command: "network-get-interfaces".into(),
            })
            .argv(),
        )
        .await?;
    if !out.success() {
        return Ok(None);
    }
    Ok(parse_agent_addresses(out.stdout.as_bytes())
        .ok()
        .and_then(|a| pick_address(&a, None)))
}

/// The address to report: the expected one if the agent lists it, else
/// (without expectation) the first IPv4 address, else the first address.
fn pick_address(addrs: &[std::net::IpAddr], expect: Option<std::net::IpAddr>) -> Option<String> {
    match expect {
        Some(want) => addrs.iter().find(|a| **a == want),
        None => addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()),
    }
    .map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_import_formats() {
        assert_eq!(
            imported_volume("x\nunused0: successfully imported disk 'local-lvm:vm-100-disk-0'\n")
                .as_deref(),
            Some("local-lvm:vm-100-disk-0")
        );
        assert_eq!(
            imported_volume(
                "Successfully imported disk as 'unused0:local:100/vm-100-disk-1.raw'\n"
            )
            .as_deref(),
            Some("local:100/vm-100-disk-1.raw")
        );
        assert_eq!(imported_volume("nothing"), None);
    }
}
