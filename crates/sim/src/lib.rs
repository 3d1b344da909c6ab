//! pve-sim: an emulator of a Proxmox VE node's command line.
//!
//! It answers as `qm`, `pvesh`, `pvesm`, `pveversion` and `ha-manager`
//! (pools and HA resources: [`lifecycle`]), from a state
//! directory (`PVE_SIM_ROOT`) that several emulated nodes of one cluster may
//! share (`PVE_SIM_NODE` says which node a process is). It is as strict as a
//! real host: arguments are checked against Proxmox's own parameter schema
//! (vendored in `schema/qm-schema.json`), texts and exit codes follow
//! CONTRACT.md, VMIDs are unique cluster-wide and locks time out as on a
//! real node. Each invocation is journaled to `ROOT/journal.jsonl` and can be
//! made to fail by `ROOT/faults.json`.

pub mod cfs;
pub mod download;
pub mod faults;
pub mod host;
pub mod init;
pub mod lifecycle;
pub mod pvesh;
pub mod qm;
pub mod schema;
pub mod snippets;
pub mod state;

use schema::Failure;
use serde_json::Value;
use state::{now_ms, Root};
use std::io::Write;
use std::time::Duration;

/// One invocation's context and output.
pub struct Ctx {
    /// The state directory.
    pub root: Root,
    /// The node this process acts as.
    pub node: String,
    /// Collected stdout.
    pub stdout: String,
    /// Collected stderr.
    pub stderr: String,
    /// A pending `partial` fault.
    pub partial: Option<String>,
    /// A pending `task-error` fault: the task fails with this message.
    pub task_error: Option<String>,
    /// A pending `task-warnings` fault: this warning, so many times.
    pub task_warnings: Option<(String, u64)>,
    /// A pending `kill` fault: how many volumes a create or clone makes
    /// (all when `None`) and how long it then runs before it is killed.
    pub kill: Option<(Option<usize>, u64)>,
    /// True while the command runs as a task: a worker's stderr reaches
    /// qm's stdout (CONTRACT §1.3).
    pub task: bool,
}

impl Ctx {
    /// Appends a line to stdout.
    pub fn out(&mut self, line: &str) {
        self.stdout.push_str(line);
        self.stdout.push('\n');
    }

    /// Appends a line to stderr.
    pub fn err(&mut self, line: &str) {
        self.stderr.push_str(line);
        self.stderr.push('\n');
    }

    /// A line a tool run by the command writes to its stderr: qm's stdout
    /// inside a task, its stderr in a direct command.
    pub fn tool_err(&mut self, line: &str) {
        if self.task {
            self.out(line);
        } else {
            self.err(line);
        }
    }
}

/// JSON with keys sorted, on one line (as `pvesh --output-format json`).
pub fn compact_json(v: &Value) -> String {
    sorted(v).to_string()
}

