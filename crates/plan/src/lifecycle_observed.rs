//! What the nodes say of pools and HA resources, read with the existing
//! observation: `/cluster/resources` lists every pool (`type: pool`) and,
//! on each guest, the `pool` it belongs to and its `hastate` (CONTRACT
//! §12.3; pve-manager PVE/API2/Cluster.pm `resources`);
//! `/cluster/ha/resources` (read with the cluster's views) lists each HA
//! resource with its `sid` (`vm:VMID`), requested `state` and `group`
//! (pve-ha-manager src/PVE/API2/HA/Resources.pm `index`).

use crate::observed::{int, text, ObserveError};
use pvefleet_model::VmId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An HA resource of a VM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaResource {
    /// The requested state (`started`, `stopped`, `ignored`, `disabled`);
    /// from `/cluster/resources` alone (when the HA read gave nothing), the
    /// state the HA stack reports.
    pub state: String,
    /// The HA group, when `/cluster/ha/resources` was read.
    pub group: Option<String>,
}

/// Pools and HA resources of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleObserved {
    /// The cluster's pools; `None` when `/cluster/resources` was not read.
    pub pools: Option<BTreeSet<String>>,
    /// The pool of each guest that is in one.
    pub vm_pools: BTreeMap<VmId, String>,
    /// The HA resource of each VM that has one.
    pub ha: BTreeMap<VmId, HaResource>,
    /// True when `/cluster/ha/resources` was read (groups are known).
    pub ha_read: bool,
}

fn entries<'a>(what: &str, v: &'a Value) -> Result<&'a Vec<Value>, ObserveError> {
    v.as_array().ok_or_else(|| ObserveError::Shape {
        what: what.to_string(),
        detail: "expected an array".into(),
    })
}

/// Pools, pool members and HA states from `/cluster/resources`.
pub fn parse_resources(bytes: &[u8]) -> Result<LifecycleObserved, ObserveError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|source| ObserveError::Json {
        what: "/cluster/resources".into(),
        source,
    })?;
    let mut out = LifecycleObserved {
        pools: Some(BTreeSet::new()),
        ..LifecycleObserved::default()
    };
    for i in entries("/cluster/resources", &v)? {
        let kind = i.get("type").and_then(Value::as_str);
        if kind == Some("pool") {
            if let (Some(p), Some(pools)) = (text(i.get("pool")), out.pools.as_mut()) {
                pools.insert(p);
            }
            continue;
        }
        if !matches!(kind, Some("qemu" | "lxc")) {
            continue;
        }
        let Some(vmid) = int(i.get("vmid")).and_then(|id| VmId::new(id).ok()) else {
            continue;
        };
        if let Some(p) = text(i.get("pool")).filter(|p| !p.is_empty()) {
            out.vm_pools.insert(vmid, p);
        }
        if let Some(s) = text(i.get("hastate")).filter(|s| !s.is_empty()) {
            out.ha.insert(
                vmid,
                HaResource {
                    state: s,
                    group: None,
                },
            );
        }
    }
    Ok(out)
}

/// The VMs' HA resources from `/cluster/ha/resources` (`vm:ID` sids only),
/// replacing what `/cluster/resources` said.
pub fn parse_ha_resources(bytes: &[u8], into: &mut LifecycleObserved) -> Result<(), ObserveError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|source| ObserveError::Json {
        what: "/cluster/ha/resources".into(),
        source,
    })?;
    let mut ha = BTreeMap::new();
    for i in entries("/cluster/ha/resources", &v)? {
        let Some(sid) = text(i.get("sid")) else {
            continue;
        };
        let Some(vmid) = sid
            .strip_prefix("vm:")
            .and_then(|id| id.parse::<i64>().ok())
            .and_then(|id| VmId::new(id).ok())
        else {
            continue;
        };
        ha.insert(
            vmid,
            HaResource {
                // Proxmox's default requested state (`started`).
                state: text(i.get("state")).unwrap_or_else(|| "started".into()),
                group: text(i.get("group")).filter(|g| !g.is_empty()),
            },
        );
    }
    into.ha = ha;
    into.ha_read = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pools_members_and_ha() {
        let res = br#"[{"id":"/pool/prod","pool":"prod","type":"pool"},
            {"id":"qemu/201","vmid":201,"type":"qemu","node":"pve","pool":"prod","hastate":"started"},
            {"id":"qemu/202","vmid":"202","type":"qemu","node":"pve"},
            {"id":"node/pve","type":"node","node":"pve"}]"#;
        let mut o = parse_resources(res).expect("parses");
        let id = |n| VmId::new(n).expect("valid");
        assert_eq!(o.pools, Some(BTreeSet::from(["prod".to_string()])));
        assert_eq!(o.vm_pools.get(&id(201)).map(String::as_str), Some("prod"));
        assert!(!o.vm_pools.contains_key(&id(202)));
        assert_eq!(
            o.ha.get(&id(201)).map(|h| h.state.as_str()),
            Some("started")
        );
        let ha = br#"[{"sid":"vm:202","state":"stopped","group":"g1","type":"vm"},{"sid":"ct:300","type":"ct"}]"#;
        parse_ha_resources(ha, &mut o).expect("parses");
        assert!(o.ha_read && !o.ha.contains_key(&id(201)));
        assert_eq!(
            o.ha.get(&id(202)),
            Some(&HaResource {
                state: "stopped".into(),
                group: Some("g1".into())
            })
        );
        assert!(parse_resources(b"{}").is_err());
    }
}
