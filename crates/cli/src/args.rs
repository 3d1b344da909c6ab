//! Command-line arguments. Arguments several subcommands share are defined
//! once and flattened into each; those every subcommand takes are global.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn a YAML file of VMs into running VMs on Proxmox VE, over SSH.
///
/// Exit status: 0 when every VM converged (or the file is valid), 1 when a
/// VM failed or is in conflict, 2 for invalid input or a refused host key
/// (nothing is changed then). `plan` and `status` take
/// `--detailed-exitcode` (0 nothing to do, 1 error, 2 changes or drift).
///
/// Environment: PVEFLEET_LOG (a log filter such as `debug`, overrides -v
/// and -q), PVEFLEET_VERBOSE (any value: as -v), NO_COLOR (any non-empty
/// value: no colour, as --color never unless --color always).
#[derive(Debug, Parser)]
#[command(name = "pvefleet", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Output format: readable text, or JSON on stdout (errors included,
    /// progress as JSON Lines on stderr; see docs/json.md).
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    pub output: Output,
    /// When to colour: auto (on a terminal, unless NO_COLOR is set), always
    /// or never (no escape sequences at all, so no live progress either).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    /// Say more: -v shows each command sent.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Say less: only the summary and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
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
        selection: Selection,
        /// Exit 0 when nothing would change, 2 when something would, 1 on
        /// any error or conflict.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Show the adoption of VMs the file names that exist without the
        /// pvefleet tag, as `apply --adopt` would do it.
        #[arg(long)]
        adopt: bool,
        /// Plan changes that destroy data, as `apply --allow-data-loss`
        /// would make them: a data disk removed from the file, a VM's EFI
        /// vars disk (`bios`, `secure_boot`) or TPM state (`tpm`) removed
        /// or remade.
        #[arg(long)]
        allow_data_loss: bool,
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
        /// Take over the VMs the file names (by vmid, or by name without
        /// one) that exist without the pvefleet tag: one `qm set` adds the
        /// tag and the `managed-by: pvefleet` description line with the
        /// file's changes. Never a container or a template.
        #[arg(long)]
        adopt: bool,
    },
    /// Show each VM of the file: exists, managed, running, address, drift,
    /// changes waiting for a reboot.
    Status {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        target: Target,
        /// Exit 0 when every VM is as the file says, 2 when one is absent,
        /// not managed, or drifted (settings or power state), 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
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
    /// Write an Ansible inventory of the fleet on stdout: a group per tag
    /// (tag_NAME) and per node (node_NAME), all VMs in `pvefleet`.
    ///
    /// `ansible_host` is the VM's static address, else the one its guest
    /// agent reports (the nodes are contacted only for VMs without a static
    /// address); `ansible_user` is its cloud-init `user`.
    Inventory {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        target: Target,
        /// Inventory format.
        #[arg(long, value_enum, default_value_t = InventoryFormat::Ini)]
        format: InventoryFormat,
        /// Never contact the nodes: VMs without a static address get no
        /// ansible_host.
        #[arg(long)]
        offline: bool,
    },
    /// Print a configuration file describing the VMs a node already has, to
    /// take them over with `apply --adopt`.
    ///
    /// The nodes are read as `plan` reads them (`pvesh` over SSH, nothing is
    /// changed). The file passes `check`; what it cannot express is left
    /// out with a comment. The image a VM was made from cannot be read back
    /// from Proxmox: each VM gets a placeholder `image:` marked TODO
    /// (`clone:` when its disk is a linked clone of a template). With
    /// `--output json`, one JSON document holds the file and what was left
    /// out (docs/json.md).
    Import {
        #[command(flatten)]
        host: HostArgs,
        /// Only VMs carrying this tag; repeatable (any of them).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Only this VM id; repeatable.
        #[arg(long = "vmid", value_name = "ID")]
        vmids: Vec<u32>,
        #[command(flatten)]
        target: Target,
    },
    /// Print a starter configuration file from what a host has: its
    /// node(s), the storages that hold VM disks, the bridges and the cloud
    /// images, with one example VM commented out.
    Init {
        #[command(flatten)]
        host: HostArgs,
        #[command(flatten)]
        target: Target,
    },
    /// Print the JSON Schema of the configuration language (for editors:
    /// `# yaml-language-server: $schema=PATH` as a file's first line).
    Schema,
    /// Print a shell completion script.
    ///
    /// bash: `pvefleet completions bash > ~/.local/share/bash-completion/completions/pvefleet`;
    /// zsh: into a folder of $fpath as `_pvefleet`; fish:
    /// `~/.config/fish/completions/pvefleet.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per subcommand.
    Man {
        /// Write pvefleet.1 and pvefleet-SUBCOMMAND.1 into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// The built-in emulated host of --simulate (./.pvefleet-sim).
    Sim {
        /// What to do with it.
        #[command(subcommand)]
        command: SimCmd,
    },
}

/// `pvefleet sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCmd {
    /// Forget the emulated host; with a file, make a fresh one from it now
    /// (else the next --simulate run makes it).
    Reset {
        /// The configuration file to build the host from.
        file: Option<String>,
        /// The Proxmox VE release the fresh host runs (7.0 to 9.x).
        #[arg(long, value_name = "X.Y", requires = "file")]
        simulate_version: Option<String>,
    },
    /// Show the emulated host: nodes, storages, volumes, VMs.
    State,
}

