//! How each `qm` invocation is spelled as argv.

use crate::command::Qm;
use crate::VmId;

fn push_vmid(argv: &mut Vec<String>, vmid: VmId) {
    argv.push(vmid.to_string());
}

impl Qm {
    /// The argv of the disk sub-commands, spelled as the node's version
    /// wants (`qm importdisk`/`qm resize` before PVE 7.3).
    fn disk_argv(&self) -> Vec<String> {
        let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let (mut a, vmid, rest) = match self {
            Qm::ImportDisk {
                vmid,
                source,
                storage,
                legacy,
            } => (
                if *legacy {
                    words(&["qm", "importdisk"])
                } else {
                    words(&["qm", "disk", "import"])
                },
                vmid,
                [source.clone(), storage.clone()],
            ),
            Qm::DiskResize {
                vmid,
                disk,
                size,
                legacy,
            } => (
                if *legacy {
                    words(&["qm", "resize"])
                } else {
                    words(&["qm", "disk", "resize"])
                },
                vmid,
                [disk.clone(), size.clone()],
            ),
            Qm::DiskUnlink {
                vmid,
                idlist,
                force,
                legacy,
            } => {
                let mut a = if *legacy {
                    words(&["qm", "unlink"])
                } else {
                    words(&["qm", "disk", "unlink"])
                };
                push_vmid(&mut a, *vmid);
                a.extend(words(&["--idlist", &idlist.join(",")]));
                if *force {
                    a.extend(words(&["--force", "1"]));
                }
                return a;
            }
            _ => return Vec::new(),
        };
        push_vmid(&mut a, *vmid);
        a.extend(rest);
        a
    }

    /// The argv of this `qm` invocation.
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String>;
        let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        match self {
            Qm::Create { vmid, options } => {
                a = words(&["qm", "create"]);
                push_vmid(&mut a, *vmid);
                options.render(&mut a);
            }
            Qm::Set {
                vmid,
                options,
                delete,
            } => {
                a = words(&["qm", "set"]);
                push_vmid(&mut a, *vmid);
                options.render(&mut a);
                if !delete.is_empty() {
                    a.push("--delete".into());
                    a.push(delete.join(","));
                }
            }
            Qm::ImportDisk { .. } | Qm::DiskResize { .. } | Qm::DiskUnlink { .. } => {
                a = self.disk_argv()
            }
            Qm::Start { vmid } => {
                a = words(&["qm", "start"]);
                push_vmid(&mut a, *vmid);
            }
            Qm::Stop { vmid, skiplock } => {
                a = words(&["qm", "stop"]);
                push_vmid(&mut a, *vmid);
                if *skiplock {
                    a.extend(words(&["--skiplock", "1"]));
                }
            }
            Qm::Shutdown { vmid, timeout } => {
                a = words(&["qm", "shutdown"]);
                push_vmid(&mut a, *vmid);
                a.extend(words(&[
                    "--timeout",
                    &timeout.to_string(),
                    "--forceStop",
                    "1",
                ]));
            }
            Qm::Reboot { vmid } => {
                a = words(&["qm", "reboot"]);
                push_vmid(&mut a, *vmid);
            }
            Qm::Resume { vmid } => {
                a = words(&["qm", "resume"]);
                push_vmid(&mut a, *vmid);
            }
            Qm::CloudinitUpdate { vmid } => {
                a = words(&["qm", "cloudinit", "update"]);
                push_vmid(&mut a, *vmid);
            }
            Qm::Destroy { vmid, skiplock } => {
                a = words(&["qm", "destroy"]);
                push_vmid(&mut a, *vmid);
                a.extend(words(&[
                    "--purge",
                    "1",
                    "--destroy-unreferenced-disks",
                    "1",
                ]));
                if *skiplock {
                    a.extend(words(&["--skiplock", "1"]));
                }
            }
            Qm::Clone {
                vmid,
                newid,
                name,
                full,
                storage,
            } => {
                a = words(&["qm", "clone"]);
                push_vmid(&mut a, *vmid);
                push_vmid(&mut a, *newid);
                a.extend(words(&[
                    "--name",
                    name,
                    "--full",
                    if *full { "1" } else { "0" },
                ]));
                if let Some(s) = storage {
                    a.extend(words(&["--storage", s]));
                }
            }
            Qm::Template { vmid } => {
                a = words(&["qm", "template"]);
                push_vmid(&mut a, *vmid);
            }
            Qm::Config { vmid } => {
                a = words(&["qm", "config"]);
                push_vmid(&mut a, *vmid);
            }
            Qm::GuestCmd { vmid, command } => {
                a = words(&["qm", "guest", "cmd"]);
                push_vmid(&mut a, *vmid);
                a.push(command.clone());
            }
            Qm::GuestExec { vmid, command } => {
                a = words(&["qm", "guest", "exec"]);
                push_vmid(&mut a, *vmid);
                a.extend(words(&["--synchronous", "0", "--"]));
                a.extend(command.iter().cloned());
            }
            Qm::GuestExecStatus { vmid, pid } => {
                a = words(&["qm", "guest", "exec-status"]);
                push_vmid(&mut a, *vmid);
                a.push(pid.to_string());
            }
        }
        a
    }
}
