//! `qm guest exec` and `qm guest exec-status`, and how each guest behaves
//! inside: `ROOT/guests.json` scripts it per VM name (`"*"` for any VM):
//! `{"web-01": {"cloud_init": "error", "message": "...", "after_ms": 500},
//! "web-02": {"agent": false}}`. `cloud_init` is `done` (the default),
//! `error` (the message names the failing module) or `degraded` (the
//! message is a recoverable error); the verdict is ready `after_ms` after
//! the VM started. `agent: false` is an image without qemu-guest-agent:
//! every agent command fails with `QEMU guest agent is not running`.
//!
//! Host facts (qemu-server `src/PVE/CLI/qm.pm` `exec`,
//! `src/PVE/QemuServer/Agent.pm`): exec needs a command (`command or
//! input-data (or both) required`); `--timeout` needs `--synchronous`;
//! synchronous exec polls for up to `--timeout` (30) seconds and then
//! warns `timeout reached, returning pid`; results print as pretty JSON,
//! `exited` as a JSON boolean, `out-data` decoded.

use super::*;
use serde_json::{json, Value};

/// One guest's script.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct GuestScript {
    /// `false`: the image has no guest agent.
    #[serde(default)]
    pub agent: Option<bool>,
    /// `done`, `error` or `degraded`.
    #[serde(default)]
    pub cloud_init: Option<String>,
    /// The module's error or the recoverable error.
    #[serde(default)]
    pub message: Option<String>,
    /// Milliseconds after start until cloud-init is finished.
    #[serde(default)]
    pub after_ms: u64,
}

/// The script of the guest named `name`.
pub fn script(root: &Root, name: &str) -> GuestScript {
    let Ok(text) = std::fs::read_to_string(root.0.join("guests.json")) else {
        return GuestScript::default();
    };
    let all: BTreeMap<String, GuestScript> = serde_json::from_str(&text).unwrap_or_default();
    all.get(name)
        .or_else(|| all.get("*"))
        .cloned()
        .unwrap_or_default()
}

/// A started guest command.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Exec {
    vmid: u32,
    started_ms: u64,
    argv: Vec<String>,
}

fn execs_path(root: &Root) -> std::path::PathBuf {
    root.0.join("guest-exec.json")
}

/// The answer of `cloud-init ARGS` in a guest, once it exited: exit
/// code, stdout, stderr; `None` while it runs.
fn cloud_init(sc: &GuestScript, args: &[String], ready: bool) -> Option<(i64, String, String)> {
    if args.first().map(String::as_str) != Some("status") {
        return Some((
            2,
            String::new(),
            "pve-sim: only 'cloud-init status' is emulated\n".into(),
        ));
    }
    let wait = args.iter().any(|a| a == "--wait" || a == "-w");
    if !ready && wait {
        return None;
    }
    let msg = sc.message.clone().unwrap_or_default();
    let (status, extended, errors, recoverable, code) = match (ready, sc.cloud_init.as_deref()) {
        (false, _) => ("running", "running", json!([]), json!({}), 0),
        (true, Some("error")) => ("error", "error - done", json!([msg]), json!({}), 1),
        (true, Some("degraded")) => (
            "done",
            "degraded done",
            json!([]),
            json!({"WARNING": [msg]}),
            2,
        ),
        _ => ("done", "done", json!([]), json!({}), 0),
    };
    let v = json!({"boot_status_code": "enabled-by-generator", "datasource": "nocloud", "detail": "DataSourceNoCloud [seed=/dev/sr0]", "errors": errors, "extended_status": extended, "last_update": "", "recoverable_errors": recoverable, "status": status});
    let out = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    Some((code, out, String::new()))
}

/// The status of exec `e` as the guest agent reports it.
fn status_of(root: &Root, st: &State, e: &Exec) -> Value {
    let Some(vm) = st.vms.get(&e.vmid) else {
        return json!({"exited": true, "exitcode": 255});
    };
    let name = vm.config.get("name").cloned().unwrap_or_default();
    let sc = script(root, &name);
    let ready = now_ms() >= vm.started_ms + sc.after_ms;
    let answer = match e.argv.first().map(String::as_str) {
        Some("cloud-init") => cloud_init(&sc, &e.argv[1..], ready),
        _ => Some((127, String::new(), "sh: command not found\n".into())),
    };
    match answer {
        None => json!({"exited": false}),
        Some((code, out, err)) => {
            let mut v = json!({"exited": true, "exitcode": code});
            if !out.is_empty() {
                v["out-data"] = json!(out);
            }
            if !err.is_empty() {
                v["err-data"] = json!(err);
            }
            v
        }
    }
}

/// `qm guest exec VMID [--synchronous 0|1] [--timeout N] -- CMD ARGS...`.
pub(super) fn guest_exec(cx: &mut Ctx, inv: &Invocation) -> R {
    let p = &inv.params;
    let vmid = vmid_of(p, "vmid");
    let sync = p.get("synchronous").is_none_or(|v| v == "1");
    if p.contains_key("timeout") && !sync {
        return Err(Failure::die(
            "400 Parameter verification failed.\nsynchronous: needs to be set for 'timeout'\n",
        ));
    }
    let st = cx.root.read()?;
    agent_ready(cx, &st, vmid)?;
    if inv.extra.is_empty() {
        return Err(Failure::die("command or input-data (or both) required"));
    }
    let started_ms = now_ms();
    let exec = Exec {
        vmid,
        started_ms,
        argv: inv.extra.clone(),
    };
    let path = execs_path(&cx.root);
    let pid = cx.root.update(|_| {
        let mut all: BTreeMap<u64, Exec> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let pid = all.keys().next_back().map_or(1000, |k| k + 1);
        all.insert(pid, exec.clone());
        let text = serde_json::to_string(&all).unwrap_or_default();
        std::fs::write(&path, text).map_err(|e| Failure::die(e.to_string()))?;
        Ok(pid)
    })?;
    if !sync {
        cx.out(&crate::pretty_json(&json!({"pid": pid})));
        return Ok(());
    }
    let timeout: u64 = p.get("timeout").and_then(|t| t.parse().ok()).unwrap_or(30);
    loop {
        let st = cx.root.read()?;
        let v = status_of(&cx.root, &st, &exec);
        if v["exited"] == json!(true) {
            cx.out(&crate::pretty_json(&v));
            return Ok(());
        }
        if timeout != 0 && now_ms() >= started_ms + timeout * 1000 {
            cx.err("timeout reached, returning pid");
            cx.out(&crate::pretty_json(&json!({"pid": pid})));
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `qm guest exec-status VMID PID`.
pub(super) fn guest_exec_status(cx: &mut Ctx, inv: &Invocation) -> R {
    let vmid = vmid_of(&inv.params, "vmid");
    let pid: u64 = inv
        .params
        .get("pid")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let st = cx.root.read()?;
    agent_ready(cx, &st, vmid)?;
    let all: BTreeMap<u64, Exec> = std::fs::read_to_string(execs_path(&cx.root))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let Some(exec) = all.get(&pid).filter(|e| e.vmid == vmid) else {
        return Err(Failure::die("Agent error: Invalid parameter 'pid'"));
    };
    let v = status_of(&cx.root, &st, exec);
    cx.out(&crate::pretty_json(&v));
    Ok(())
}
