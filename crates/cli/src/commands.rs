//! The subcommands.

use crate::args::{Cli, Cmd, Output, Target};
use crate::output;
use crate::ExitStatus;
use pvefleet_config::{ConfigReport, Desired};
use pvefleet_exec::observe::{observe, NodeHandle};
use pvefleet_exec::transport::TransportError;
use pvefleet_exec::{runner, ApplyOptions, Event, Reporter, Transports};
use pvefleet_model::{Command, Qm, VmId};
use pvefleet_plan::{plan, read_plan, Action, Observed, Plan, PlanInput, CACHE_TAG};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn load(file: &str) -> Result<Desired, ExitStatus> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {file}: {e}");
            return Err(ExitStatus::Invalid);
        }
    };
    let base = Path::new(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let loader = move |p: &str| -> Result<String, String> {
        let path = if let Some(rest) = p.strip_prefix("~/") {
            std::env::var("HOME")
                .map(|h| Path::new(&h).join(rest))
                .unwrap_or_else(|_| p.into())
        } else {
            base.join(p)
        };
        std::fs::read_to_string(&path).map_err(|e| e.to_string())
    };
    pvefleet_config::parse(file, &text, &loader).map_err(|report: ConfigReport| {
        eprint!("{}", report.render(std::io::stderr().is_terminal()));
        eprintln!(
            "error: {} problem(s) in {file}; nothing was contacted",
            report.errors.len()
        );
        ExitStatus::Invalid
    })
}

/// Connects to every node at once. A refused host key stops everything
/// before a command is sent anywhere. In a cluster, nodes that cannot be
/// reached otherwise are returned with the reason, as long as one node
/// answers: their VMs are left alone and the others proceed.
async fn connect_all(
    desired: &Desired,
    handles: &[NodeHandle],
) -> Result<BTreeMap<String, String>, ExitStatus> {
    let mut set = tokio::task::JoinSet::new();
    for (i, h) in handles.iter().enumerate() {
        let t = h.transport.clone();
        set.spawn(async move { (i, t.connect().await) });
    }
    let mut failed: BTreeMap<usize, TransportError> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Err(e))) => {
                failed.insert(i, e);
            }
            Ok((_, Ok(()))) => {}
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitStatus::Failed);
            }
        }
    }
    for e in failed.values() {
        if let TransportError::Connect {
            host_key: true,
            host,
            ..
        } = e
        {
            eprintln!("error: {e}");
            eprintln!(
                "hint: the host key of {host} is unknown or has changed; nothing was changed."
            );
            eprintln!("hint: check the key, then add it to known_hosts (ssh {host}), or pass --accept-new-host-key to trust a new key");
            return Err(ExitStatus::Invalid);
        }
    }
    if !failed.is_empty() && (!desired.cluster || failed.len() == handles.len()) {
        for e in failed.values() {
            eprintln!("error: {e}");
        }
        return Err(ExitStatus::Failed);
    }
    Ok(failed
        .into_iter()
        .map(|(i, e)| (handles[i].name.clone(), e.to_string()))
        .collect())
}

async fn observe_nodes(
    desired: &Desired,
    target: &Target,
    parallel: usize,
) -> Result<(Vec<NodeHandle>, Observed), ExitStatus> {
    let mut handles = crate::connect::handles(desired, target, parallel).map_err(|e| {
        eprintln!("error: {e}");
        ExitStatus::Failed
    })?;
    let unreachable = connect_all(desired, &handles).await?;
    // The first handle reads the cluster for all: make it one that answered.
    handles.retain(|h| !unreachable.contains_key(&h.name));
    let mut observed = observe(&read_plan(desired), &mut handles, parallel)
        .await
        .map_err(|e| {
            eprintln!("error: reading the nodes failed: {e}");
            ExitStatus::Failed
        })?;
    observed.unreachable.extend(unreachable);
    for (node, why) in &observed.unreachable {
        eprintln!("warning: node {node}: {why}; its VMs are left alone this run");
    }
    handles.retain(|h| !observed.unreachable.contains_key(&h.name));
    Ok((handles, observed))
}