/// The configuration file.
#[derive(Debug, Args, Clone)]
pub struct FileArg {
    /// The configuration file.
    pub file: String,
}

/// The host `import` and `init` read: `--host`, the connection section of
/// a file (`--from`), or the emulated host (`--simulate`).
#[derive(Debug, Args, Clone)]
pub struct HostArgs {
    /// The Proxmox host: an SSH destination, `[USER@]HOST` (aliases from
    /// ~/.ssh/config work), or `local` on the node itself. It is written
    /// into the file's `proxmox:` section.
    #[arg(long, value_name = "DEST", conflicts_with = "from")]
    pub host: Option<String>,
    /// Reach the nodes as the `proxmox:` or `nodes:` section of this
    /// configuration file says, and write that section.
    #[arg(long, value_name = "FILE")]
    pub from: Option<String>,
    /// The Proxmox node to read; repeatable with --from (a cluster).
    /// Default: the host's own node (--host, --simulate), every node of the
    /// file (--from).
    #[arg(long, value_name = "N")]
    pub node: Vec<String>,
}

/// Which VMs of the file.
#[derive(Debug, Args, Clone)]
pub struct Selection {
    /// Only these VMs (name or vmid); repeatable. A name the file does not
    /// have is an error (exit 2).
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
    /// Seconds after a VM starts before a silent guest agent is reported
    /// as missing from the image (a `wait: cloud-init` VM then fails).
    #[arg(long, default_value_t = 60)]
    pub agent_grace: u64,
    /// Keep a VM whose creation failed half-way (default: destroy it).
    #[arg(long)]
    pub keep_failed: bool,
    /// Reboot running VMs whose changes only apply at boot.
    #[arg(long)]
    pub reboot: bool,
    /// Make changes that destroy data: a data disk removed from the file
    /// is destroyed with its volume, a VM's EFI vars disk (`bios`,
    /// `secure_boot`) or TPM state (`tpm`) removed or remade (without it,
    /// each is a plan problem).
    #[arg(long)]
    pub allow_data_loss: bool,
}

/// Where the commands go.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// Use the built-in emulated Proxmox host (state in ./.pvefleet-sim).
    /// It follows the file: nodes, storages, bridges and images the file
    /// names are added to it when missing.
    #[arg(long)]
    pub simulate: bool,
    /// The Proxmox VE release the emulated host runs (7.0 to 9.x); an
    /// existing emulated host is switched to it.
    #[arg(long, value_name = "X.Y", requires = "simulate")]
    pub simulate_version: Option<String>,
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
    /// YAML: the configuration file `import` and `init` write (what they
    /// print anyway; other commands print readable text).
    Yaml,
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Formats of `inventory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    /// Ansible's INI inventory.
    Ini,
    /// Ansible's YAML inventory.
    Yaml,
    /// The YAML inventory's structure written as JSON.
    Json,
}
