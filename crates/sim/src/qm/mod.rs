//! `qm`: what a Proxmox node does for each command pvefleet (and the
//! original playbook) sends, per CONTRACT.md.

use crate::schema::{self, parse_property_string, Failure, Invocation};
use crate::state::{now_ms, Root, State, Vm, Volume};
use crate::Ctx;
use std::collections::BTreeMap;
use std::time::Duration;

mod disks;
mod drive;
mod guest_exec;
mod hotplug;
mod lifecycle;
mod lvm;
mod unlink;
mod update;
mod util;
mod views;

use disks::*;
use guest_exec::*;
use hotplug::*;
use lifecycle::*;
use unlink::*;
use update::*;
use util::*;
use views::*;

pub(crate) use util::parse_size;
pub use views::{config_view, dhcp_address};

type R = Result<(), Failure>;

fn cfg_missing(node: &str, vmid: u32) -> Failure {
    Failure::die(
        [
            "Configuration file 'nodes/",
            node,
            "/qemu-server/",
            &vmid.to_string(),
            ".conf' does not exist",
        ]
        .concat(),
    )
}

fn vmid_of(p: &BTreeMap<String, String>, key: &str) -> u32 {
    p.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn at_least(st: &State, maj: u32, min: u32) -> bool {
    st.at_least(maj, min)
}

fn param_fail(key: &str, reason: &str, cmd: &str) -> Failure {
    Failure::die(
        [
            "400 Parameter verification failed.\n",
            key,
            ": ",
            reason,
            "\n\n",
            &schema::usage(cmd),
        ]
        .concat(),
    )
}

fn vm_lock(cx: &Ctx, vmid: u32, secs: u64, prefix: &str) -> Result<std::fs::File, Failure> {
    let path = cx.root.vm_lock_path(&cx.node, vmid);
    cx.root
        .try_lock_path(&path, Duration::from_secs(secs))
        .ok_or_else(|| {
            Failure::die(
                [
                    prefix,
                    "can't lock file '/var/lock/qemu-server/lock-",
                    &vmid.to_string(),
                    ".conf' - got timeout",
                ]
                .concat(),
            )
        })
}

/// Loads a VM of this node (the config file lives in the node's folder).
fn local_vm(st: &State, node: &str, vmid: u32) -> Result<Vm, Failure> {
    match st.vms.get(&vmid) {
        Some(vm) if vm.node == node => Ok(vm.clone()),
        _ => Err(cfg_missing(node, vmid)),
    }
}

fn check_lock(vm: &Vm) -> R {
    match vm.config.get("lock") {
        Some(l) => Err(Failure::die(["VM is locked (", l, ")"].concat())),
        None => Ok(()),
    }
}

/// Options the vendored (9.2) schema has but an older host does not
/// (CONTRACT §15): there they are unknown options or keys.
fn version_gates(st: &State, inv: &Invocation) -> R {
    // PVE 7.1 added TPM state and 4m EFI vars with pre-enrolled keys.
    for (key, maj, min) in [
        ("ciupgrade", 8, 0),
        ("ha-managed", 9, 1),
        ("tpmstate0", 7, 1),
    ] {
        if inv.params.contains_key(key) && !st.at_least(maj, min) {
            return Err(schema::unknown_option(&inv.command, key));
        }
    }
    let freeze_fs = inv
        .params
        .get("agent")
        .is_some_and(|a| a.split(',').any(|kv| kv.starts_with("freeze-fs=")));
    let efi_key = inv.params.get("efidisk0").and_then(|e| {
        e.split(',')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
            .find(|k| matches!(*k, "efitype" | "pre-enrolled-keys"))
    });
    if let Some(k) = efi_key.filter(|_| !st.at_least(7, 1)) {
        return Err(param_fail(
            "efidisk0",
            &[
                "invalid format - invalid key in comma-separated list property: ",
                k,
            ]
            .concat(),
            &inv.command,
        ));
    }
    if freeze_fs && !st.at_least(9, 2) {
        return Err(param_fail(
            "agent",
            "invalid format - invalid key in comma-separated list property: freeze-fs",
            &inv.command,
        ));
    }
    Ok(())
}

/// Runs `qm ARGS`.
pub fn run(cx: &mut Ctx, args: &[String]) -> R {
    let st = cx.root.read()?;
    if args.first().map(String::as_str) == Some("disk") && !at_least(&st, 7, 3) {
        return Err(Failure {
            stderr: "ERROR: unknown command 'qm disk'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n"
                .into(),
            exit: 255,
        });
    }
    // `qm cloudinit update` came with the cloud-init pending changes of
    // PVE 7.3 (pve-sim's reading; CONTRACT does not date it).
    if args.first().map(String::as_str) == Some("cloudinit") && !at_least(&st, 7, 3) {
        return Err(Failure {
            stderr: "ERROR: unknown command 'qm cloudinit'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n"
                .into(),
            exit: 255,
        });
    }
    let inv = schema::parse_qm(args)?;
    version_gates(&st, &inv)?;
    let task = task_model(&st, &inv.command);
    cx.task = task.is_some();
    if let Some(message) = cx.task_error.take() {
        return task_error(cx, &st, &inv, task, &message);
    }
    drop(st);
    let result = dispatch(cx, &inv);
    if result.is_ok() {
        task_warnings(cx, task.is_some());
    }
    result
}

/// How `qm COMMAND` runs on this host (CONTRACT §1.3, §1.4): `None` for a
/// direct command; for a task, whether its failure reaches the exit code
/// (`$upid_exit`, which `qm template` and `qm disk resize` lack). Resize
/// became a task in PVE 8.0; pve-sim runs templates as tasks from 8.0 too.
fn task_model(st: &State, command: &str) -> Option<bool> {
    match command {
        "create" | "destroy" | "clone" | "start" | "stop" | "shutdown" | "reboot" | "reset"
        | "suspend" | "resume" | "migrate" | "snapshot" | "delsnapshot" | "rollback"
        | "disk move" => Some(true),
        "template" | "disk resize" if st.at_least(8, 0) => Some(false),
        _ => None,
    }
}

/// A `task-error` fault: the checks made before the worker starts still
/// apply (the VM id is free for a create, the VM is here otherwise); then
/// the task fails without effect, its message on stderr.
fn task_error(cx: &mut Ctx, st: &State, inv: &Invocation, task: Option<bool>, message: &str) -> R {
    let vmid = vmid_of(&inv.params, "vmid");
    if inv.command == "create" {
        if let Some(vm) = st.vms.get(&vmid) {
            return Err(Failure::die(
                [
                    "unable to create VM ",
                    &vmid.to_string(),
                    " - VM ",
                    &vmid.to_string(),
                    " already exists on node '",
                    &vm.node,
                    "'",
                ]
                .concat(),
            ));
        }
    } else if inv.params.contains_key("vmid") {
        local_vm(st, &cx.node, vmid)?;
    }
    match task {
        // No $upid_exit: the error reaches stderr, the exit code stays 0.
        Some(false) => {
            cx.err(message);
            Ok(())
        }
        _ => Err(Failure::die(message)),
    }
}

/// A `task-warnings` fault: `WARN:` lines where the command's output goes,
/// and a task's closing count on stderr (added to warnings it already had).
fn task_warnings(cx: &mut Ctx, task: bool) {
    let Some((message, count)) = cx.task_warnings.take() else {
        return;
    };
    for _ in 0..count {
        cx.tool_err(&["WARN: ", &message].concat());
    }
    if !task {
        return;
    }
    let mut earlier = 0;
    cx.stderr = cx
        .stderr
        .lines()
        .filter(|l| {
            let n = l
                .strip_prefix("Task finished with ")
                .and_then(|r| r.strip_suffix(" warning(s)!"))
                .and_then(|n| n.parse::<u64>().ok());
            earlier += n.unwrap_or(0);
            n.is_none()
        })
        .map(|l| [l, "\n"].concat())
        .collect();
    cx.err(
        &[
            "Task finished with ",
            &(earlier + count).to_string(),
            " warning(s)!",
        ]
        .concat(),
    );
}

/// Runs one parsed `qm` command.
fn dispatch(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    match inv.command.as_str() {
        "create" => create(cx, inv),
        "set" => set(cx, inv),
        "disk import" => import_disk(cx, inv),
        "disk resize" => resize(cx, inv),
        "disk unlink" => unlink(cx, inv),
        "start" => start_vm(cx, vmid_of(p, "vmid")),
        "stop" => stop_vm(
            cx,
            vmid_of(p, "vmid"),
            p.get("skiplock").map(String::as_str) == Some("1"),
        ),
        "shutdown" => stop_vm(cx, vmid_of(p, "vmid"), false),
        "reboot" => {
            let vmid = vmid_of(p, "vmid");
            let st = cx.root.read()?;
            let vm = local_vm(&st, &cx.node, vmid)?;
            if !vm.running {
                return Err(Failure::die(
                    ["VM ", &vmid.to_string(), " not running"].concat(),
                ));
            }
            drop(st);
            stop_vm(cx, vmid, false)?;
            start_vm(cx, vmid)
        }
        "destroy" => destroy(cx, inv),
        "clone" => clone(cx, inv),
        "template" => {
            let st = cx.root.read()?;
            let task = at_least(&st, 8, 0);
            drop(st);
            match template(cx, inv) {
                // `qm template` has no $upid_exit: in-task failures exit 0.
                Err(e) if task && !e.stderr.starts_with("Configuration file") => {
                    cx.err(e.stderr.trim_end());
                    Ok(())
                }
                other => other,
            }
        }
        "guest cmd" => guest_cmd(cx, inv),
        "cloudinit update" => {
            // Regenerating the drive reads the VM's snippets.
            let st = cx.root.read()?;
            let vm = local_vm(&st, &cx.node, vmid_of(p, "vmid"))?;
            crate::snippets::generation_check(&cx.root, &st, &cx.node, &vm.config)
        }
        "guest exec" => guest_exec(cx, inv),
        "guest exec-status" => guest_exec_status(cx, inv),
        "config" => print_config(
            cx,
            vmid_of(p, "vmid"),
            p.get("current").map(String::as_str) == Some("1"),
        ),
        "status" => status(cx, inv),
        "list" => list(cx),
        "unlock" => {
            let vmid = vmid_of(p, "vmid");
            let node = cx.node.clone();
            cx.root.update(|st| match st.vms.get_mut(&vmid) {
                Some(vm) if vm.node == node => {
                    vm.config.remove("lock");
                    Ok(())
                }
                _ => Err(cfg_missing(&node, vmid)),
            })
        }
        // Read-only, but CONTRACT.md does not document what it prints.
        "pending" => Err(Failure::die(
            "pve-sim: 'qm pending' is not emulated: its output format is not documented in CONTRACT.md (qm config shows pending values applied, qm config --current without them)",
        )),
        other => Err(Failure::die(
            ["pve-sim: 'qm ", other, "' is not emulated"].concat(),
        )),
    }
}
