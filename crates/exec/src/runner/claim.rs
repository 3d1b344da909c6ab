//! Names of VMs without a `vmid`, claimed once across concurrent runs.
//!
//! Proxmox guarantees unique VM ids, not names, and a name becomes visible
//! only when `qm create` ends. So a VM the file names without an id is
//! claimed under the cluster-wide pmxcfs lock [`FLEET_LOCK`] (CONTRACT
//! §19): take the lock, read every node's fresh guest list, create the VM
//! bare (name, tags, description: fast) or clone it, release. A name
//! another run made meanwhile is that run's VM, never a second one.
//!
//! Claims are batched: the VMs that ask while a claim is under way are
//! claimed together in the next one, so the lock is taken a few times per
//! run, not once per VM.

use super::outcome::StepFailure;
use super::Ids;
use crate::event::{Event, Reporter};
use crate::transport::{Judge, Transport};
use crate::Transports;
use pvefleet_model::command::CREATE_ONLY;
use pvefleet_model::{Command, Pvesh, Qm, VmId};
use pvefleet_plan::observed::parse_node_vms;
use pvefleet_plan::{lookup::is_managed, Step, VmPlan};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The pmxcfs lock under which names are claimed.
pub const FLEET_LOCK: &str = "pvefleet-names";

/// Seconds to wait for another run's claim to end: longer than pmxcfs's
/// 120 s, so a lock whose holder died is waited out.
const LOCK_WAIT_SECS: u32 = 130;

/// VMs claimed under one hold of the lock at most (it must be released
/// well within pmxcfs's 120 s).
const BATCH: usize = 32;

/// How a claim ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This run made the VM (bare, or the clone) with this id.
    Made(VmId),
    /// A VM pvefleet manages has the name: another run made it meanwhile.
    MadeByAnother(VmId),
    /// A VM pvefleet does not manage has the name now.
    Foreign(VmId),
    /// The claim failed.
    Failed(String),
}

/// A VM's request to claim its name on `node` with its first step.
pub struct Request {
    /// The node the VM goes to.
    pub node: String,
    /// Its name.
    pub name: String,
    /// Its planned id (another is taken when this one is in use).
    pub vmid: VmId,
    /// The command that makes it: a bare `qm create` or the `qm clone`.
    pub make: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Claim>,
}

/// The bare `qm create` that claims a planned create: name, tags and
/// description of the planned one and its create-only options (a pool),
/// nothing that takes time.
pub fn bare_create(step: &Step) -> Option<Command> {
    let Command::Qm(Qm::Create { vmid, options }) = &step.command else {
        return None;
    };
    // What `qm set` would refuse (`--pool`) must come with the create.
    let bare = options
        .filtered(|k| matches!(k, "name" | "tags" | "description") || CREATE_ONLY.contains(&k));
    Some(Command::Qm(Qm::Create {
        vmid: *vmid,
        options: bare,
    }))
}

/// Serves claims for one run until every sender is gone.
pub struct Claimer {
    /// Where requests arrive.
    pub rx: mpsc::Receiver<Request>,
    /// The run's transports: each node's claims take the lock through it.
    pub transports: Transports,
    /// Ids in use.
    pub(super) ids: Arc<Ids>,
    /// Progress.
    pub report: Arc<dyn Reporter>,
}

impl Claimer {
    /// Claims batches of requests until the run ends.
    pub async fn serve(mut self) {
        while let Some(first) = self.rx.recv().await {
            // Let the VMs that start together ask together.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.claim(batch).await;
        }
    }

    /// Claims a batch node by node: each node's requests under one hold of
    /// the lock, taken and released through that node's transport.
    async fn claim(&self, batch: Vec<Request>) {
        let mut by_node: BTreeMap<String, Vec<Request>> = BTreeMap::new();
        for r in batch {
            by_node.entry(r.node.clone()).or_default().push(r);
        }
        for (node, reqs) in by_node {
            match self.transports.get(&node).cloned() {
                Some(t) => self.claim_on(&node, t, reqs).await,
                None => fail_all(reqs, &format!("no connection to node {node}")),
            }
        }
    }