/// Reads and validates the file, then reads its nodes.
async fn load_and_observe(
    file: &str,
    target: &Target,
    parallel: usize,
) -> Result<(Desired, Vec<NodeHandle>, Observed), ExitStatus> {
    let desired = load(file)?;
    let (handles, observed) = observe_nodes(&desired, target, parallel).await?;
    Ok((desired, handles, observed))
}

fn make_plan(desired: &Desired, observed: &Observed, reboot: bool, only: &[String]) -> Plan {
    plan(PlanInput {
        desired,
        observed,
        reboot,
        only,
    })
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

async fn close(handles: &[NodeHandle]) {
    for h in handles {
        h.transport.close().await;
    }
}

/// Runs a subcommand.
pub async fn run(cli: Cli) -> ExitStatus {
    match cli.command {
        Cmd::Check { file } => match load(&file) {
            Ok(d) => {
                println!(
                    "{file}: ok ({} VM(s), {} node(s))",
                    d.vms.len(),
                    d.nodes.len()
                );
                ExitStatus::Ok
            }
            Err(s) => s,
        },
        Cmd::Plan {
            file,
            target,
            host_state,
            output,
            only,
        } => {
            let desired = match load(&file) {
                Ok(d) => d,
                Err(s) => return s,
            };
            let (handles, observed) = match host_state {
                Some(path) => match std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| serde_json::from_str::<Observed>(&t).map_err(|e| e.to_string()))
                {
                    Ok(o) => (Vec::new(), o),
                    Err(e) => {
                        eprintln!("error: {path}: {e}");
                        return ExitStatus::Invalid;
                    }
                },
                None => match observe_nodes(&desired, &target, 8).await {
                    Ok(x) => x,
                    Err(s) => return s,
                },
            };
            let p = make_plan(&desired, &observed, false, &only);
            match output {
                Output::Json => println!("{}", output::plan_json(&p)),
                Output::Human => print!("{}", output::plan_human(&p)),
            }
            close(&handles).await;
            if p.has_problems() {
                ExitStatus::Failed
            } else {
                ExitStatus::Ok
            }
        }
        Cmd::Apply {
            file,
            target,
            yes,
            only,
            parallel,
            parallel_storage,
            no_wait,
            wait_timeout,
            keep_failed,
            reboot,
            output,
        } => {
            let (desired, handles, observed) =
                match load_and_observe(&file, &target, parallel).await {
                    Ok(x) => x,
                    Err(s) => return s,
                };
            let p = make_plan(&desired, &observed, reboot, &only);
            eprint!("{}", output::plan_human(&p));
            let changes = !p.is_converged();
            let problems = p.has_problems();
            if changes && !yes {
                if !std::io::stdin().is_terminal() {
                    eprintln!(
                        "error: refusing to change anything without --yes when not on a terminal"
                    );
                    close(&handles).await;
                    return ExitStatus::Invalid;
                }
                if !confirm("apply these changes?") {
                    eprintln!("nothing was changed");
                    close(&handles).await;
                    return ExitStatus::Ok;
                }
            }
            let transports: Transports = handles
                .iter()
                .map(|h| (h.name.clone(), h.transport.clone()))
                .collect();
            let used: BTreeSet<u32> = observed
                .all_vms()
                .iter()
                .map(|v| v.vmid.get())
                .chain(p.vms.iter().filter_map(|v| v.vmid.map(|x| x.get())))
                .chain(p.preludes.iter().map(|x| x.vmid.get()))
                .collect();
            let verbose = std::env::var_os("PVEFLEET_VERBOSE").is_some();
            let reporter: Arc<dyn Reporter> = Arc::new(move |e: Event| match e {
                Event::Note { name, message } => eprintln!("{name}: {message}"),
                Event::Command { name, line } if verbose => eprintln!("{name}: $ {line}"),
                Event::Finished { name, ok } => {
                    eprintln!("{name}: {}", if ok { "done" } else { "failed" })
                }
                _ => {}
            });
            let opts = ApplyOptions {
                wait: !no_wait,
                wait_timeout: Duration::from_secs(wait_timeout),
                boot_window: Duration::from_secs(60.min(wait_timeout)),
                keep_failed,
                parallel,
                parallel_storage,
            };
            let results = runner::apply(p, &transports, used, opts, reporter).await;
            close(&handles).await;
            // Round trips per node, observation included.
            let round_trips: BTreeMap<&str, u64> = handles
                .iter()
                .map(|h| (h.name.as_str(), h.transport.round_trips()))
                .collect();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"changed": changes, "vms": results, "round_trips": round_trips})
                ),
                Output::Human => {
                    if !changes && !problems {
                        println!("no changes");
                    }
                    print!("{}", output::results_human(&results));
                    let total: u64 = round_trips.values().sum();
                    eprintln!("{total} round trip(s) to {} node(s)", round_trips.len());
                }
            }
            if results
                .iter()
                .all(|r| r.result == pvefleet_exec::VmOutcome::Ok)
            {
                ExitStatus::Ok
            } else {
                ExitStatus::Failed
            }
        }
        Cmd::Status {
            file,
            target,
            output,
        } => status(&file, &target, output).await,
        Cmd::Destroy {
            file,
            target,
            yes,
            only,
            include_cache,
        } => destroy(&file, &target, yes, &only, include_cache).await,
    }
}

