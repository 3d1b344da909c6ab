//! Waiting for a VM's guest agent to report its address.

use super::Lane;
use crate::transport::{Transport, TransportError};
use pvefleet_model::{Command, Qm, VmId};
use pvefleet_plan::observed::parse_agent_addresses;
use pvefleet_plan::VmPlan;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn agent_query(vmid: VmId) -> Vec<String> {
    Command::Qm(Qm::GuestCmd {
        vmid,
        command: "network-get-interfaces".into(),
    })
    .argv()
}

impl Lane {
    /// The address the guest agent reports: waited for (`wait`) or probed
    /// once.
    pub(super) async fn agent_ip(&self, vp: &VmPlan, wait: bool) -> Result<Option<String>, String> {
        let Some(vmid) = vp.vmid else { return Ok(None) };
        let argv = agent_query(vmid);
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
                // cloud-init's verdict can only come through the agent:
                // waiting on is pointless.
                if vp.wait == pvefleet_model::spec::WaitFor::CloudInit {
                    return Err(format!("the guest agent has not answered in {} s since boot, so cloud-init's verdict cannot be read: install qemu-guest-agent in the image (e.g. cloud-init 'packages: [qemu-guest-agent]' on an image that starts it, or a customised image), or set 'wait: ip' or 'wait: none'", self.opts.boot_window.as_secs()));
                }
                warned = true;
                self.say(&vp.name, "the guest agent has not answered since boot: the image probably lacks qemu-guest-agent (install it via cloud-init or use an image that has it)".into());
            }
            delay = match self.pause(start, delay).await {
                Ok(next) => next,
                Err(Stop::TimedOut) => {
                    return Err(format!(
                        "no address from the guest agent after {} s: {last}",
                        self.opts.wait_timeout.as_secs()
                    ))
                }
                Err(Stop::Interrupted) => {
                    return Err(format!(
                        "{} while waiting for the guest agent: {last}",
                        super::INTERRUPTED
                    ))
                }
            };
        }
    }

    /// Sleeps `delay` before the next try of a wait that began at
    /// `started`, and returns the delay after it (doubled, at most 5 s);
    /// stops instead when the wait timeout would pass first or the run is
    /// cancelled.
    pub(super) async fn pause(&self, started: Instant, delay: Duration) -> Result<Duration, Stop> {
        if started.elapsed() + delay > self.opts.wait_timeout {
            return Err(Stop::TimedOut);
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok((delay * 2).min(Duration::from_secs(5))),
            () = self.opts.cancel.cancelled() => Err(Stop::Interrupted),
        }
    }
}

/// Why a wait of [`Lane::pause`] ended before its answer.
pub(super) enum Stop {
    /// The wait timeout would pass.
    TimedOut,
    /// The run was cancelled (Ctrl-C, SIGTERM).
    Interrupted,
}

/// Reads the guest agent's address of a running VM once (for `status`).
pub async fn probe_ip(
    transport: &dyn Transport,
    vmid: VmId,
) -> Result<Option<String>, TransportError> {
    let out = transport.run(agent_query(vmid)).await?;
    if !out.success() {
        return Ok(None);
    }
    Ok(parse_agent_addresses(out.stdout.as_bytes())
        .ok()
        .and_then(|a| pick_address(&a, None)))
}

/// The address to report: the expected one if the agent lists it, else
/// (without expectation) the first IPv4 address, else the first address.
pub fn pick_address(addrs: &[IpAddr], expect: Option<IpAddr>) -> Option<String> {
    match expect {
        Some(want) => addrs.iter().find(|a| **a == want),
        None => addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()),
    }
    .map(|a| a.to_string())
}
