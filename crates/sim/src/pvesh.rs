//! `pvesh get PATH --output-format json` for the API paths pvefleet reads.

use crate::schema::Failure;
use crate::state::{now_ms, State, Vm};
use crate::{compact_json, pretty_json, Ctx};
use serde_json::{json, Value};

fn vm_entry(st: &State, vmid: u32, vm: &Vm, fresh: bool) -> Value {
    let mut e = json!({
        "id": (["qemu/", &vmid.to_string()].concat()),
        "vmid": vmid,
        "node": vm.node,
        "type": "qemu",
    });
    let lagging = !fresh && now_ms() < vm.created_ms + st.settings.rrd_lag_ms;
    if lagging {
        e["status"] = json!("unknown");
    } else {
        let mem: u64 = vm
            .config
            .get("memory")
            .and_then(|m| m.parse().ok())
            .unwrap_or(512);
        e["name"] =
            json!(vm
                .config
                .get("name")
                .cloned()
                .unwrap_or_else(|| ["VM ", &vmid.to_string()].concat()));
        e["status"] = json!(if vm.running { "running" } else { "stopped" });
        e["template"] = json!(u8::from(
            vm.config.get("template").map(String::as_str) == Some("1")
        ));
        e["maxmem"] = json!(mem << 20);
        e["mem"] = json!(if vm.running { (mem << 20) / 4 } else { 0 });
        e["maxcpu"] = json!(vm
            .config
            .get("cores")
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(1));
        e["cpu"] = json!(0);
        e["uptime"] = json!(if vm.running {
            (now_ms() - vm.started_ms) / 1000
        } else {
            0
        });
        for k in [
            "disk",
            "maxdisk",
            "netin",
            "netout",
            "diskread",
            "diskwrite",
        ] {
            e[k] = json!(0);
        }
    }
    if let Some(t) = vm.config.get("tags") {
        e["tags"] = json!(t);
    }
    if let Some(l) = vm.config.get("lock") {
        e["lock"] = json!(l);
    }
    e
}

fn node_entry(st: &State, name: &str, memory: u64) -> Value {
    let used: u64 = st
        .vms
        .values()
        .filter(|v| v.node == name && v.running)
        .map(|v| {
            v.config
                .get("memory")
                .and_then(|m| m.parse::<u64>().ok())
                .unwrap_or(512)
                << 20
        })
        .sum();
    json!({"id": (["node/", name].concat()), "node": name, "type": "node", "status": "online", "level": "",
           "maxmem": memory, "mem": used.min(memory), "maxcpu": 16, "cpu": 0.02, "uptime": 86400,
           "disk": 0, "maxdisk": 100u64 << 30})
}

/// The typed value of a config key as the API returns it.
fn api_value(st: &State, key: &str, v: &str) -> Value {
    // `memory` is a property string, returned as a string, since 8.1.
    if key == "memory" && !st.at_least(8, 1) {
        if let Ok(n) = v.parse::<i64>() {
            return json!(n);
        }
    }
    const INTS: &[&str] = &[
        "cores",
        "sockets",
        "onboot",
        "template",
        "balloon",
        "cpuunits",
        "protection",
        "kvm",
        "acpi",
        "tablet",
        "numa",
        "ciupgrade",
    ];
    if INTS.contains(&key) {
        if let Ok(n) = v.parse::<i64>() {
            return json!(n);
        }
    }
    json!(v)
}