    /// One hold of the lock through `node`: take it and read every node's
    /// guests (one round trip), then make the VMs and release the lock in
    /// a second one, so that the node releases it even when this process
    /// dies meanwhile.
    async fn claim_on(&self, node: &str, t: Arc<dyn Transport>, reqs: Vec<Request>) {
        let nodes: Vec<String> = self.transports.keys().cloned().collect();
        let mut argvs = vec![Command::CfsLock {
            name: FLEET_LOCK.into(),
            wait_secs: LOCK_WAIT_SECS,
        }
        .argv()];
        argvs.extend(
            nodes
                .iter()
                .map(|n| Command::Pvesh(Pvesh::node_vms(n)).argv()),
        );
        let judges = vec![Judge::Exit; argvs.len()];
        let outs = match t.run_checked(&argvs, &judges).await {
            Ok(o) => o,
            Err(e) => return fail_all(reqs, &e.to_string()),
        };
        if !outs.first().is_some_and(|o| o.success()) {
            let why = outs
                .first()
                .map(|o| o.stderr.trim().to_string())
                .unwrap_or_default();
            return fail_all(reqs, &why);
        }
        let guests: Option<Vec<pvefleet_plan::ClusterVm>> = nodes
            .iter()
            .zip(outs.iter().skip(1))
            .map(|(n, out)| {
                parse_node_vms(n, out.stdout.as_bytes())
                    .ok()
                    .filter(|_| out.success())
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect());
        let unlock = Command::CfsUnlock {
            name: FLEET_LOCK.into(),
        }
        .argv();
        let Some(guests) = guests else {
            let _ = t.run(unlock).await;
            return fail_all(
                reqs,
                "the guests of the cluster could not be read under the lock",
            );
        };
        let todo = self.answer_taken(reqs, &guests);
        make_and_release(node, &t, todo, unlock, &self.report).await;
    }

    /// Answers the requests whose name a guest has; the others get a free
    /// id (none that a guest holds) and are returned.
    fn answer_taken(
        &self,
        reqs: Vec<Request>,
        guests: &[pvefleet_plan::ClusterVm],
    ) -> Vec<Request> {
        let mut names: BTreeMap<&str, (VmId, bool)> = BTreeMap::new();
        for g in guests {
            if let Some(n) = g.name.as_deref() {
                names.insert(n, (g.vmid, is_managed(g)));
            }
        }
        let held: Vec<u32> = guests.iter().map(|g| g.vmid.get()).collect();
        self.ids.mark_used(&held);
        let mut todo = Vec::new();
        for mut r in reqs {
            match names.get(r.name.as_str()) {
                Some((id, true)) => {
                    let _ = r.reply.send(Claim::MadeByAnother(*id));
                }
                Some((id, false)) => {
                    let _ = r.reply.send(Claim::Foreign(*id));
                }
                None => {
                    if held.contains(&r.vmid.get()) {
                        match self.ids.next(r.vmid.get()) {
                            Some(new) => {
                                r.make = r.make.retarget(r.vmid, new);
                                r.vmid = new;
                            }
                            None => {
                                let _ = r.reply.send(Claim::Failed("no free VM id".into()));
                                continue;
                            }
                        }
                    }
                    todo.push(r);
                }
            }
        }
        todo
    }
}

/// Makes the VMs on `node` and releases the lock, in one round trip.
async fn make_and_release(
    node: &str,
    t: &Arc<dyn Transport>,
    reqs: Vec<Request>,
    unlock: Vec<String>,
    report: &Arc<dyn Reporter>,
) {
    for r in &reqs {
        report.report(Event::Command {
            name: r.name.clone(),
            line: r.make.redacted(),
        });
    }
    let mut argvs: Vec<Vec<String>> = reqs.iter().map(|r| r.make.argv()).collect();
    argvs.push(unlock);
    let outs = match t.run_batch(&argvs, false).await {
        Ok(o) => o,
        Err(e) => return fail_all(reqs, &e.to_string()),
    };
    if !outs.last().is_some_and(|o| o.success()) {
        report.report(Event::Note {
            name: node.into(),
            message: "the cluster lock could not be released; pmxcfs lets it expire after 120 s"
                .into(),
        });
    }
    for (r, out) in reqs.into_iter().zip(outs) {
        if out.success() {
            let _ = r.reply.send(Claim::Made(r.vmid));
        } else {
            let failure = StepFailure {
                argv: r.make.argv(),
                exit: out.exit,
                stderr: out.stderr,
            };
            let _ = r.reply.send(Claim::Failed(failure.to_string()));
        }
    }
}

fn fail_all(reqs: Vec<Request>, why: &str) {
    for r in reqs {
        let _ = r.reply.send(Claim::Failed(why.to_string()));
    }
}

/// A claimed VM's steps: the claim made it (a bare create, or the clone),
/// so a planned `qm create` becomes a `qm set` of its options (but those
/// only `qm create` takes, which the claim sent) and a clone
/// is dropped; every step moves from the planned id to the claimed one.
pub(super) fn claimed_steps(vp: &mut VmPlan, planned: VmId, claimed: VmId) {
    if let Some(first) = vp.steps.first_mut() {
        match &first.command {
            Command::Qm(Qm::Create { options, .. }) => {
                first.command = Command::Qm(Qm::Set {
                    vmid: planned,
                    options: options.filtered(|k| !CREATE_ONLY.contains(&k)),
                    delete: Vec::new(),
                });
                first.check = pvefleet_plan::Check::Exit;
            }
            _ => {
                vp.steps.remove(0);
            }
        }
    }
    if planned != claimed {
        for s in vp.steps.iter_mut() {
            s.command = s.command.retarget(planned, claimed);
        }
    }
    vp.vmid = Some(claimed);
    vp.vmid_allocated = false;
    vp.claim_name = false;
}
