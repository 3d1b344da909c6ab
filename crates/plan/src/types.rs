//! The plan as data: per VM an [`Action`], its ordered [`Step`]s, and what
//! stands in the way ([`PlanProblem`]) or is worth saying ([`PlanNote`]).

use crate::problem::{PlanNote, PlanProblem};
use pvefleet_model::{Command, Qm, VmId};
use serde::Serialize;

/// The tag of pvefleet's image-cache templates.
pub const CACHE_TAG: &str = "pvefleet-cache";

/// What happens to a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It does not exist and will be created.
    Create,
    /// It exists, is managed, and some settings change.
    Update,
    /// It exists and matches.
    None,
    /// Something that pvefleet does not manage stands in the way.
    Conflict,
    /// It cannot be planned; [`VmPlan::problem`] says why.
    Error,
    /// It exists, is managed, and will be shut down and destroyed.
    Destroy,
    /// It exists without pvefleet's tag and `--adopt` takes it over: one
    /// `qm set` puts the marker on it (tag and description line) with the
    /// settings the file changes.
    Adopt,
}

impl Action {
    /// The lower-case name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::None => "none",
            Action::Conflict => "conflict",
            Action::Error => "error",
            Action::Destroy => "destroy",
            Action::Adopt => "adopt",
        }
    }
}

/// How the runner decides whether a step succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The exit code tells the truth.
    Exit,
    /// `qm create`/`qm clone` that reserves the VM id: an "already exists"
    /// answer means the id was taken meanwhile.
    Reserve,
    /// `qm importdisk`: the output names the new volume, used by the next step.
    Import,
    /// A task whose exit code is 0 even when it failed inside (`qm disk
    /// resize` and `qm template` on PVE ≥ 8.0): anything on stderr is a failure.
    QuietStderr,
}

/// Where the value of an option that is only known at run time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// The volume the previous `qm importdisk` step reported (PVE < 7.2).
    ImportedVolume,
    /// The path on the node of [`Plan::uploads`]`[i]`: the runner picks the
    /// run's private folder.
    Upload(usize),
}

/// An option of a step's command whose value the runner fills in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepInput {
    /// The `qm` option (`scsi0`, `sshkeys`).
    pub option: &'static str,
    /// Where its value comes from.
    pub source: InputSource,
}

/// One command of a plan, with how to judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What is sent (without the options of [`Step::inputs`]).
    pub command: Command,
    /// How its outcome is judged.
    pub check: Check,
    /// Options added before sending, from what the run knows by then.
    pub inputs: Vec<StepInput>,
}

impl Step {
    /// A step judged by its exit code.
    pub fn exit(command: Command) -> Self {
        Self::checked(command, Check::Exit)
    }

    /// A step judged by `check`.
    pub fn checked(command: Command, check: Check) -> Self {
        Self {
            command,
            check,
            inputs: Vec::new(),
        }
    }

    /// The step with an option filled in at run time.
    pub fn with_input(mut self, option: &'static str, source: InputSource) -> Self {
        self.inputs.push(StepInput { option, source });
        self
    }

    /// The command with its inputs filled in by `value`; `None` when an
    /// input has no value (the step cannot be sent).
    pub fn resolve(&self, value: impl Fn(&InputSource) -> Option<String>) -> Option<Command> {
        let mut command = self.command.clone();
        for input in &self.inputs {
            let v = value(&input.source)?;
            if let Command::Qm(Qm::Create { options, .. } | Qm::Set { options, .. }) = &mut command
            {
                options.push(input.option, v);
            }
        }
        Some(command)
    }

    /// The command as shown in a plan, inputs spelled as placeholders
    /// (`<imported volume>`, `<upload-dir>/sshkeys-0.pub`), secrets redacted.
    pub fn display(&self, uploads: &[Upload]) -> String {
        let shown = self.resolve(|s| {
            Some(match s {
                InputSource::ImportedVolume => "<imported volume>".to_string(),
                InputSource::Upload(i) => uploads
                    .get(*i)
                    .map(|u| format!("<upload-dir>/{}", u.file_name))
                    .unwrap_or_else(|| "<upload>".into()),
            })
        });
        shown.unwrap_or_else(|| self.command.clone()).redacted()
    }
}

/// A file written on a node before the steps that name it (mode 0600, in
/// a private folder the runner makes for the run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upload {
    /// The node.
    pub node: String,
    /// The file's name inside the run's folder on that node.
    pub file_name: String,
    /// The content.
    #[serde(skip)]
    pub content: String,
    /// Where the runner then copies the file on the node (mode 0600), for
    /// a cloud-init snippet: its storage's `snippets/` folder. `None` for
    /// a file only the run's steps read (SSH keys).
    pub install_to: Option<String>,
}

/// One key that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The config key.
    pub key: String,
    /// What the node has.
    pub from: Option<String>,
    /// What the file asks for.
    pub to: Option<String>,
}

/// The lock Proxmox takes to allocate volumes on a storage (CONTRACT §11.3).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageLock {
    /// A storage local to a node: a flock on that node.
    Local {
        /// The node.
        node: String,
        /// The storage.
        storage: String,
    },
    /// A storage shared by the cluster: one pmxcfs lock for all nodes.
    Shared {
        /// The storage.
        storage: String,
    },
}

/// Steps that prepare a node before VMs that depend on them (the image cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prelude {
    /// The node.
    pub node: String,
    /// The template VM id.
    pub vmid: VmId,
    /// What it is, for messages.
    pub label: String,
    /// The steps.
    pub steps: Vec<Step>,
    /// The storage lock its allocation takes.
    pub storage_lock: StorageLock,
}

