//! `ha-manager`, Proxmox's HA resource tool, as data ([`HaManager`]).
//!
//! Host facts (pve-ha-manager: src/PVE/CLI/ha_manager.pm maps `add`, `set`
//! and `remove` onto the API's create, update and delete of
//! `/cluster/ha/resources`, src/PVE/API2/HA/Resources.pm): the resource of
//! a VM is `vm:VMID`; `add` of a defined one fails with `resource ID
//! 'vm:VMID' already defined`, `set` of an unknown one with `no such
//! resource 'vm:VMID'`.

use crate::lifecycle::HaState;
use crate::VmId;

/// One `ha-manager` invocation on a VM's resource `vm:VMID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaManager {
    /// `ha-manager add vm:VMID --state S [--group G]`.
    Add {
        /// The VM.
        vmid: VmId,
        /// The requested state.
        state: HaState,
        /// The HA group.
        group: Option<String>,
    },
    /// `ha-manager set vm:VMID --state S [--group G | --delete group]`.
    Set {
        /// The VM.
        vmid: VmId,
        /// The requested state.
        state: HaState,
        /// The HA group; `None` deletes the resource's group.
        group: Option<String>,
        /// The resource has a group now (deleted when `group` is `None`).
        had_group: bool,
    },
    /// `ha-manager remove vm:VMID`.
    Remove {
        /// The VM.
        vmid: VmId,
    },
}

impl HaManager {
    /// The argv.
    pub fn argv(&self) -> Vec<String> {
        let sid = |vmid: &VmId| format!("vm:{vmid}");
        let mut a = vec!["ha-manager".to_string()];
        match self {
            HaManager::Add { vmid, state, group } => {
                a.extend(["add".into(), sid(vmid), "--state".into()]);
                a.push(state.as_str().into());
                if let Some(g) = group {
                    a.extend(["--group".into(), g.clone()]);
                }
            }
            HaManager::Set {
                vmid,
                state,
                group,
                had_group,
            } => {
                a.extend(["set".into(), sid(vmid), "--state".into()]);
                a.push(state.as_str().into());
                match group {
                    Some(g) => a.extend(["--group".into(), g.clone()]),
                    None if *had_group => a.extend(["--delete".into(), "group".into()]),
                    None => {}
                }
            }
            HaManager::Remove { vmid } => a.extend(["remove".into(), sid(vmid)]),
        }
        a
    }

    /// The VM the command acts on.
    pub(crate) fn vmid_mut(&mut self) -> &mut VmId {
        match self {
            HaManager::Add { vmid, .. }
            | HaManager::Set { vmid, .. }
            | HaManager::Remove { vmid } => vmid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_membership_argv() {
        let vmid = VmId::new(201).expect("valid id");
        let flat = crate::Command::PoolMember {
            pool: "prod".into(),
            vmid,
            remove: true,
        };
        assert_eq!(
            flat.argv(),
            [
                "pvesh",
                "set",
                "/pools/prod",
                "--vms",
                "201",
                "--delete",
                "1"
            ]
        );
        let nested = crate::Command::PoolMember {
            pool: "prod/web".into(),
            vmid,
            remove: false,
        };
        assert_eq!(
            nested.argv(),
            ["pvesh", "set", "/pools", "--poolid", "prod/web", "--vms", "201"]
        );
        assert!(nested.changes_state());
        let moved = nested.retarget(vmid, VmId::new(205).expect("valid id"));
        assert_eq!(moved.argv()[6], "205");
    }

    #[test]
    fn renders_argv() {
        let id = VmId::new(201).expect("valid id");
        let add = HaManager::Add {
            vmid: id,
            state: HaState::Started,
            group: Some("g1".into()),
        };
        assert_eq!(
            add.argv(),
            [
                "ha-manager",
                "add",
                "vm:201",
                "--state",
                "started",
                "--group",
                "g1"
            ]
        );
        let set = HaManager::Set {
            vmid: id,
            state: HaState::Stopped,
            group: None,
            had_group: true,
        };
        assert_eq!(
            set.argv(),
            [
                "ha-manager",
                "set",
                "vm:201",
                "--state",
                "stopped",
                "--delete",
                "group"
            ]
        );
        assert_eq!(
            HaManager::Remove { vmid: id }.argv(),
            ["ha-manager", "remove", "vm:201"]
        );
    }
}
