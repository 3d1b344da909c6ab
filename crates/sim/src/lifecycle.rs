//! Resource pools and HA resources, as a node's API and `ha-manager` show
//! and change them.
//!
//! Host behaviour emulated (pve-manager `PVE/API2/Pool.pm`;
//! pve-access-control `PVE/RPCEnvironment.pm` `check_pool_exist`; pve-ha-manager
//! `src/PVE/API2/HA/Resources.pm`, `src/PVE/HA/Config.pm`,
//! `src/PVE/CLI/ha_manager.pm`; pve-manager `PVE/API2/Cluster.pm`
//! `resources`):
//! - `pvesh create /pools --poolid P`; `pvesh set /pools/P --vms ID` (or
//!   `pvesh set /pools --poolid P ...`, the form nested pools need) adds a
//!   VM (`VM ID is already a pool member`, `VM ID belongs already to pool
//!   'O'`), `--delete 1` removes it (`VM ID is not a pool member`); errors
//!   inside the user.cfg lock are prefixed (`update pools failed: `,
//!   `create pool failed: `); `pvesh get /pools` lists the pools.
//! - `qm create --pool P` of a missing pool: `Permission check failed
//!   (pool 'P' does not exist)` (raise_perm_exc), before anything is made.
//! - `/cluster/resources` lists each pool (`type: pool`) and, on a guest,
//!   its `pool` and its HA state (`hastate`).
//! - `ha-manager add vm:ID [--state S] [--group G]` (`resource 'vm:ID'
//!   does not exist in cluster`, `create resource failed: resource ID
//!   'vm:ID' already defined`), `set` (`HA group 'G' does not exist`, `no
//!   such resource 'vm:ID'`), `remove`, `status`, `groupadd G --nodes N`.
//!   On PVE 9 (pve-ha-manager 5) HA groups are migrated to rules: with no
//!   group left, `--group` and `groupadd` are refused. The requested state
//!   is recorded; the CRM's reaction (starting or stopping the VM) is not
//!   emulated.
//! - `qm destroy` of a VM in HA resources without `--purge` fails; with
//!   it, the VM leaves its HA resource and its pool.

use crate::schema::Failure;
use crate::state::State;
use crate::Ctx;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// An HA resource as `/etc/pve/ha/resources.cfg` keeps it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HaEntry {
    /// The requested state.
    pub state: String,
    /// The HA group.
    pub group: Option<String>,
}

const HA_STATES: &[&str] = &["started", "stopped", "enabled", "disabled", "ignored"];

fn param_fail(key: &str, reason: &str) -> Failure {
    Failure::die(["400 Parameter verification failed.\n", key, ": ", reason].concat())
}

fn option<'a>(opts: &'a [String], name: &str) -> Option<&'a str> {
    let flag = ["--", name].concat();
    opts.iter()
        .position(|a| *a == flag)
        .and_then(|i| opts.get(i + 1))
        .map(String::as_str)
}

/// Refuses options outside `allowed` (pairs `--key value`).
fn only_options(opts: &[String], allowed: &[&str]) -> Result<(), Failure> {
    for (i, o) in opts.iter().enumerate().step_by(2) {
        let key = o.strip_prefix("--").unwrap_or(o);
        if !allowed.contains(&key) || opts.get(i + 1).is_none() {
            return Err(param_fail(
                key,
                "property is not defined in schema and the schema does not allow additional properties",
            ));
        }
    }
    Ok(())
}

/// `qm create --pool P`: the pool must exist.
pub fn check_create_pool(st: &State, pool: &str) -> Result<(), Failure> {
    if st.pools.contains_key(pool) {
        return Ok(());
    }
    Err(Failure::die(
        ["Permission check failed (pool '", pool, "' does not exist)"].concat(),
    ))
}

/// Adds `vmid` to `pool` (after a create).
pub fn join_pool(st: &mut State, pool: &str, vmid: u32) {
    if let Some(members) = st.pools.get_mut(pool) {
        members.insert(vmid);
    }
}

/// The pool `vmid` is in.
pub fn pool_of(st: &State, vmid: u32) -> Option<&str> {
    st.pools
        .iter()
        .find(|(_, m)| m.contains(&vmid))
        .map(|(p, _)| p.as_str())
}

/// What `/cluster/resources` adds to a guest's entry: `pool`, `hastate`.
pub fn vm_extras(st: &State, vmid: u32, e: &mut Value) {
    if let Some(p) = pool_of(st, vmid) {
        e["pool"] = json!(p);
    }
    if let Some(h) = st.ha_resources.get(&["vm:", &vmid.to_string()].concat()) {
        e["hastate"] = json!(h.state);
    }
}

/// The pools' entries of `/cluster/resources`.
pub fn pool_entries(st: &State) -> Vec<Value> {
    st.pools
        .keys()
        .map(|p| json!({"id": (["/pool/", p].concat()), "pool": p, "type": "pool"}))
        .collect()
}

