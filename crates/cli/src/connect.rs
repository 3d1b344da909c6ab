//! Builds one transport per node from the file and the flags.

use crate::args::Target;
use crate::ui::Failure;
use pvefleet_config::Desired;
use pvefleet_exec::observe::NodeHandle;
use pvefleet_exec::transport::{LocalTransport, SshOptions, SshTransport, Transport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One handle per configured node.
pub fn handles(
    desired: &Desired,
    target: &Target,
    parallel: usize,
) -> Result<Vec<NodeHandle>, Failure> {
    let sim = if target.simulate {
        Some(crate::simulate::ensure(
            desired,
            target.simulate_version.as_deref(),
        )?)
    } else {
        None
    };
    let mut out = Vec::new();
    for n in &desired.nodes {
        let name = n.name.clone().unwrap_or_default();
        let t: Arc<dyn Transport> = if let Some((root, bin)) = &sim {
            let mut env = BTreeMap::new();
            let path = std::env::var("PATH").unwrap_or_default();
            env.insert("PATH".to_string(), format!("{}:{path}", bin.display()));
            env.insert("PVE_SIM_ROOT".to_string(), root.display().to_string());
            let node = if desired.cluster {
                name.clone()
            } else {
                n.name.clone().unwrap_or_else(|| "pve".into())
            };
            env.insert("PVE_SIM_NODE".to_string(), node);
            let mut t = LocalTransport::new(env, parallel.max(1));
            t.command_timeout = target.command_timeout;
            Arc::new(t)
        } else if n.host == "local" {
            let mut t = LocalTransport::new(BTreeMap::new(), parallel.max(1));
            t.command_timeout = target.command_timeout;
            t.sudo = n.sudo;
            Arc::new(t)
        } else {
            let options = SshOptions {
                config_file: target.ssh_config.clone(),
                accept_new_host_key: target.accept_new_host_key,
                connect_timeout: Duration::from_secs(target.connect_timeout),
            };
            let mut t = SshTransport::new(&n.host, n.user.as_deref(), n.port, options, parallel);
            t.command_timeout = target.command_timeout;
            t.sudo = n.sudo;
            Arc::new(t)
        };
        crate::interrupt::register(t.clone());
        out.push(NodeHandle { name, transport: t });
    }
    Ok(out)
}
