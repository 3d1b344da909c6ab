//! What a running VM takes at once from `qm set` on a disk it has: the same
//! volume with other options is updated live only when the options that
//! cannot change live are equal (qemu-server `vmconfig_update_disk`:
//! `aio`, `discard`, `iothread`, `queues`, `product`, `cache`, `ssd`,
//! `vendor`, `ro`); else the change stays pending until the next boot.

use super::*;

/// Drive options a running VM cannot change live.
const COLD_ITEMS: &[&str] = &[
    "aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro",
];

fn items(value: &str) -> BTreeMap<String, String> {
    value
        .split(',')
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Drive operations by key.
type Ops = Vec<(String, DriveOp)>;

/// Splits the drive operations of a `qm set` on a running VM: those it
/// takes now, and the (key, value) pairs that stay pending.
pub(super) fn pending_drive_ops(vm: &Vm, ops: Ops) -> (Ops, Vec<(String, String)>) {
    if !vm.running {
        return (ops, Vec::new());
    }
    let mut now = Vec::new();
    let mut pending = Vec::new();
    for (key, op) in ops {
        let old = vm.config.get(&key);
        let same_volume = match (&op, old) {
            (DriveOp::Existing { volid, .. }, Some(old)) => old.split(',').next() == Some(volid),
            _ => false,
        };
        let (DriveOp::Existing { volid, rest }, Some(old), true) = (&op, old, same_volume) else {
            now.push((key, op));
            continue;
        };
        let before = items(old);
        let after: BTreeMap<String, String> = rest.iter().cloned().collect();
        let cold = COLD_ITEMS.iter().any(|k| before.get(*k) != after.get(*k));
        if cold {
            let size = before.get("size").and_then(|s| parse_size(s));
            pending.push((key.clone(), join_drive(volid, rest, size)));
        } else {
            now.push((key, op));
        }
    }
    (now, pending)
}