/// `qm destroy`: a VM in HA resources needs `--purge`, which also takes
/// it out of its HA resource and its pool.
pub fn before_destroy(st: &State, vmid: u32, purge: bool) -> Result<(), Failure> {
    let sid = ["vm:", &vmid.to_string()].concat();
    if st.ha_resources.contains_key(&sid) && !purge {
        return Err(Failure::die(
            [
                "unable to remove VM ",
                &vmid.to_string(),
                " - used in HA resources and purge parameter not set.",
            ]
            .concat(),
        ));
    }
    Ok(())
}

/// The purge of a destroyed VM's HA resource and pool membership.
pub fn purge(st: &mut State, vmid: u32) {
    st.ha_resources.remove(&["vm:", &vmid.to_string()].concat());
    for members in st.pools.values_mut() {
        members.remove(&vmid);
    }
}

/// `pvesh get` of `/pools` and `/cluster/ha/resources`.
pub fn pvesh_get(st: &State, parts: &[&str]) -> Option<Value> {
    match parts {
        ["pools"] => Some(json!(st
            .pools
            .keys()
            .map(|p| json!({"poolid": p}))
            .collect::<Vec<_>>())),
        ["cluster", "ha", "resources"] => Some(json!(st
            .ha_resources
            .iter()
            .map(|(sid, h)| {
                let mut e = json!({"sid": sid, "state": h.state, "type": "vm", "digest": "0123456789abcdef0123456789abcdef01234567"});
                if let Some(g) = &h.group {
                    e["group"] = json!(g);
                }
                e
            })
            .collect::<Vec<_>>())),
        _ => None,
    }
}