fn option(args: &[String], name: &str) -> Option<String> {
    let flag = ["--", name].concat();
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Runs `pvesh ARGS`.
pub fn run(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let verb = args.first().map(String::as_str).unwrap_or("");
    if verb == "create" {
        let raw = args.get(1).cloned().unwrap_or_default();
        let parts: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        if let ["nodes", node, "storage", storage, "download-url"] = parts.as_slice() {
            let node = if *node == "localhost" {
                cx.node.clone()
            } else {
                node.to_string()
            };
            return crate::download::download_url(cx, &node, storage, &args[2..]);
        }
    }
    let raw = args.get(1).cloned().unwrap_or_default();
    let path = ["/", raw.trim_matches('/')].concat();
    let opts = &args[2.min(args.len())..];
    if matches!(verb, "set" | "create") {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        return crate::lifecycle::pvesh_write(cx, verb, &parts, opts);
    }
    if verb != "get" {
        return Err(Failure::die(
            [
                "pve-sim: 'pvesh ",
                verb,
                "' is not emulated (only get, and set/create of pools)",
            ]
            .concat(),
        ));
    }
    let format = option(opts, "output-format").unwrap_or_else(|| "text".into());
    let st = cx.root.read()?;
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let no_handler = || Failure {
        stderr: ["No 'get' handler defined for '", &path, "'\n"].concat(),
        exit: 1,
    };
    let node_ok = |n: &str| -> Result<String, Failure> {
        if n == "localhost" {
            return Ok(cx.node.clone());
        }
        if st.node(n).is_some() {
            return Ok(n.to_string());
        }
        Err(Failure::die(
            [
                "hostname lookup '",
                n,
                "' failed - failed to get address info for: ",
                n,
                ": Name or service not known",
            ]
            .concat(),
        ))
    };
    let value: Value = match parts.as_slice() {
        ["version"] => {
            let release: Vec<&str> = st.settings.version.split(['.', '-']).take(2).collect();
            json!({"release": release.join("."), "repoid": "2a5fa54a8503f96d", "version": st.settings.version})
        }
        ["storage"] => crate::snippets::storage_list(&cx.root, &st, &cx.node),
        ["cluster", "resources"] => {
            let ty = option(opts, "type");
            let mut out = Vec::new();
            if ty.is_none() || ty.as_deref() == Some("vm") {
                out.extend(st.vms.iter().map(|(id, vm)| {
                    let mut e = vm_entry(&st, *id, vm, false);
                    crate::lifecycle::vm_extras(&st, *id, &mut e);
                    e
                }));
            }
            if ty.is_none() {
                out.extend(crate::lifecycle::pool_entries(&st));
            }
            if ty.is_none() || ty.as_deref() == Some("node") {
                out.extend(st.nodes.iter().map(|n| node_entry(&st, &n.name, n.memory)));
            }
            if ty.is_none() || ty.as_deref() == Some("storage") {
                for n in &st.nodes {
                    for s in &st.storages {
                        out.push(json!({"id": (["storage/", &n.name, "/", &s.id].concat()), "node": n.name, "storage": s.id, "type": "storage", "status": "available", "shared": u8::from(s.shared), "plugintype": s.kind, "content": s.content.join(",")}));
                    }
                }
            }
            json!(out)
        }
        ["cluster", "nextid"] => match option(opts, "vmid") {
            Some(v) => {
                let id: u32 = v.parse().unwrap_or(0);
                if st.vms.contains_key(&id) {
                    return Err(Failure::die(
                        [
                            "400 Parameter verification failed.\nvmid: VM ",
                            &v,
                            " already exists\n",
                        ]
                        .concat(),
                    ));
                }
                json!(v)
            }
            None => {
                let mut id = 100;
                while st.vms.contains_key(&id) {
                    id += 1;
                }
                json!(id.to_string())
            }
        },
        ["nodes"] => json!(st
            .nodes
            .iter()
            .map(|n| {
                let mut e = node_entry(&st, &n.name, n.memory);
                e["ssl_fingerprint"] = json!("AA:BB:CC");
                e
            })
            .collect::<Vec<_>>()),
        ["nodes", n, "qemu"] => {
            let n = node_ok(n)?;
            json!(st
                .vms
                .iter()
                .filter(|(_, vm)| vm.node == n)
                .map(|(id, vm)| {
                    let mut e = vm_entry(&st, *id, vm, true);
                    if let Some(o) = e.as_object_mut() {
                        o.remove("id");
                        o.remove("node");
                        o.remove("type");
                    }
                    e
                })
                .collect::<Vec<_>>())
        }
        ["nodes", n, "network"] => {
            let n = node_ok(n)?;
            let node = st.node(&n).cloned();
            let mut out = vec![
                json!({"iface": "eno1", "type": "eth", "active": 1, "autostart": 1, "exists": 1, "method": "manual", "families": ["inet"], "priority": 2}),
            ];
            for (i, b) in node
                .map(|n| n.bridges)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                out.push(json!({"iface": b, "type": "bridge", "active": 1, "autostart": 1, "bridge_ports": if i == 0 { "eno1" } else { "" }, "bridge_stp": "off", "bridge_fd": "0", "method": "manual", "families": ["inet"], "priority": 3 + i}));
            }
            json!(out)
        }
        ["nodes", n, "storage", s, "content"] => {
            let n = node_ok(n)?;
            if st.storage(s).is_none() {
                return Err(Failure::die(["storage '", s, "' does not exist"].concat()));
            }
            let content = option(opts, "content");
            if let Some(c) = &content {
                if ![
                    "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import",
                ]
                .contains(&c.as_str())
                {
                    return Err(Failure::die(["400 Parameter verification failed.\ncontent: invalid format - invalid content type '", c, "'\n"].concat()));
                }
            }
            let enabled = st.storage(s).map(|d| d.content.clone()).unwrap_or_default();
            let mut vols: Vec<Value> = st
                .volumes_on(&n, s)
                .filter(|v| enabled.contains(&v.content))
                .filter(|v| content.as_ref().is_none_or(|c| *c == v.content))
                .map(|v| {
                    let mut e = json!({"volid": v.volid(), "content": v.content, "format": v.format, "size": v.size, "ctime": v.ctime});
                    if let Some(id) = v.vmid {
                        e["vmid"] = json!(id);
                    }
                    e
                })
                .collect();
            if enabled.iter().any(|c| c == "snippets")
                && content.as_deref().is_none_or(|c| c == "snippets")
            {
                vols.extend(crate::snippets::written(&cx.root, &st, &n, s));
            }
            vols.sort_by_key(|v| v["volid"].as_str().unwrap_or("").to_ascii_lowercase());
            json!(vols)
        }
        ["nodes", n, "qemu", id, rest @ ..] => {
            let n = node_ok(n)?;
            let vmid: u32 = id.parse().unwrap_or(0);
            let vm = match st.vms.get(&vmid) {
                Some(vm) if vm.node == n => vm.clone(),
                _ => {
                    return Err(Failure::die(
                        [
                            "Configuration file 'nodes/",
                            &n,
                            "/qemu-server/",
                            id,
                            ".conf' does not exist",
                        ]
                        .concat(),
                    ))
                }
            };
            match rest {
                ["config"] => {
                    let mut m = serde_json::Map::new();
                    let mut cfg = vm.config.clone();
                    if option(opts, "current").as_deref() != Some("1") {
                        cfg.extend(vm.pending.clone());
                    }
                    for (k, v) in cfg {
                        let v = if k == "cipassword" {
                            "**********".into()
                        } else {
                            v
                        };
                        m.insert(k.clone(), api_value(&st, &k, &v));
                    }
                    m.insert(
                        "digest".into(),
                        json!("0123456789abcdef0123456789abcdef01234567"),
                    );
                    Value::Object(m)
                }
                ["pending"] => {
                    let mut keys: Vec<&String> =
                        vm.config.keys().chain(vm.pending.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    json!(keys
                        .into_iter()
                        .map(|k| {
                            let mask = |v: &String| {
                                if k == "cipassword" {
                                    json!("**********")
                                } else {
                                    api_value(&st, k, v)
                                }
                            };
                            let mut e = json!({"key": k});
                            if let Some(v) = vm.config.get(k) {
                                e["value"] = mask(v);
                            }
                            if let Some(p) = vm.pending.get(k) {
                                e["pending"] = mask(p);
                            }
                            if vm.pending_delete.contains(k) {
                                e["delete"] = json!(1);
                            }
                            e
                        })
                        .collect::<Vec<_>>())
                }
                ["status", "current"] => {
                    let mut e = vm_entry(&st, vmid, &vm, true);
                    e["ha"] = json!({"managed": 0});
                    e["qmpstatus"] = e["status"].clone();
                    if vm.config.contains_key("agent") {
                        e["agent"] = json!(1);
                    }
                    e
                }
                _ => return Err(no_handler()),
            }
        }
        other => crate::lifecycle::pvesh_get(&st, other).ok_or_else(no_handler)?,
    };
    match format.as_str() {
        "json" => cx.out(&compact_json(&value)),
        "json-pretty" => cx.out(&pretty_json(&value)),
        _ => match &value {
            Value::String(s) => cx.out(s),
            other => cx.out(&pretty_json(other)),
        },
    }
    Ok(())
}
