//! Command-line arguments. Arguments several subcommands share are defined
//! once and flattened into each.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn a YAML file of VMs into running VMs on Proxmox VE, over SSH.
///
/// Exit status: 0 when every VM converged (or the file is valid), 1 when a
/// VM failed or is in conflict, 2 for invalid input or a refused host key
/// (nothing is changed then).
#[derive(Debug, Parser)]
#[command(name = "pvefleet", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Validate the file offline; nothing is contacted.
    Check {
        /// The configuration file.
        file: String,
    },
    /// Show what apply would do.
    Plan {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        target: Target,
        /// Read the host state from this JSON file instead of a host (tests).
        #[arg(long, value_name = "FILE")]
        host_state: Option<String>,
        #[command(flatten)]
        output: OutputArg,
        #[command(flatten)]
        selection: Selection,
    },
    /// Make the nodes match the file.
    Apply {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Show each VM of the file: exists, managed, running, address, drift.
    Status {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Shut down and destroy the managed VMs of the file.
    Destroy {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        confirm: Confirm,
        #[command(flatten)]
        selection: Selection,
        /// Also destroy pvefleet's image-cache templates (disk_from:
        /// linked-clone/full-clone) once no linked clone needs them.
        #[arg(long)]
        include_cache: bool,
    },
}

/// The configuration file.
#[derive(Debug, Args, Clone)]
pub struct FileArg {
    /// The configuration file.
    pub file: String,
}

/// Which VMs of the file.
#[derive(Debug, Args, Clone)]
pub struct Selection {
    /// Only these VMs (name or vmid); repeatable.
    #[arg(long, value_name = "NAME|VMID")]
    pub only: Vec<String>,
}

/// Asking before changes.
#[derive(Debug, Args, Clone)]
pub struct Confirm {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// How output is written.
#[derive(Debug, Args, Clone)]
pub struct OutputArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

/// How `apply` runs.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// VMs worked on at once per node.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// VMs allocating disks at once on one storage: per node for a local
    /// storage, across the cluster for a shared one (Proxmox serialises
    /// allocation on a storage lock with a 10 s timeout).
    #[arg(long, default_value_t = 8)]
    pub parallel_storage: usize,
    /// Do not wait for the guest agent to report the address.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the guest agent.
    #[arg(long, default_value_t = 300)]
    pub wait_timeout: u64,
    /// Keep a VM whose creation failed half-way (default: destroy it).
    #[arg(long)]
    pub keep_failed: bool,
    /// Reboot running VMs whose changes only apply at boot.
    #[arg(long)]
    pub reboot: bool,
}

/// Where the commands go.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// Use the built-in emulated Proxmox host (state in ./.pvefleet-sim).
    #[arg(long)]
    pub simulate: bool,
    /// ssh configuration file, passed to ssh as -F.
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<String>,
    /// Accept and remember an unknown host key (ssh's accept-new).
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Seconds a single command may run on the node.
    #[arg(long, default_value_t = 3600)]
    pub command_timeout: u64,
    /// Seconds to wait for an SSH connection.
    #[arg(long, default_value_t = 15)]
    pub connect_timeout: u64,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable text.
    Human,
    /// JSON on stdout.
    Json,
}
