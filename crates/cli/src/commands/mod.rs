//! The subcommands, one module each, and what they share: reading the
//! file, connecting, reading the nodes, asking before changes.

mod apply;
mod check;
mod destroy;
mod plan;
mod status;

use crate::args::{Cli, Cmd, Target};
use crate::ExitStatus;
use pvefleet_config::{ConfigReport, Desired};
use pvefleet_exec::observe::{observe, NodeHandle};
use pvefleet_exec::transport::TransportError;
use pvefleet_exec::Transports;
use pvefleet_plan::{read_plan, Observed};
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
            output,
            selection,
        } => {
            plan::run(
                &file.file,
                &target,
                host_state,
                output.output,
                &selection.only,
            )
            .await
        }
        Cmd::Apply {
            file,
            target,
            confirm,
            selection,
            run,
            output,
        } => {
            apply::run(
                &file.file,
                &target,
                confirm.yes,
                &selection.only,
                &run,
                output.output,
            )
            .await
        }
        Cmd::Status {
            file,
            target,
            output,
        } => status::run(&file.file, &target, output.output).await,
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

/// The file, its nodes' connections, and what they hold.
pub(crate) struct Session {
    pub desired: Desired,
    pub handles: Vec<NodeHandle>,
    pub observed: Observed,
}

impl Session {
    /// Reads and validates the file, connects, and reads its nodes.
    async fn open(file: &str, target: &Target, parallel: usize) -> Result<Self, ExitStatus> {
        let desired = load(file)?;
        let (handles, observed) = observe_nodes(&desired, target, parallel).await?;
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
    let mut handles = crate::connect::handles(desired, target, parallel).map_err(|e| {
        eprintln!("error: {e}");
        ExitStatus::Failed
    })?;
    let unreachable = connect_all(desired, &handles).await?;
    // The first handle reads the cluster for all: make it one that answered.
    handles.retain(|h| !unreachable.contains_key(&h.name));
    let observed = observe(&read_plan(desired), &mut handles, parallel).await;
    let mut observed = match observed {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: reading the nodes failed: {e}");
            close(&handles).await;
            return Err(ExitStatus::Failed);
        }
    };
    observed.unreachable.extend(unreachable);
    for (node, why) in &observed.unreachable {
        eprintln!("warning: node {node}: {why}; its VMs are left alone this run");
    }
    handles.retain(|h| !observed.unreachable.contains_key(&h.name));
    Ok((handles, observed))
}

/// Asks on the terminal; refuses (exit 2) when stdin is not one.
fn confirm(question: &str, refusal: &str) -> Result<bool, ExitStatus> {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: refusing to {refusal} without --yes when not on a terminal");
        return Err(ExitStatus::Invalid);
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    Ok(std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes"))
}

async fn close(handles: &[NodeHandle]) {
    for h in handles {
        h.transport.close().await;
    }
}
