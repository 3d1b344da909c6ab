//! `sim reset` and `sim state`: the emulated host of `--simulate`.

use crate::args::SimCmd;
use crate::simulate;
use crate::table::{Align, Cell, Table};
use crate::ui::{self, Failure, Style};
use crate::ExitStatus;
use pve_sim::state::{Root, State};
use serde_json::{json, Value};

/// Runs `sim reset` or `sim state`.
pub fn run(cmd: SimCmd) -> ExitStatus {
    match cmd {
        SimCmd::Reset {
            file,
            simulate_version,
        } => reset(file.as_deref(), simulate_version.as_deref()),
        SimCmd::State => state(),
    }
}

/// Removes the emulated host; with a file, builds a fresh one from it.
fn reset(file: Option<&str>, version: Option<&str>) -> ExitStatus {
    if let Some(v) = version {
        if let Err(f) = simulate::check_version(v) {
            return f.report();
        }
    }
    let desired = match file.map(super::load_file).transpose() {
        Ok(d) => d,
        Err(s) => return s,
    };
    let dir = match simulate::dir() {
        Ok(d) => d,
        Err(f) => return f.report(),
    };
    let existed = dir.exists();
    if existed {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            return Failure::new(
                ExitStatus::Failed,
                "simulate",
                format!("cannot remove {}: {}", dir.display(), ui::io_reason(&e)),
            )
            .at(json!({"file": simulate::root()}))
            .report();
        }
        tracing::info!("emulated host: removed {}", simulate::root().display());
    }
    if let Some(d) = &desired {
        if let Err(f) = simulate::rebuild(d, version) {
            return f.report();
        }
    }
    if ui::ui().json {
        ui::print_json(&json!({
            "root": simulate::root(),
            "removed": existed,
            "created": desired.is_some(),
        }));
    } else if desired.is_none() {
        println!(
            "{}: {}; the next --simulate run makes a fresh one from its file",
            simulate::root().display(),
            if existed { "removed" } else { "there was none" }
        );
    } else {
        println!(
            "{}: made afresh from {}",
            simulate::root().display(),
            file.unwrap_or_default()
        );
    }
    ExitStatus::Ok
}

/// Shows the emulated host.
fn state() -> ExitStatus {
    let dir = match simulate::dir() {
        Ok(d) => d,
        Err(f) => return f.report(),
    };
    if !dir.join("state.json").exists() {
        return Failure::new(
            ExitStatus::Failed,
            "no_simulated_host",
            format!(
                "there is no emulated host in {}",
                simulate::root().display()
            ),
        )
        .at(json!({"file": simulate::root()}))
        .hint("run a command with --simulate, or pvefleet sim reset FILE")
        .report();
    }
    let st = match Root(dir).read() {
        Ok(st) => st,
        Err(f) => {
            return Failure::new(
                ExitStatus::Failed,
                "simulate",
                f.stderr.trim_end().to_string(),
            )
            .at(json!({"file": simulate::root()}))
            .report()
        }
    };
    if ui::ui().json {
        ui::print_json(&state_json(&st));
    } else {
        print!("{}", state_human(&st, ui::ui().color_out));
    }
    ExitStatus::Ok
}

fn vm_name(vm: &pve_sim::state::Vm) -> String {
    vm.config.get("name").cloned().unwrap_or_default()
}

/// The emulated host for programs (docs/json.md, `sim-state`).
fn state_json(st: &State) -> Value {
    json!({
        "root": simulate::root(),
        "version": st.settings.version,
        "nodes": st.nodes.iter().map(|n| json!({"name": n.name, "bridges": n.bridges})).collect::<Vec<_>>(),
        "storages": st.storages.iter().map(|s| json!({"id": s.id, "type": s.kind, "content": s.content, "shared": s.shared})).collect::<Vec<_>>(),
        "volumes": st.volumes.iter().map(|v| json!({"volid": v.volid(), "node": v.node, "size": v.size, "vmid": v.vmid})).collect::<Vec<_>>(),
        "vms": st.vms.iter().map(|(id, vm)| json!({
            "vmid": id,
            "name": vm_name(vm),
            "node": vm.node,
            "status": if vm.running { "running" } else { "stopped" },
            "template": vm.config.get("template").is_some_and(|t| t == "1"),
            "tags": vm.config.get("tags").map(|t| t.split(';').collect::<Vec<_>>()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}

/// The emulated host for people: its release, nodes, storages and VMs.
fn state_human(st: &State, color: bool) -> String {
    let mut out = format!(
        "emulated host in {}: PVE {}\n\n",
        simulate::root().display(),
        st.settings.version
    );
    let mut nodes = Table::new(&[("NODE", Align::Left), ("BRIDGES", Align::Left)]);
    for n in &st.nodes {
        nodes.row(vec![n.name.as_str().into(), n.bridges.join(",").into()]);
    }
    out.push_str(&nodes.render(color));
    let mut storages = Table::new(&[
        ("STORAGE", Align::Left),
        ("TYPE", Align::Left),
        ("SHARED", Align::Left),
        ("CONTENT", Align::Left),
        ("VOLUMES", Align::Right),
    ]);
    for s in &st.storages {
        let volumes = st.volumes.iter().filter(|v| v.storage == s.id).count();
        storages.row(vec![
            s.id.as_str().into(),
            s.kind.as_str().into(),
            if s.shared { "yes" } else { "no" }.into(),
            s.content.join(",").into(),
            volumes.to_string().into(),
        ]);
    }
    out.push('\n');
    out.push_str(&storages.render(color));
    let mut vms = Table::new(&[
        ("VMID", Align::Right),
        ("NAME", Align::Left),
        ("NODE", Align::Left),
        ("STATUS", Align::Left),
        ("TAGS", Align::Left),
    ]);
    for (id, vm) in &st.vms {
        let status = if vm.config.get("template").is_some_and(|t| t == "1") {
            Cell::from("template")
        } else if vm.running {
            Cell::styled("running", Style::Good)
        } else {
            Cell::from("stopped")
        };
        vms.row(vec![
            id.to_string().into(),
            vm_name(vm).into(),
            vm.node.as_str().into(),
            status,
            vm.config.get("tags").cloned().unwrap_or_default().into(),
        ]);
    }
    out.push('\n');
    if vms.is_empty() {
        out.push_str("no VMs\n");
    } else {
        out.push_str(&vms.render(color));
    }
    out
}