/// Perl JSON `pretty` output: 3-space indent, `"key" : value`, keys sorted.
pub fn pretty_json(v: &Value) -> String {
    fn go(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent + 3);
        match v {
            Value::Array(a) if !a.is_empty() => {
                out.push_str("[\n");
                for (i, x) in a.iter().enumerate() {
                    out.push_str(&pad);
                    go(x, indent + 3, out);
                    if i + 1 < a.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push(']');
            }
            Value::Object(o) if !o.is_empty() => {
                out.push_str("{\n");
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                for (i, k) in keys.iter().enumerate() {
                    out.push_str(&pad);
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push_str(" : ");
                    go(&o[*k], indent + 3, out);
                    if i + 1 < keys.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    go(v, 0, &mut s);
    s
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let mut m = serde_json::Map::new();
            for k in keys {
                m.insert(k.clone(), sorted(&o[k]));
            }
            Value::Object(m)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn pveversion(cx: &mut Ctx) -> Result<(), Failure> {
    let st = cx.root.read()?;
    // A kernel each release shipped with.
    let kernel = if st.at_least(9, 0) {
        "6.14.8-2-pve"
    } else if st.at_least(8, 0) {
        "6.8.12-9-pve"
    } else if st.at_least(7, 2) {
        "5.15.102-1-pve"
    } else {
        "5.13.19-2-pve"
    };
    cx.out(
        &[
            "pve-manager/",
            &st.settings.version,
            "/2a5fa54a8503f96d (running kernel: ",
            kernel,
            ")",
        ]
        .concat(),
    );
    Ok(())
}

fn pvesm(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    if let Some(done) = snippets::pvesm(cx, args) {
        return done;
    }
    match args {
        [cmd, volid] if cmd == "path" => {
            let st = cx.root.read()?;
            let (storage, _) = volid.split_once(':').ok_or_else(|| {
                Failure::die(["unable to parse volume ID '", volid, "'"].concat())
            })?;
            if st.storage(storage).is_none() {
                return Err(Failure::die(
                    ["storage '", storage, "' does not exist"].concat(),
                ));
            }
            // A file storage maps iso/ and import/ names to paths whether
            // the file exists or not (pve-storage Plugin `path`).
            let (_, volname) = volid.split_once(':').unwrap_or(("", ""));
            let file_form = st.storage(storage).is_some_and(state::StorageDef::is_dir)
                && (volname.starts_with("iso/") || volname.starts_with("import/"));
            let absent = state::Volume {
                storage: storage.to_string(),
                node: cx.node.clone(),
                volname: volname.to_string(),
                size: 0,
                content: String::new(),
                format: String::new(),
                vmid: None,
                ctime: 0,
            };
            let vol = match st.find_volume(&cx.node, volid) {
                Some(v) => v,
                None if file_form => &absent,
                None => {
                    return Err(Failure::die(
                        ["volume '", volid, "' does not exist"].concat(),
                    ))
                }
            };
            let path = cx.root.volume_path(&st, vol);
            cx.out(&path.display().to_string());
            Ok(())
        }
        _ => Err(Failure::die(
            "pve-sim: only 'pvesm path <volid>', 'pvesm set <storage> --content <types>' and 'pvesm status' are emulated",
        )),
    }
}

/// Waits for one of the node's CPU slots, then the start-up latency.
fn startup(cx: &Ctx) {
    let Ok(st) = cx.root.read() else { return };
    let (latency, slots) = (st.settings.latency_ms, st.settings.slots.max(1));
    if latency == 0 {
        return;
    }
    loop {
        for i in 0..slots {
            let name = ["slot-", &cx.node, "-", &i.to_string()].concat();
            if let Some(slot) = cx.root.try_lock_for(&name, Duration::ZERO) {
                std::thread::sleep(Duration::from_millis(latency));
                drop(slot);
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn journal(root: &Root, node: &str, argv: &[String], start_ms: u64, exit: i32) {
    let line = serde_json::json!({"node": node, "argv": argv, "start_ms": start_ms, "end_ms": now_ms(), "exit": exit});
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("journal.jsonl"))
    {
        let mut text = line.to_string();
        text.push('\n');
        let _ = f.write_all(text.as_bytes());
    }
}

/// The node this process acts as: `PVE_SIM_NODE`, or the only node.
pub fn resolve_node(root: &Root, env_node: Option<String>) -> Result<String, Failure> {
    if let Some(n) = env_node.filter(|n| !n.is_empty()) {
        return Ok(n);
    }
    let st = root.read()?;
    match st.nodes.as_slice() {
        [one] => Ok(one.name.clone()),
        _ => Err(Failure::die(
            "pve-sim: several nodes share this ROOT; set PVE_SIM_NODE",
        )),
    }
}

/// Runs one emulated program and returns (exit, stdout, stderr).
pub fn run(
    root: Root,
    env_node: Option<String>,
    program: &str,
    args: &[String],
) -> (i32, String, String) {
    let start = now_ms();
    let node = match resolve_node(&root, env_node) {
        Ok(n) => n,
        Err(f) => return (f.exit, String::new(), f.stderr),
    };
    let mut cx = Ctx {
        root: root.clone(),
        node: node.clone(),
        stdout: String::new(),
        stderr: String::new(),
        partial: None,
        task_error: None,
        task_warnings: None,
        kill: None,
        task: false,
    };
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().cloned());
    if !host::PROGRAMS.contains(&program) {
        startup(&cx);
    }
    let result = faults::before(&mut cx, &argv.join(" "))
        .and_then(|_| host::needs_root(&cx, program, args))
        .and_then(|_| match program {
            "qm" => qm::run(&mut cx, args),
            "pvesh" => pvesh::run(&mut cx, args),
            "pvesm" => pvesm(&mut cx, args),
            "pveversion" => pveversion(&mut cx),
            "ha-manager" => lifecycle::ha_manager(&mut cx, args),
            tool if host::PROGRAMS.contains(&tool) => host::run(&mut cx, tool, args),
            other => Err(Failure::die(
                ["pve-sim: unknown program '", other, "'"].concat(),
            )),
        });
    let exit = match result {
        Ok(()) => 0,
        Err(f) => {
            cx.stderr.push_str(&f.stderr);
            f.exit
        }
    };
    journal(&root, &node, &argv, start, exit);
    (exit, cx.stdout, cx.stderr)
}

/// Every program the multi-call binary answers as, through a link of that
/// name: Proxmox's `qm`, `pvesh`, `pvesm`, `pveversion` and `ha-manager`, and the shell
/// tools a root shell uses on the paths pve-sim emulates (see [`host`]).
pub const PROGRAMS: &[&str] = &[
    "qm",
    "pvesh",
    "pvesm",
    "pveversion",
    "ha-manager",
    "mkdir",
    "rmdir",
    "touch",
    "flock",
];

/// The multi-call entry point: `argv0` decides the program (one of
/// [`PROGRAMS`]), else the first argument does; `init` and `state` manage
/// a ROOT. A shell tool given no emulated path runs the real tool.
pub fn main_with(argv: Vec<String>) -> i32 {
    let prog = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let (program, rest) = if PROGRAMS.contains(&prog.as_str()) {
        (prog, argv[1..].to_vec())
    } else {
        match argv.get(1).map(String::as_str) {
            Some("init") => return init::init_cli(&argv[2..]),
            Some("state") => return init::state_cli(&argv[2..]),
            Some(p) if PROGRAMS.contains(&p) => (p.to_string(), argv[2..].to_vec()),
            _ => {
                eprintln!("usage: pve-sim init ROOT [OPTIONS] | pve-sim state ROOT | pve-sim PROGRAM ARGS...\n(PROGRAM: {}; or call it through a link of that name)", PROGRAMS.join(", "));
                return 2;
            }
        }
    };
    if host::PROGRAMS.contains(&program.as_str()) && host::passes_through(&program, &rest) {
        return pass_through(&program, &rest);
    }
    let Some(root) = std::env::var_os("PVE_SIM_ROOT") else {
        eprintln!("pve-sim: PVE_SIM_ROOT is not set");
        return 2;
    };
    let (exit, out, err) = run(
        Root(root.into()),
        std::env::var("PVE_SIM_NODE").ok(),
        &program,
        &rest,
    );
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(err.as_bytes());
    exit
}

/// Runs the real `program` for a use pve-sim does not emulate.
fn pass_through(program: &str, args: &[String]) -> i32 {
    let Some(real) = host::real_tool(program) else {
        eprintln!("pve-sim: no real '{program}' on PATH");
        return 127;
    };
    match std::process::Command::new(&real).args(args).status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("pve-sim: cannot run {}: {e}", real.display());
            126
        }
    }
}
