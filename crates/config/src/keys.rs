//! The keys the configuration language knows, for validation and hints.

/// Top-level keys.
pub const TOP: &[&str] = &["proxmox", "nodes", "defaults", "vms"];

/// Keys of `proxmox:` (one host).
pub const PROXMOX: &[&str] = &["host", "user", "port", "node", "become"];

/// Keys of each entry of `nodes:` (a cluster).
pub const NODE: &[&str] = &["host", "user", "port", "become"];

/// Keys of a VM (and of `defaults:`).
pub const VM: &[&str] = &[
    "vmid",
    "name",
    "node",
    "memory",
    "cores",
    "sockets",
    "cpu",
    "bridge",
    "vlan",
    "mac",
    "ip",
    "gateway",
    "ip6",
    "gateway6",
    "nameserver",
    "searchdomain",
    "user",
    "ssh_keys",
    "ssh_keys_file",
    "password",
    "image",
    "template",
    "storage",
    "disk",
    "disk_from",
    "tags",
    "description",
    "onboot",
    "state",
    "clone",
    "user_data",
    "user_data_file",
    "user_data_mode",
    "snippets_storage",
    "wait",
    "disks",
    "networks",
    "bios",
    "secure_boot",
    "machine",
    "tpm",
    "pool",
    "startup",
    "protection",
    "ha",
    "agent",
    "balloon",
    "numa",
    "hotplug",
];

/// Keys that only make sense per VM, not in `defaults:`.
pub const VM_ONLY: &[&str] = &["vmid", "name", "mac"];

/// The known key closest to `unknown`, when it is close enough to be a typo.
///
/// The cost is bounded per call: a word longer than any typo of a known key
/// is not compared, and neither is a known key whose length alone puts it
/// out of reach.
pub fn suggest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    const LONGEST: usize = 64;
    if unknown.len() > LONGEST {
        return None;
    }
    let reach = |k: &str| 2.max(k.chars().count() / 3);
    let len = unknown.chars().count();
    known
        .iter()
        .filter(|k| k.chars().count().abs_diff(len) <= reach(k))
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= reach(k))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos() {
        assert_eq!(suggest("memroy", VM), Some("memory"));
        assert_eq!(suggest("ssh_key", VM), Some("ssh_keys"));
        assert_eq!(suggest("zzzzzz", VM), None);
        assert_eq!(suggest(&"m".repeat(1 << 20), VM), None);
    }
}
