//! How a [`VmSpec`] is spelled as `qm create`/`qm set` options.
//!
//! The same functions serve creation and comparison: the planner renders the
//! desired value of a key and compares it with what the node reports, so a
//! spelling used to create a VM is the spelling it is checked against later.

use percent_encoding::percent_decode_str;
use pvefleet_model::propstring::PropertyString;
use pvefleet_model::spec::{Ip6Config, IpConfig, PowerState, VmSpec};
use pvefleet_model::{MacAddr, Net, NicModel, QmOptions, OWNER_DESCRIPTION_LINE, OWNER_TAG};

/// The `net0` the spec asks for: virtio on its bridge, with its VLAN tag
/// and MAC when it sets them (else Proxmox picks the MAC); with
/// `networks:`, its first entry (model, firewall, MTU too).
pub fn net0(spec: &VmSpec) -> Net {
    if let Some(first) = spec.networks.first() {
        return crate::hardware::nics::nic_net(first);
    }
    let mut net = Net::new(NicModel::Virtio);
    net.macaddr = spec.mac.as_deref().and_then(|m| MacAddr::parse(m).ok());
    net.bridge = Some(spec.bridge.clone());
    net.tag = spec.vlan;
    net
}

/// The `ipconfig0` value, when the spec sets any address.
pub fn ipconfig0(spec: &VmSpec) -> Option<String> {
    ipconfig(spec.ip.as_ref(), spec.ip6.as_ref())
}

/// An `ipconfigN` value, when any address is set.
pub fn ipconfig(ip: Option<&IpConfig>, ip6: Option<&Ip6Config>) -> Option<String> {
    let mut p = PropertyString::new();
    match ip {
        Some(IpConfig::Dhcp) => p = p.with("ip", "dhcp"),
        Some(IpConfig::Static {
            address,
            prefix,
            gateway,
        }) => {
            p = p.with("ip", format!("{address}/{prefix}"));
            if let Some(gw) = gateway {
                p = p.with("gw", gw.to_string());
            }
        }
        None => {}
    }
    match ip6 {
        Some(Ip6Config::Dhcp) => p = p.with("ip6", "dhcp"),
        Some(Ip6Config::Auto) => p = p.with("ip6", "auto"),
        Some(Ip6Config::Static {
            address,
            prefix,
            gateway,
        }) => {
            p = p.with("ip6", format!("{address}/{prefix}"));
            if let Some(gw) = gateway {
                p = p.with("gw6", gw.to_string());
            }
        }
        None => {}
    }
    let s = p.to_string();
    (!s.is_empty()).then_some(s)
}

/// The tags as Proxmox stores them: ours plus the user's, sorted, `;`-joined.
pub fn tags(spec: &VmSpec) -> String {
    let mut all: Vec<&str> = spec.tags.iter().map(String::as_str).collect();
    all.push(OWNER_TAG);
    all.sort_unstable();
    all.dedup();
    all.join(";")
}

/// The description: the user's text, then the ownership line, then the
/// password check when the VM has a password (`hash`: its
/// [`password_hash`], computed once by the caller).
pub fn description(spec: &VmSpec, hash: Option<&str>) -> String {
    let mut d = match &spec.description {
        Some(d) if !d.trim().is_empty() => format!("{}\n{OWNER_DESCRIPTION_LINE}", d.trim_end()),
        _ => OWNER_DESCRIPTION_LINE.to_string(),
    };
    if let Some(check) = hash.map(password_check) {
        d.push('\n');
        d.push_str(PASSWORD_CHECK_PREFIX);
        d.push_str(check);
    }
    for line in crate::hardware::record_lines(spec) {
        d.push('\n');
        d.push_str(&line);
    }
    d
}

/// The SSH keys file content, one key per line.
pub fn ssh_keys_text(spec: &VmSpec) -> Option<String> {
    if spec.ssh_keys.is_empty() {
        return None;
    }
    let mut s = spec.ssh_keys.join("\n");
    s.push('\n');
    Some(s)
}

