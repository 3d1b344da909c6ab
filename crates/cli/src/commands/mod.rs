//! The subcommands, one module each, and what they share: reading the
//! file, connecting, reading the nodes, asking before changes.

mod apply;
mod check;
mod destroy;
mod host;
mod import;
mod import_lifecycle;
mod init;
mod inventory;
mod made_elsewhere;
mod meta;
mod plan;
mod schema;
mod schema_hardware;
mod schema_lifecycle;
mod sim;
mod status;

use crate::args::{Cli, Cmd, Target};
use crate::ui::{self, Failure};
use crate::ExitStatus;
use pvefleet_config::{ConfigReport, Desired};
use pvefleet_exec::observe::{observe, NodeHandle};
use pvefleet_exec::transport::TransportError;
use pvefleet_exec::Transports;
use pvefleet_plan::{read_plan, read_plan_for_destroy, Observed};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

/// Runs a subcommand.
pub async fn run(cli: Cli) -> ExitStatus {
    match cli.command {
        Cmd::Check { file } => check::run(&file),
        Cmd::Plan {
            file,
            target,
            host_state,
            selection,
            detailed_exitcode,
            adopt,
            allow_data_loss,
        } => {
            let flags = plan::Flags {
                adopt,
                allow_data_loss,
            };
            let status = plan::run(&file.file, &target, host_state, &selection.only, flags).await;
            detailed(status, detailed_exitcode)
        }
        Cmd::Apply {
            file,
            target,
            confirm,
            selection,
            run,
            adopt,
        } => {
            apply::run(
                &file.file,
                &target,
                confirm.yes,
                &selection.only,
                &run,
                adopt,
            )
            .await
        }
        Cmd::Status {
            file,
            target,
            detailed_exitcode,
        } => {
            let status = status::run(&file.file, &target).await;
            detailed(status, detailed_exitcode)
        }
        Cmd::Destroy {
            file,
            target,
            confirm,
            selection,
            include_cache,
        } => {
            destroy::run(
                &file.file,
                &target,
                confirm.yes,
                &selection.only,
                include_cache,
            )
            .await
        }
        Cmd::Inventory {
            file,
            target,
            format,
            offline,
        } => inventory::run(&file.file, &target, format, offline).await,
        Cmd::Import {
            host,
            tags,
            vmids,
            target,
        } => import::run(&host, &target, &tags, &vmids).await,
        Cmd::Init { host, target } => init::run(&host, &target).await,
        Cmd::Schema => schema::run(),
        Cmd::Completions { shell } => meta::completions(shell),
        Cmd::Man { dir } => meta::man(dir.as_deref()),
        Cmd::Sim { command } => sim::run(command),
    }
}

/// The status of a command run with `--detailed-exitcode`: an error of any
/// kind is 1, since 2 means "changes" there.
fn detailed(status: ExitStatus, detailed: bool) -> ExitStatus {
    match (detailed, status) {
        (true, ExitStatus::Invalid) => ExitStatus::Failed,
        (false, ExitStatus::Changes) => ExitStatus::Ok,
        (_, s) => s,
    }
}

/// Reads and validates the file; errors are printed once, with their place.
///
/// The file and every `ssh_keys_file` are read with a size limit: reading
/// stops one byte past it (so `/dev/zero` fails at once) and the error names
/// the limit.
fn load(file: &str) -> Result<Desired, ExitStatus> {
    use pvefleet_config::limits::{too_large, MAX_CONFIG_BYTES, MAX_KEYS_FILE_BYTES};
    use std::io::Read;
    fn read_bounded(path: &Path, limit: usize, what: &str) -> Result<String, String> {
        let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        f.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() > limit {
            return Err(too_large(limit, what));
        }
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
    }
    let text = match read_bounded(Path::new(file), MAX_CONFIG_BYTES, "a configuration file") {
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
        read_bounded(&path, MAX_KEYS_FILE_BYTES, "an ssh_keys_file")
    };
    pvefleet_config::parse(file, &text, &loader)
        .map_err(|report: ConfigReport| crate::diag::config_errors(&report))
}

/// [`load`], and for a file that could not be read, the error in the output
/// format (`load` says it on stderr; with `--output json` stdout gets the
/// object too).
fn load_file(file: &str) -> Result<Desired, ExitStatus> {
    crate::diag::reset();
    load(file).map_err(|status| {
        if ui::ui().json && !crate::diag::reported() {
            let why = std::fs::File::open(file)
                .err()
                .map(|e| ui::io_reason(&e))
                .unwrap_or_else(|| "it could not be read".into());
            return Failure::new(
                status,
                "file_unreadable",
                format!("cannot read {file}: {why}"),
            )
            .at(json!({"file": file}))
            .report();
        }
        status
    })
}

