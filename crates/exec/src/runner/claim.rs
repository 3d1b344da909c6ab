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

use super::Ids;
use crate::event::{Event, Reporter};
use crate::runner::outcome::already_exists;
use crate::transport::{Judge, Transport};
use crate::Transports;
use pvefleet_model::{Command, Pvesh, Qm, QmOptions, VmId};
use pvefleet_plan::observed::parse_node_vms;
use pvefleet_plan::{lookup::is_managed, Step};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The pmxcfs lock under which names are claimed.
pub const FLEET_LOCK: &str = "pvefleet-names";

/// Seconds to wait for another run's claim to end.
const LOCK_WAIT_SECS: u32 = 60;

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
/// description of the planned one, nothing that takes time.
pub fn bare_create(step: &Step) -> Option<Command> {
    let Command::Qm(Qm::Create { vmid, options }) = &step.command else {
        return None;
    };
    let mut bare = QmOptions::new();
    for key in ["name", "tags", "description"] {
        if let Some(v) = options.get(key) {
            bare.push(key, v);
        }
    }
    Some(Command::Qm(Qm::Create {
        vmid: *vmid,
        options: bare,
    }))
}

/// Serves claims for one run until every sender is gone.
pub struct Claimer {
    /// Where requests arrive.
    pub rx: mpsc::Receiver<Request>,
    /// The run's transports; the lock is taken through `lock_node`'s.
    pub transports: Transports,
    /// The node whose transport takes the lock and reads the guests.
    pub lock_node: String,
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

    fn lock_transport(&self) -> Option<Arc<dyn Transport>> {
        self.transports.get(&self.lock_node).cloned()
    }

    /// One hold of the lock: read, make, release.
    async fn claim(&self, batch: Vec<Request>) {
        let Some(t) = self.lock_transport() else {
            return fail_all(batch, "no connection to take the cluster lock");
        };
        let nodes: Vec<String> = self.transports.keys().cloned().collect();
        let mut argvs = vec![Command::CfsLock {
            name: FLEET_LOCK.into(),
            wait_secs: LOCK_WAIT_SECS,
        }
        .argv()];
        argvs.extend(nodes.iter().map(|n| Command::Pvesh(Pvesh::node_vms(n)).argv()));
        let judges = vec![Judge::Exit; argvs.len()];
        let outs = match t.run_checked(&argvs, &judges).await {
            Ok(o) => o,
            Err(e) => return fail_all(batch, &e.to_string()),
        };
        if !outs.first().is_some_and(|o| o.success()) {
            let why = outs
                .first()
                .map(|o| o.stderr.trim().to_string())
                .unwrap_or_default();
            return fail_all(batch, &why);
        }
        let mut names: BTreeMap<String, (VmId, bool)> = BTreeMap::new();
        let mut read_ok = true;
        for (node, out) in nodes.iter().zip(outs.iter().skip(1)) {
            match parse_node_vms(node, out.stdout.as_bytes()) {
                Ok(vms) if out.success() => names.extend(vms.iter().filter_map(|v| {
                    v.name.clone().map(|n| (n, (v.vmid, is_managed(v))))
                })),
                _ => read_ok = false,
            }
        }
        if read_ok {
            self.make(batch, &names).await;
        } else {
            fail_all(batch, "the guests of the cluster could not be read under the lock");
        }
        let unlock = Command::CfsUnlock {
            name: FLEET_LOCK.into(),
        };
        let released = t.run(unlock.argv()).await;
        if !released.is_ok_and(|o| o.success()) {
            self.note(&self.lock_node, "the cluster lock could not be released; pmxcfs lets it expire after 120 s".into());
        }
    }

    /// Answers the requests whose name is taken, then makes the others,
    /// each node's side by side, taking the next free id on a clash.
    async fn make(&self, batch: Vec<Request>, names: &BTreeMap<String, (VmId, bool)>) {
        let mut todo: BTreeMap<String, Vec<Request>> = BTreeMap::new();
        for r in batch {
            match names.get(&r.name) {
                Some((id, true)) => {
                    let _ = r.reply.send(Claim::MadeByAnother(*id));
                }
                Some((id, false)) => {
                    let _ = r.reply.send(Claim::Foreign(*id));
                }
                None => todo.entry(r.node.clone()).or_default().push(r),
            }
        }
        let mut nodes = tokio::task::JoinSet::new();
        for (node, reqs) in todo {
            let Some(t) = self.transports.get(&node).cloned() else {
                fail_all(reqs, &format!("no connection to node {node}"));
                continue;
            };
            let ids = self.ids.clone();
            let report = self.report.clone();
            nodes.spawn(make_on_node(t, reqs, ids, report));
        }
        while nodes.join_next().await.is_some() {}
    }

    fn note(&self, name: &str, message: String) {
        self.report.report(Event::Note {
            name: name.into(),
            message,
        });
    }
}

/// Makes the requested VMs on one node in one round trip; those whose id
/// was taken meanwhile try the next free one.
async fn make_on_node(
    t: Arc<dyn Transport>,
    mut reqs: Vec<Request>,
    ids: Arc<Ids>,
    report: Arc<dyn Reporter>,
) {
    for _ in 0..20 {
        if reqs.is_empty() {
            return;
        }
        for r in &reqs {
            report.report(Event::Command {
                name: r.name.clone(),
                line: r.make.redacted(),
            });
        }
        let argvs: Vec<Vec<String>> = reqs.iter().map(|r| r.make.argv()).collect();
        let outs = match t.run_batch(&argvs, false).await {
            Ok(o) => o,
            Err(e) => return fail_all(reqs, &e.to_string()),
        };
        let mut again = Vec::new();
        for (mut r, out) in reqs.into_iter().zip(outs) {
            if out.success() {
                let _ = r.reply.send(Claim::Made(r.vmid));
            } else if already_exists(&out.stderr) {
                match ids.next(r.vmid.get()) {
                    Some(new) => {
                        r.make = r.make.retarget(r.vmid, new);
                        r.vmid = new;
                        again.push(r);
                    }
                    None => {
                        let _ = r.reply.send(Claim::Failed("no free VM id".into()));
                    }
                }
            } else {
                let argv = r.make.argv();
                let what: Vec<&str> = argv.iter().take(3).map(String::as_str).collect();
                let msg = format!("{}: {}", what.join(" "), out.stderr.trim());
                let _ = r.reply.send(Claim::Failed(msg));
            }
        }
        reqs = again;
    }
    fail_all(reqs, "no free VM id after 20 tries");
}

fn fail_all(reqs: Vec<Request>, why: &str) {
    for r in reqs {
        let _ = r.reply.send(Claim::Failed(why.to_string()));
    }
}