/// Compares an observed URL-encoded `sshkeys` value with the desired keys.
pub fn same_keys(observed: Option<&str>, spec: &VmSpec) -> bool {
    let decoded = observed
        .map(|o| percent_decode_str(o).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let mut have: Vec<&str> = decoded
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut want: Vec<&str> = spec.ssh_keys.iter().map(String::as_str).collect();
    have.sort_unstable();
    want.sort_unstable();
    have == want
}

/// The nameserver value (space-separated).
pub fn nameserver(spec: &VmSpec) -> Option<String> {
    (!spec.nameserver.is_empty()).then(|| spec.nameserver.join(" "))
}

/// Keys that are the same for creation and later comparison, with their
/// desired values. `None` means the spec does not manage the key.
/// `hash` is the spec's [`password_hash`], computed once by the caller.
pub fn managed_values(spec: &VmSpec, hash: Option<&str>) -> Vec<(&'static str, Option<String>)> {
    let mut values = vec![
        ("name", Some(spec.name.clone())),
        ("memory", Some(spec.memory.to_string())),
        ("cores", Some(spec.cores.to_string())),
        ("sockets", Some(spec.sockets.to_string())),
        ("cpu", spec.cpu.clone()),
        ("ipconfig0", ipconfig0(spec)),
        ("nameserver", nameserver(spec)),
        ("searchdomain", spec.searchdomain.clone()),
        ("ciuser", spec.user.clone()),
        ("tags", Some(tags(spec))),
        ("description", Some(description(spec, hash))),
        (
            "onboot",
            Some(if spec.onboot { "1" } else { "0" }.to_string()),
        ),
        ("cicustom", crate::snippets::cicustom(spec)),
    ];
    values.extend(crate::lifecycle::managed_values(spec));
    values
}

/// Hardware and cloud-init options shared by create and clone+set (the
/// SSH keys file's path is a step input, known at run time).
pub fn common_options(spec: &VmSpec, o: &mut QmOptions) {
    o.push("name", &spec.name);
    o.push("memory", spec.memory.to_string());
    o.push("cores", spec.cores.to_string());
    o.push("sockets", spec.sockets.to_string());
    if let Some(cpu) = &spec.cpu {
        o.push("cpu", cpu);
    }
    o.push("net0", net0(spec).to_string());
    o.push(
        "agent",
        spec.lifecycle.agent.clone().unwrap_or_default().value(),
    );
    o.push("serial0", "socket");
    o.push("vga", "serial0");
    if let Some(ip) = ipconfig0(spec) {
        o.push("ipconfig0", ip);
    }
    if let Some(ns) = nameserver(spec) {
        o.push("nameserver", ns);
    }
    if let Some(sd) = &spec.searchdomain {
        o.push("searchdomain", sd);
    }
    if let Some(u) = &spec.user {
        o.push("ciuser", u);
    }
    let hash = password_hash(spec);
    if let Some(h) = &hash {
        o.push("cipassword", h);
    }
    o.push("tags", tags(spec));
    o.push("description", description(spec, hash.as_deref()));
    if spec.onboot {
        o.push("onboot", "1");
    }
    if let Some(c) = crate::snippets::cicustom(spec) {
        o.push("cicustom", c);
    }
    crate::hardware::create_options(spec, o);
    crate::lifecycle::options(spec, o);
}

/// Normalises an observed value for comparison with a desired one.
pub fn normalise(key: &str, value: &str) -> String {
    if let Some(v) = crate::lifecycle::normalise(key, value) {
        return v;
    }
    match key {
        // `memory` is `[current=]N` since PVE 8.1.
        "memory" => PropertyString::parse(value)
            .first()
            .map(|(k, v)| {
                if k.is_none() || k == Some("current") {
                    v
                } else {
                    value
                }
            })
            .unwrap_or(value)
            .to_string(),
        "tags" => crate::observed::split_tags(value).join(";"),
        "description" => value.trim_end().to_string(),
        "nameserver" => value
            .split([' ', ',', ';'])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        "onboot" => match value {
            "1" | "on" | "yes" | "true" => "1".into(),
            _ => "0".into(),
        },
        "cicustom" => crate::snippets::sorted_cicustom(value),
        _ => value.to_string(),
    }
}

/// The default of a key Proxmox leaves out of the config when unset.
pub fn implicit_default(key: &str) -> Option<&'static str> {
    match key {
        "memory" => Some("512"),
        "cores" | "sockets" => Some("1"),
        "onboot" => Some("0"),
        _ => crate::lifecycle::implicit_default(key),
    }
}

/// True when the spec wants the VM running.
pub fn wants_running(spec: &VmSpec) -> bool {
    spec.state == PowerState::Running
}

/// The SHA-512 crypt rounds of a cloud-init password hash.
const PASSWORD_ROUNDS: u32 = 5_000;

/// The cloud-init password as sent to the node: its SHA-512 crypt hash
/// (`$6$rounds=…$salt$…`), which `qm` stores unchanged, so the clear text
/// never reaches the node's process table or any file (CONTRACT §3.3).
///
/// The salt is derived from the VM's name: the same password gives the same
/// hash, so a plan is the same bytes every time and a change is detectable
/// ([`password_check`]).
pub fn password_hash(spec: &VmSpec) -> Option<String> {
    use sha2::Digest;
    use sha_crypt::{CustomizedPasswordHasher, Params, ShaCrypt};
    let password = spec.password.as_deref()?;
    let digest = sha2::Sha256::digest(format!("pvefleet-cipassword\0{}", spec.name));
    let params = Params::new(PASSWORD_ROUNDS).ok()?;
    ShaCrypt::SHA512
        .hash_password_customized(password.as_bytes(), &digest[..12], None, None, params)
        .ok()
        .map(|h| h.to_string())
}

/// What the description records of a password: the last 8 characters of
/// its `hash` ([`password_hash`]), enough to tell a changed password
/// without holding anything that helps to recover it.
pub fn password_check(hash: &str) -> &str {
    let tail = hash.len().saturating_sub(8);
    hash.get(tail..).unwrap_or(hash)
}

/// The description line that carries [`password_check`].
pub const PASSWORD_CHECK_PREFIX: &str = "pvefleet-password: ";

/// The password check an observed description records, if any.
pub fn observed_password_check(description: &str) -> Option<&str> {
    description
        .lines()
        .find_map(|l| l.trim().strip_prefix(PASSWORD_CHECK_PREFIX))
}