/// Refuses `--only` names the file does not have (exit 2), naming them.
fn check_only(file: &str, desired: &Desired, only: &[String]) -> Result<(), ExitStatus> {
    let known = |o: &String| {
        desired
            .vms
            .iter()
            .any(|v| v.name == *o || v.vmid.is_some_and(|id| id.to_string() == *o))
    };
    let unknown: Vec<&str> = only
        .iter()
        .filter(|o| !known(o))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = desired.vms.iter().map(|v| v.name.as_str()).collect();
    Err(Failure::new(
        ExitStatus::Invalid,
        "unknown_vm",
        format!(
            "--only names {} that {file} does not have: {}",
            if unknown.len() == 1 { "a VM" } else { "VMs" },
            unknown.join(", ")
        ),
    )
    .at(json!({"file": file, "only": unknown}))
    .hint(format!("the file's VMs: {}", names.join(", ")))
    .report())
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
                return Err(Failure::new(
                    ExitStatus::Failed,
                    "internal",
                    format!("a connection task ended abnormally: {e}"),
                )
                .report());
            }
        }
    }
    for (i, e) in &failed {
        if let TransportError::Connect {
            host_key: true,
            host,
            ..
        } = e
        {
            return Err(Failure::new(ExitStatus::Invalid, "host_key", e.to_string())
                .at(json!({"node": handles[*i].name, "host": host}))
                .hint(format!("the host key of {host} is unknown or has changed; nothing was changed"))
                .hint(format!("check the key, then add it to known_hosts (ssh {host}), or pass --accept-new-host-key to trust a new key"))
                .report());
        }
    }
    if !failed.is_empty() && (!desired.cluster || failed.len() == handles.len()) {
        let names: Vec<&str> = failed.keys().map(|i| handles[*i].name.as_str()).collect();
        let message: Vec<String> = failed.values().map(ToString::to_string).collect();
        let location = if names.len() == 1 {
            json!({"node": names[0]})
        } else {
            json!({"nodes": names})
        };
        return Err(
            Failure::new(ExitStatus::Failed, "connect", message.join("; "))
                .at(location)
                .report(),
        );
    }
    Ok(failed
        .into_iter()
        .map(|(i, e)| (handles[i].name.clone(), e.to_string()))
        .collect())
}

/// The file, its nodes' connections, and what they hold.
pub(crate) struct Session {
    pub desired: Desired,
    pub handles: Vec<NodeHandle>,
    pub observed: Observed,
}

impl Session {
    /// Reads and validates the file, checks `--only`, connects, and reads
    /// its nodes. A signal meanwhile stops it: connections are closed,
    /// exit 130.
    async fn open(
        file: &str,
        target: &Target,
        parallel: usize,
        only: &[String],
    ) -> Result<Self, ExitStatus> {
        Self::open_with(file, target, parallel, only, false, false).await
    }

    /// [`Session::open`], also reading the configurations of the VMs
    /// `--adopt` would take over when `adopt`, and with `vet` having
    /// cloud-init judge the `user_data` first (apply).
    async fn open_with(
        file: &str,
        target: &Target,
        parallel: usize,
        only: &[String],
        adopt: bool,
        vet: bool,
    ) -> Result<Self, ExitStatus> {
        let reads = if adopt {
            ReadsFor::Adopt
        } else {
            ReadsFor::Run
        };
        Self::open_as(file, target, parallel, only, reads, vet).await
    }

    /// [`Session::open`] for `destroy`: with `user_data` in the file, the
    /// configuration of every VM of the nodes is read, so that no snippet
    /// a VM still uses is removed, whoever manages that VM.
    async fn open_for_destroy(
        file: &str,
        target: &Target,
        parallel: usize,
        only: &[String],
    ) -> Result<Self, ExitStatus> {
        Self::open_as(file, target, parallel, only, ReadsFor::Destroy, false).await
    }

    async fn open_as(
        file: &str,
        target: &Target,
        parallel: usize,
        only: &[String],
        reads: ReadsFor,
        vet: bool,
    ) -> Result<Self, ExitStatus> {
        let desired = load_file(file)?;
        check_only(file, &desired, only)?;
        if vet {
            crate::cloud_init::check(file, &desired)?;
        }
        let cancel = crate::interrupt::token();
        let observed = tokio::select! {
            r = observe_nodes_with(&desired, target, parallel, reads) => r,
            () = cancel.cancelled() => {
                crate::interrupt::close_all().await;
                eprintln!("interrupted while reading the nodes; nothing was changed");
                return Err(ExitStatus::Interrupted);
            }
        };
        let (handles, observed) = observed?;
        Ok(Self {
            desired,
            handles,
            observed,
        })
    }