/// An image downloaded by URL before the VMs that import it (see
/// [`crate::download`]): one per node and storage, one for the cluster on
/// a shared storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    /// The node that downloads it.
    pub node: String,
    /// The volume it makes (`local:iso/noble.img`).
    pub volid: String,
    /// True on a storage the cluster shares (VMs of every node wait for it).
    pub shared: bool,
    /// `pvesh create .../download-url`.
    pub command: pvefleet_model::DownloadUrl,
}

/// The plan for one VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmPlan {
    /// The name from the file.
    pub name: String,
    /// The VM id (from the file, found by name, or allocated).
    pub vmid: Option<VmId>,
    /// True when pvefleet chose the id (it may pick another on a clash).
    pub vmid_allocated: bool,
    /// True for a VM the file gives no id: the run claims its name under a
    /// cluster-wide lock before making it, so that concurrent runs make it
    /// once.
    pub claim_name: bool,
    /// The node the VM lives or will live on.
    pub node: String,
    /// What happens.
    pub action: Action,
    /// The commands, in order.
    pub steps: Vec<Step>,
    /// Indices into [`Plan::uploads`] the steps need.
    pub uploads: Vec<usize>,
    /// Index into [`Plan::preludes`] that must finish first.
    pub prelude: Option<usize>,
    /// The storage lock the steps take to allocate volumes; none when no
    /// step allocates.
    pub storage_lock: Option<StorageLock>,
    /// The keys that change (updates).
    pub changes: Vec<Change>,
    /// Keys whose new value applies only after a reboot.
    pub reboot_pending: Vec<String>,
    /// Why the VM is in conflict or cannot be planned.
    pub problem: Option<PlanProblem>,
    /// What is worth saying but changes nothing.
    pub notes: Vec<PlanNote>,
    /// The desired address, to wait for in the guest agent.
    pub expect_ip: Option<std::net::IpAddr>,
    /// True when the VM should run.
    pub running: bool,
    /// True when the steps include starting the VM.
    pub starts: bool,
    /// Index into [`Plan::downloads`] that must finish first.
    pub download: Option<usize>,
    /// What `apply` waits for once the VM runs.
    pub wait: pvefleet_model::spec::WaitFor,
    /// The file turns the guest agent off (`agent: {enabled: false}`):
    /// nobody will answer, so the run does not wait for its address.
    pub no_agent: bool,
}

impl VmPlan {
    /// A plan for `name` on `node` with nothing decided yet.
    pub fn new(name: &str, node: &str) -> Self {
        Self {
            name: name.to_string(),
            vmid: None,
            vmid_allocated: false,
            claim_name: false,
            node: node.to_string(),
            action: Action::None,
            steps: Vec::new(),
            uploads: Vec::new(),
            prelude: None,
            storage_lock: None,
            changes: Vec::new(),
            reboot_pending: Vec::new(),
            problem: None,
            notes: Vec::new(),
            expect_ip: None,
            running: false,
            starts: false,
            download: None,
            wait: pvefleet_model::spec::WaitFor::Ip,
            no_agent: false,
        }
    }

    /// Records why the VM cannot be planned; its action follows the
    /// problem's kind (conflict or error) and it gets no steps.
    pub fn block(&mut self, problem: PlanProblem) {
        self.action = if problem.is_conflict() {
            Action::Conflict
        } else {
            Action::Error
        };
        self.steps.clear();
        self.problem = Some(problem);
    }

    /// True when the VM is in conflict or cannot be planned.
    pub fn is_blocked(&self) -> bool {
        self.problem.is_some()
    }
}

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per VM, in file order.
    pub vms: Vec<VmPlan>,
    /// Files to write first.
    pub uploads: Vec<Upload>,
    /// Per-node preparation (image cache templates).
    pub preludes: Vec<Prelude>,
    /// Images downloaded by URL first.
    pub downloads: Vec<Download>,
    /// Leftovers of interrupted creates the file does not name: reported
    /// with the command that removes them, never touched.
    pub leftovers: Vec<Leftover>,
}

/// A VM that looks like an unfinished create or clone and that no VM of the
/// file names by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// Its id.
    pub vmid: VmId,
    /// Its node.
    pub node: String,
    /// `create` or `clone`.
    pub lock: String,
}

impl Leftover {
    /// The command an admin runs to remove it once sure nothing runs there.
    pub fn removal(&self) -> String {
        format!(
            "qm destroy {} --skiplock 1 --purge 1 --destroy-unreferenced-disks 1",
            self.vmid
        )
    }
}

impl Plan {
    /// True when nothing would change.
    pub fn is_converged(&self) -> bool {
        self.vms
            .iter()
            .all(|v| v.action == Action::None && v.steps.is_empty())
            && self.preludes.is_empty()
            && self.downloads.is_empty()
    }

    /// True when the plan sends anything that changes a node: steps of a
    /// VM that is not blocked, an image-cache template, a download.
    pub fn has_changes(&self) -> bool {
        self.vms
            .iter()
            .any(|v| !v.is_blocked() && !v.steps.is_empty())
            || !self.preludes.is_empty()
            || !self.downloads.is_empty()
    }

    /// True when a VM is in conflict or cannot be planned.
    pub fn has_problems(&self) -> bool {
        self.vms.iter().any(VmPlan::is_blocked)
    }
}