/// `pvesh create /pools` and `pvesh set /pools/P`.
pub fn pvesh_write(
    cx: &mut Ctx,
    verb: &str,
    parts: &[&str],
    opts: &[String],
) -> Result<(), Failure> {
    match (verb, parts) {
        ("create", ["pools"]) => {
            only_options(opts, &["poolid", "comment"])?;
            let pool = option(opts, "poolid")
                .ok_or_else(|| param_fail("poolid", "property is missing and it is not optional"))?
                .to_string();
            cx.root.update(|st| {
                if st.pools.contains_key(&pool) {
                    return Err(Failure::die(
                        ["create pool failed: pool '", &pool, "' already exists"].concat(),
                    ));
                }
                st.pools.insert(pool.clone(), Default::default());
                Ok(())
            })
        }
        ("set", ["pools", ..]) => {
            let pool = match parts {
                ["pools"] => {
                    only_options(opts, &["poolid", "vms", "delete", "comment"])?;
                    option(opts, "poolid")
                        .ok_or_else(|| {
                            param_fail("poolid", "property is missing and it is not optional")
                        })?
                        .to_string()
                }
                _ => {
                    only_options(opts, &["vms", "delete", "comment"])?;
                    parts[1..].join("/")
                }
            };
            let delete = option(opts, "delete").is_some_and(|d| d == "1");
            let vms: Vec<String> = option(opts, "vms")
                .map(|v| {
                    v.split([',', ';', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let fail = |m: String| Failure::die(["update pools failed: ", &m].concat());
            cx.root.update(|st| {
                if !st.pools.contains_key(&pool) {
                    return Err(fail(["pool '", &pool, "' does not exist"].concat()));
                }
                for v in &vms {
                    let vmid: u32 = v.parse().unwrap_or(0);
                    let current = pool_of(st, vmid).map(str::to_string);
                    if delete {
                        if current.as_deref() != Some(pool.as_str()) {
                            return Err(fail(["VM ", v, " is not a pool member"].concat()));
                        }
                        purge_pool(st, vmid);
                    } else {
                        match current {
                            Some(c) if c == pool => {
                                return Err(fail(["VM ", v, " is already a pool member"].concat()))
                            }
                            Some(c) => {
                                return Err(fail(
                                    ["VM ", v, " belongs already to pool '", &c, "'"].concat(),
                                ))
                            }
                            None => join_pool(st, &pool, vmid),
                        }
                    }
                }
                Ok(())
            })
        }
        _ => Err(Failure {
            stderr: [
                "No '",
                verb,
                "' handler defined for '/",
                &parts.join("/"),
                "'\n",
            ]
            .concat(),
            exit: 1,
        }),
    }
}

fn purge_pool(st: &mut State, vmid: u32) {
    for members in st.pools.values_mut() {
        members.remove(&vmid);
    }
}

/// The `vm:ID` of a `vm:ID` or bare `ID` argument.
fn sid_of(arg: &str) -> Result<String, Failure> {
    let id = arg.strip_prefix("vm:").unwrap_or(arg);
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(["vm:", id].concat());
    }
    Err(param_fail(
        "sid",
        &["unable to parse service id '", arg, "'"].concat(),
    ))
}

fn ha_state(opts: &[String]) -> Result<Option<String>, Failure> {
    match option(opts, "state") {
        Some(s) if !HA_STATES.contains(&s) => Err(param_fail(
            "state",
            &crate::schema::not_in_enum(s, HA_STATES),
        )),
        other => Ok(other.map(str::to_string)),
    }
}

/// Runs `ha-manager ARGS`.
pub fn ha_manager(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let opts = args.get(2..).unwrap_or(&[]);
    match cmd {
        "add" | "set" | "remove" => {
            let sid = sid_of(args.get(1).map(String::as_str).unwrap_or(""))?;
            ha_change(cx, cmd, &sid, opts)
        }
        "groupadd" => {
            only_options(opts, &["nodes", "comment", "restricted", "nofailback"])?;
            let group = args.get(1).cloned().unwrap_or_default();
            cx.root.update(|st| {
                if st.at_least(9, 0) && st.ha_groups.is_empty() {
                    return Err(Failure::die(
                        "cannot create group: ha groups have been migrated to rules",
                    ));
                }
                if !st.ha_groups.insert(group.clone()) {
                    return Err(Failure::die(
                        ["ha group ID '", &group, "' already defined"].concat(),
                    ));
                }
                Ok(())
            })
        }
        "status" => {
            let st = cx.root.read()?;
            cx.out("quorum OK");
            for (sid, h) in &st.ha_resources {
                let vmid: u32 = sid.trim_start_matches("vm:").parse().unwrap_or(0);
                let node = st
                    .vms
                    .get(&vmid)
                    .map(|v| v.node.clone())
                    .unwrap_or_default();
                cx.out(&["service ", sid, " (", &node, ", ", &h.state, ")"].concat());
            }
            Ok(())
        }
        other => Err(Failure {
            stderr: ["unknown command 'ha-manager ", other, "'\n"].concat(),
            exit: 255,
        }),
    }
}

/// `ha-manager add|set|remove SID`, with the texts of pve-ha-manager 4.x
/// (PVE 7, 8) and 5.x (PVE 9, where HA groups became rules and `--group`
/// is refused once no group is left).
fn ha_change(cx: &mut Ctx, cmd: &str, sid: &str, opts: &[String]) -> Result<(), Failure> {
    let allowed: &[&str] = match cmd {
        "remove" => &[],
        _ => &[
            "state",
            "group",
            "comment",
            "max_restart",
            "max_relocate",
            "delete",
        ],
    };
    only_options(opts, allowed)?;
    let state = ha_state(opts)?;
    let group = option(opts, "group").map(str::to_string);
    let delete_group = option(opts, "delete").is_some_and(|d| d.split(',').any(|k| k == "group"));
    let vmid: u32 = sid.trim_start_matches("vm:").parse().unwrap_or(0);
    let sid = sid.to_string();
    let cmd = cmd.to_string();
    cx.root.update(|st| {
        let v9 = st.at_least(9, 0);
        if group.is_some() && v9 && st.ha_groups.is_empty() {
            return Err(Failure::die(
                "invalid parameter 'group': ha groups have been migrated to rules",
            ));
        }
        match cmd.as_str() {
            "add" => {
                if !st.vms.contains_key(&vmid) {
                    return Err(Failure::die(
                        ["resource '", &sid, "' does not exist in cluster"].concat(),
                    ));
                }
                if st.ha_resources.contains_key(&sid) {
                    return Err(Failure::die(
                        [
                            "create resource failed: resource ID '",
                            &sid,
                            "' already defined",
                        ]
                        .concat(),
                    ));
                }
                let entry = HaEntry {
                    state: state.clone().unwrap_or_else(|| "started".into()),
                    group: group.clone(),
                };
                st.ha_resources.insert(sid.clone(), entry);
            }
            "set" => {
                if let Some(g) = group.as_ref().filter(|g| !st.ha_groups.contains(*g)) {
                    return Err(Failure::die(["HA group '", g, "' does not exist"].concat()));
                }
                let Some(h) = st.ha_resources.get_mut(&sid) else {
                    let prefix = if v9 {
                        "update resources config failed: "
                    } else {
                        "update resource failed: "
                    };
                    return Err(Failure::die(
                        [prefix, "no such resource '", &sid, "'"].concat(),
                    ));
                };
                if let Some(s) = &state {
                    h.state = s.clone();
                }
                if group.is_some() {
                    h.group = group.clone();
                } else if delete_group {
                    h.group = None;
                }
            }
            _ => {
                if st.ha_resources.remove(&sid).is_none() {
                    return Err(Failure::die(if v9 {
                        ["cannot delete service '", &sid, "', not HA managed!"].concat()
                    } else {
                        ["resource '", &sid, "' is not HA managed"].concat()
                    }));
                }
            }
        }
        Ok(())
    })
}