async fn status(file: &str, target: &Target, output: Output) -> ExitStatus {
    let (desired, handles, observed) = match load_and_observe(file, target, 8).await {
        Ok(x) => x,
        Err(s) => return s,
    };
    let p = make_plan(&desired, &observed, false, &[]);
    let mut rows = Vec::new();
    for v in &p.vms {
        let existing = v
            .vmid
            .and_then(|id| observed.vm(id))
            .filter(|_| v.action != Action::Create);
        let managed =
            existing.is_some_and(|e| e.tags.iter().any(|t| t == pvefleet_model::OWNER_TAG));
        let running = existing.is_some_and(|e| e.status.as_deref() == Some("running"));
        let mut ip = None;
        if running && managed {
            if let (Some(t), Some(id)) = (handles.iter().find(|h| h.name == v.node), v.vmid) {
                ip = runner::probe_ip(t.transport.as_ref(), id)
                    .await
                    .ok()
                    .flatten();
            }
        }
        let mut drift: Vec<String> = v.changes.iter().map(|c| c.key.clone()).collect();
        if managed && v.running != running {
            drift.push("state".into());
        }
        rows.push(serde_json::json!({"vmid": v.vmid, "name": v.name, "node": v.node, "exists": existing.is_some(), "managed": managed, "running": running, "ip": ip, "drift": drift, "reboot_pending": v.reboot_pending}));
    }
    close(&handles).await;
    match output {
        Output::Json => println!("{}", serde_json::json!({"vms": rows})),
        Output::Human => {
            println!(
                "{:>9}  {:<20} {:<10} {:<7} {:<8} {:<8} {:<16} DRIFT",
                "VMID", "NAME", "NODE", "EXISTS", "MANAGED", "RUNNING", "IP"
            );
            for r in &rows {
                let yn = |k: &str| {
                    if r[k].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                };
                let drift: Vec<&str> = r["drift"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                println!(
                    "{:>9}  {:<20} {:<10} {:<7} {:<8} {:<8} {:<16} {}",
                    r["vmid"]
                        .as_u64()
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r["name"].as_str().unwrap_or(""),
                    r["node"].as_str().unwrap_or(""),
                    yn("exists"),
                    yn("managed"),
                    yn("running"),
                    r["ip"].as_str().unwrap_or("-"),
                    if drift.is_empty() {
                        "-".to_string()
                    } else {
                        drift.join(",")
                    }
                );
            }
        }
    }
    ExitStatus::Ok
}

/// Shuts down and destroys each (name, vmid, node), side by side. False
/// when any failed (reported on stderr).
async fn destroy_all(handles: &[NodeHandle], victims: Vec<(String, VmId, String)>) -> bool {
    let mut ok = true;
    let mut set = tokio::task::JoinSet::new();
    for (name, vmid, node) in victims {
        let Some(t) = handles
            .iter()
            .find(|h| h.name == node)
            .map(|h| h.transport.clone())
        else {
            eprintln!("{name}: not destroyed: node {node} could not be reached");
            ok = false;
            continue;
        };
        set.spawn(async move {
            let cmds = vec![
                Command::Qm(Qm::Shutdown { vmid, timeout: 60 }).argv(),
                Command::Qm(Qm::Destroy {
                    vmid,
                    skiplock: false,
                })
                .argv(),
            ];
            let r = t.run_batch(&cmds, true).await;
            (name, vmid, r)
        });
    }
    while let Some(Ok((name, vmid, r))) = set.join_next().await {
        match r {
            Ok(outs) if outs.iter().all(|o| o.success()) => {
                println!("{name}: destroyed (vmid {vmid})")
            }
            Ok(outs) => {
                let msg = outs
                    .iter()
                    .find(|o| !o.success())
                    .map(|o| o.stderr.trim().to_string())
                    .unwrap_or_default();
                eprintln!("{name}: destroy failed: {msg}");
                ok = false;
            }
            Err(e) => {
                eprintln!("{name}: destroy failed: {e}");
                ok = false;
            }
        }
    }
    ok
}

async fn destroy(
    file: &str,
    target: &Target,
    yes: bool,
    only: &[String],
    include_cache: bool,
) -> ExitStatus {
    let (desired, handles, observed) = match load_and_observe(file, target, 8).await {
        Ok(x) => x,
        Err(s) => return s,
    };
    let mut victims = Vec::new();
    let mut status = ExitStatus::Ok;
    for spec in desired
        .vms
        .iter()
        .filter(|s| pvefleet_plan::selected(s, only))
    {
        match pvefleet_plan::find_existing(spec, &observed) {
            None => eprintln!("{}: does not exist", spec.name),
            Some(vm) if !vm.tags.iter().any(|t| t == pvefleet_model::OWNER_TAG) => {
                eprintln!("{}: refusing to destroy VM {} on {}: it is not managed by pvefleet (no '{}' tag)", spec.name, vm.vmid, vm.node, pvefleet_model::OWNER_TAG);
                status = ExitStatus::Failed;
            }
            Some(vm) => victims.push((spec.name.clone(), vm.vmid, vm.node.clone())),
        }
    }
    // pvefleet's image-cache templates are never VMs of the file; they go
    // only when asked.
    let caches: Vec<(String, VmId, String)> = if include_cache {
        observed
            .nodes
            .iter()
            .flat_map(|n| n.vms.iter())
            .filter(|v| {
                v.template
                    && v.tags.iter().any(|t| t == CACHE_TAG)
                    && v.tags.iter().any(|t| t == pvefleet_model::OWNER_TAG)
            })
            .map(|v| (v.name.clone().unwrap_or_default(), v.vmid, v.node.clone()))
            .collect()
    } else {
        Vec::new()
    };
    for (name, id, node) in victims.iter().chain(&caches) {
        eprintln!("- {name} (vmid {id}, node {node}): destroy");
    }
    if victims.is_empty() && caches.is_empty() {
        close(&handles).await;
        return status;
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("error: refusing to destroy anything without --yes when not on a terminal");
            close(&handles).await;
            return ExitStatus::Invalid;
        }
        if !confirm("destroy these VMs and their disks?") {
            close(&handles).await;
            return ExitStatus::Ok;
        }
    }
    if !destroy_all(&handles, victims).await {
        status = ExitStatus::Failed;
    }
    // Cache templates last: their linked clones must be gone first.
    if !destroy_all(&handles, caches).await {
        status = ExitStatus::Failed;
    }
    close(&handles).await;
    status
}
