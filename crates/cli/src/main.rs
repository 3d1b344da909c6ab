//! pvefleet: declarative Proxmox VE fleets over SSH.
//!
//! The binary is also the built-in emulated host: called through a link
//! named `qm`, `pvesh`, `pvesm` or `pveversion` it runs pve-sim, which is how
//! `--simulate` works without a Proxmox node.

mod args;
mod commands;
mod connect;
mod interrupt;
mod output;
mod report;
mod simulate;

use clap::Parser;

/// Exit statuses (documented in `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything converged.
    Ok = 0,
    /// A VM failed or is in conflict.
    Failed = 1,
    /// Invalid input, or a refused host key: nothing was changed.
    Invalid = 2,
    /// Interrupted by SIGINT or SIGTERM (128 + 2).
    Interrupted = 130,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let prog = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    if prog == "pve-sim" || pve_sim::PROGRAMS.contains(&prog.as_str()) {
        std::process::exit(pve_sim::main_with(argv));
    }
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let status = runtime.block_on(async {
        interrupt::install();
        commands::run(cli).await
    });
    std::process::exit(status as i32);
}