    /// The transports by node name.
    fn transports(&self) -> Transports {
        self.handles
            .iter()
            .map(|h| (h.name.clone(), h.transport.clone()))
            .collect()
    }

    /// Reads the same nodes again over the same connections.
    async fn observe_again(&mut self, parallel: usize) -> Result<(), String> {
        let reads = read_plan(&self.desired);
        let observed = observe(&reads, &mut self.handles, parallel)
            .await
            .map_err(|e| e.to_string())?;
        self.observed = observed;
        Ok(())
    }

    /// Closes every connection.
    async fn close(&self) {
        close(&self.handles).await;
    }
}

/// Connects to the nodes of `desired` and reads them.
async fn observe_nodes(
    desired: &Desired,
    target: &Target,
    parallel: usize,
) -> Result<(Vec<NodeHandle>, Observed), ExitStatus> {
    observe_nodes_with(desired, target, parallel, ReadsFor::Run).await
}

/// What a command reads beyond what its plan needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadsFor {
    /// Nothing more.
    Run,
    /// The configurations of the VMs `--adopt` would take over.
    Adopt,
    /// With `user_data`, the configuration of every VM of the nodes.
    Destroy,
}

impl ReadsFor {
    /// What a plan or apply reads: with `--adopt`, the VMs it would adopt.
    fn run(adopt: bool) -> Self {
        if adopt {
            ReadsFor::Adopt
        } else {
            ReadsFor::Run
        }
    }
}

/// [`observe_nodes`], also reading what `reads` asks.
async fn observe_nodes_with(
    desired: &Desired,
    target: &Target,
    parallel: usize,
    reads_for: ReadsFor,
) -> Result<(Vec<NodeHandle>, Observed), ExitStatus> {
    let mut handles =
        crate::connect::handles(desired, target, parallel).map_err(|f: Failure| f.report())?;
    let unreachable = connect_all(desired, &handles).await?;
    // The first handle reads the cluster for all: make it one that answered.
    handles.retain(|h| !unreachable.contains_key(&h.name));
    let mut reads = match reads_for {
        ReadsFor::Destroy => read_plan_for_destroy(desired),
        ReadsFor::Run | ReadsFor::Adopt => read_plan(desired),
    };
    reads.adopt = reads_for == ReadsFor::Adopt;
    let observed = observe(&reads, &mut handles, parallel).await;
    let mut observed = match observed {
        Ok(o) => o,
        Err(e) => {
            close(&handles).await;
            let text = e.to_string();
            let mut failure = Failure::new(
                ExitStatus::Failed,
                "read_nodes",
                format!("reading the nodes failed: {text}"),
            );
            if let Some(hint) = privilege_hint(&text) {
                failure = failure.hint(hint);
            }
            return Err(failure.report());
        }
    };
    observed.unreachable.extend(unreachable);
    for (node, why) in &observed.unreachable {
        tracing::warn!("node {node}: {why}; its VMs are left alone this run");
    }
    handles.retain(|h| !observed.unreachable.contains_key(&h.name));
    Ok((handles, observed))
}

/// The fix for a node that refused pvefleet's user: not root without
/// `become: sudo`, or sudo without a rule for it.
fn privilege_hint(error: &str) -> Option<&'static str> {
    if error.contains("sudo on ") {
        Some("become: sudo needs a sudoers rule that lets this SSH user run qm, pvesh, pvesm and the cluster lock without a password (NOPASSWD): see docs/real-host.md, 'A user other than root'")
    } else if error.contains("please run as root") || error.contains("Permission denied") {
        Some("the SSH user is not root: add 'become: sudo' to the node in the file (with the sudoers rule of docs/real-host.md), or log in as root")
    } else {
        None
    }
}

/// Asks on the terminal; refuses (exit 2) when stdin is not one. Ctrl-C
/// at the question is a "no" that exits 130.
async fn confirm(question: &str, refusal: &str) -> Result<bool, ExitStatus> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            ExitStatus::Invalid,
            "confirmation_required",
            format!("refusing to {refusal} without --yes when not on a terminal"),
        )
        .hint("pass --yes to go ahead without asking")
        .report());
    }
    eprint!("{question} [y/N] ");
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
    });
    let cancel = crate::interrupt::token();
    tokio::select! {
        yes = answer => Ok(yes.unwrap_or(false)),
        () = cancel.cancelled() => Err(ExitStatus::Interrupted),
    }
}

async fn close(handles: &[NodeHandle]) {
    for h in handles {
        h.transport.close().await;
    }
}
