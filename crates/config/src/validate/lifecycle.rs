//! Firmware (`bios`, `secure_boot`, `machine`, `tpm`) and placement and
//! lifecycle keys (`pool`, `startup`, `protection`, `ha`, `agent`,
//! `balloon`, `numa`, `hotplug`), checked as the host's schema checks them
//! (`qm-schema.json`: `pve-qemu-machine-fmt`, `pve-poolid`,
//! `pve-startup-order`, `qm-agent`, `pve-hotplug-features`; CONTRACT §18).

use super::Cx;
use crate::error::ErrorKind;
use crate::keys;
use crate::limits::shown;
use crate::raw::{Node, Value};
use pvefleet_model::lifecycle::{
    Agent, Bios, Firmware, Ha, HaState, Hotplug, Lifecycle, MachineChoice, Startup,
};
use pvefleet_model::spec::PowerState;

/// The hot-plug features Proxmox knows (`pve_verify_hotplug_features`).
const HOTPLUG: &[&str] = &["network", "disk", "cpu", "memory", "usb", "cloudinit"];

/// The keys of `startup:`, `ha:` and `agent:`.
const STARTUP_KEYS: &[&str] = &["order", "up", "down"];
const HA_KEYS: &[&str] = &["state", "group"];
const AGENT_KEYS: &[&str] = &["enabled", "fstrim_cloned_disks", "type"];

/// True for an x86 machine type of `pve-qemu-machine-fmt` (its `type`
/// pattern without the aarch64 `virt` types): `pc`, `q35`,
/// `pc[-i440fx]-X.Y[+pveN][.pxe]`, `pc-q35-X.Y[+pveN][.pxe]`; at most 40
/// characters.
pub(super) fn is_machine(s: &str) -> bool {
    if s.len() > 40 {
        return false;
    }
    if s == "pc" || s == "q35" {
        return true;
    }
    let rest = s
        .strip_prefix("pc-q35-")
        .or_else(|| s.strip_prefix("pc-i440fx-"))
        .or_else(|| s.strip_prefix("pc-"));
    let Some(rest) = rest else { return false };
    let rest = rest.strip_suffix(".pxe").unwrap_or(rest);
    let (version, pve) = match rest.split_once("+pve") {
        Some((v, n)) => (v, Some(n)),
        None => (rest, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| digits(p)) && pve.is_none_or(digits)
}

/// True for a `pve-poolid`: up to three `/`-separated levels of
/// `[A-Za-z0-9.\-_]+`.
pub(super) fn is_pool(s: &str) -> bool {
    let levels: Vec<&str> = s.split('/').collect();
    levels.len() <= 3
        && levels.iter().all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

/// True for a `pve-configid` (an HA group name): `[a-z][a-z0-9_-]+`, any case.
fn is_configid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

impl Cx<'_> {
    /// One of `choices`, with a suggestion for a near miss.
    fn choice(&mut self, key: &str, n: &Node, choices: &[&str]) -> Option<String> {
        let s = self.string(key, n)?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let mut msg = format!("{key}: {} is not one of {}", shown(&s), choices.join(", "));
        if let Some(h) = keys::suggest(&s, choices) {
            msg.push_str(&format!(" (did you mean '{h}'?)"));
        }
        self.err(
            ErrorKind::UnknownValue,
            n.span,
            msg,
            format!("use one of: {}", choices.join(", ")),
        );
        None
    }

    /// `bios`: `seabios` or `ovmf`.
    pub(super) fn bios(&mut self, n: &Node) -> Option<Bios> {
        match self.choice("bios", n, &["seabios", "ovmf"])?.as_str() {
            "ovmf" => Some(Bios::Ovmf),
            _ => Some(Bios::SeaBios),
        }
    }

    /// `machine`: an x86 QEMU machine type; `i440fx` is Proxmox's `pc`.
    pub(super) fn machine(&mut self, n: &Node) -> Option<MachineChoice> {
        let s = self.string("machine", n)?;
        if s == "i440fx" {
            return Some(MachineChoice::Type("pc".into()));
        }
        self.expect(
            is_machine(&s),
            n.span,
            "machine",
            &s,
            "is not a QEMU machine type Proxmox accepts",
            "use q35, i440fx (or pc), or a pinned version such as pc-q35-8.1 or pc-i440fx-8.1",
        )
        .then_some(MachineChoice::Type(s))
    }

    /// `pool`: a Proxmox resource pool id.
    pub(super) fn pool(&mut self, n: &Node) -> Option<String> {
        self.checked(
            "pool",
            n,
            is_pool,
            "is not a Proxmox pool id",
            "pool ids use letters, digits, '.', '-' and '_', nested at most 3 levels (a/b/c)",
        )
    }

    /// `startup: {order, up, down}`, each a non-negative integer.
    pub(super) fn startup(&mut self, n: &Node) -> Option<Startup> {
        let entries = self.map("startup", n)?;
        let f = self.fields(entries, STARTUP_KEYS, "'startup'");
        if entries.is_empty() {
            self.err(
                ErrorKind::Missing,
                n.span,
                "startup: needs at least one of order, up, down",
                "e.g. 'startup: {order: 1, up: 30}', or remove the key",
            );
            return None;
        }
        let mut s = Startup::default();
        let mut ok = f.len() == entries.len();
        for (key, slot) in [
            ("order", &mut s.order),
            ("up", &mut s.up),
            ("down", &mut s.down),
        ] {
            if let Some((_, v)) = f.get(key) {
                let name = format!("startup.{key}");
                match self.int(
                    &name,
                    v,
                    0,
                    i64::from(u32::MAX),
                    "a number of seconds (or the order), 0 or more",
                ) {
                    Some(i) => *slot = u32::try_from(i).ok(),
                    None => ok = false,
                }
            }
        }
        ok.then_some(s)
    }

    /// `ha: {state, group}`.
    pub(super) fn ha(&mut self, n: &Node) -> Option<Ha> {
        let entries = self.map("ha", n)?;
        let f = self.fields(entries, HA_KEYS, "'ha'");
        let mut ha = Ha::default();
        let mut ok = true;
        if let Some((_, v)) = f.get("state") {
            let choices = ["started", "stopped", "ignored", "disabled"];
            match self.choice("ha.state", v, &choices).as_deref() {
                Some("stopped") => ha.state = HaState::Stopped,
                Some("ignored") => ha.state = HaState::Ignored,
                Some("disabled") => ha.state = HaState::Disabled,
                Some(_) => ha.state = HaState::Started,
                None => ok = false,
            }
        }
        if let Some((_, v)) = f.get("group") {
            match self.checked(
                "ha.group",
                v,
                is_configid,
                "is not an HA group name",
                "HA group names start with a letter, then letters, digits, '-' or '_'",
            ) {
                Some(g) => ha.group = Some(g),
                None => ok = false,
            }
        }
        ok.then_some(ha)
    }

    /// `agent: {enabled, fstrim_cloned_disks, type}`.
    pub(super) fn agent(&mut self, n: &Node) -> Option<Agent> {
        let entries = self.map("agent", n)?;
        let f = self.fields(entries, AGENT_KEYS, "'agent'");
        let mut a = Agent::default();
        let mut ok = true;
        if let Some((_, v)) = f.get("enabled") {
            match self.boolean("agent.enabled", v) {
                Some(b) => a.enabled = b,
                None => ok = false,
            }
        }
        if let Some((_, v)) = f.get("fstrim_cloned_disks") {
            match self.boolean("agent.fstrim_cloned_disks", v) {
                Some(b) => a.fstrim_cloned_disks = b,
                None => ok = false,
            }
        }
        if let Some((_, v)) = f.get("type") {
            match self.choice("agent.type", v, &["virtio", "isa"]) {
                Some(t) => a.kind = Some(t),
                None => ok = false,
            }
        }
        ok.then_some(a)
    }

    /// `balloon`: MiB, `0` disables the balloon device.
    pub(super) fn balloon(&mut self, n: &Node) -> Option<u64> {
        self.int(
            "balloon",
            n,
            0,
            4 * 1024 * 1024,
            "the balloon target in MiB, at most 'memory'; 0 disables ballooning",
        )
        .and_then(|v| u64::try_from(v).ok())
    }

    /// `hotplug`: a list of features, or `false` for none.
    pub(super) fn hotplug(&mut self, n: &Node) -> Option<Hotplug> {
        if let Value::Bool(false) = n.value {
            return Some(Hotplug::Off);
        }
        if matches!(n.value, Value::Bool(true)) {
            self.type_err("hotplug", n, "a list of features or false");
            return None;
        }
        let list = self.str_list("hotplug", n)?;
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for (f, span) in list {
            ok &= self.expect(
                HOTPLUG.contains(&f.as_str()),
                span,
                "hotplug",
                &f,
                "is not a hot-plug feature",
                "use some of: network, disk, cpu, memory, usb, cloudinit (or false for none)",
            );
            if !out.contains(&f) {
                out.push(f);
            }
        }
        if out.is_empty() && ok {
            self.err(
                ErrorKind::Missing,
                n.span,
                "hotplug: an empty list; write 'hotplug: false' to turn hot-plug off",
                "list features such as [disk, network, usb], or write false",
            );
            return None;
        }
        // Proxmox keeps the value as written: one order (the schema's)
        // makes the same features the same value.
        out.sort_by_key(|f| HOTPLUG.iter().position(|h| h == f));
        ok.then_some(Hotplug::Features(out))
    }

    /// The rules between keys: `secure_boot` needs `bios: ovmf` and a q35
    /// machine (qemu-server `get_ovmf_files` picks the Secure Boot code
    /// image only with SMM, which q35 has); `balloon`
    /// must not exceed `memory` (Proxmox refuses it on `qm set`); memory
    /// hot-plug needs `numa: true` (qemu-server refuses to start the VM
    /// otherwise: `NUMA needs to be enabled for memory hotplug`); and an
    /// HA state that starts or stops the VM must agree with `state` (the
    /// HA stack would undo what apply does).
    pub(super) fn lifecycle_rules<'n>(
        &mut self,
        fw: &Firmware,
        lc: &Lifecycle,
        memory: u64,
        power: PowerState,
        get: &dyn Fn(&str) -> Option<&'n Node>,
    ) -> bool {
        let mut ok = true;
        let secure_boot = get("secure_boot");
        let balloon = get("balloon");
        // qemu-server gives OVMF the Secure Boot firmware (with SMM) on q35
        // only; on i440fx the enrolled keys are never enforced.
        let q35 = |t: &str| t == "q35" || t.starts_with("pc-q35-");
        if let (true, MachineChoice::Type(t)) = (fw.secure_boot, &fw.machine) {
            if let Some(n) = get("machine").filter(|_| !q35(t)) {
                self.err(
                    ErrorKind::Conflict,
                    n.span,
                    format!(
                        "machine: {} is an i440fx machine, which Proxmox boots without Secure Boot firmware; secure_boot needs q35",
                        shown(t)
                    ),
                    "use machine: q35 (or leave machine out), or drop secure_boot",
                );
                ok = false;
            }
        }
        let memory_hotplug =
            matches!(&lc.hotplug, Some(Hotplug::Features(f)) if f.iter().any(|f| f == "memory"));
        if let Some(n) = get("hotplug").filter(|_| memory_hotplug && lc.numa != Some(true)) {
            self.err(
                ErrorKind::Conflict,
                n.span,
                "hotplug: memory hot-plug needs 'numa: true' (Proxmox refuses to start the VM without it)",
                "add 'numa: true' to the VM, or drop memory from hotplug",
            );
            ok = false;
        }
        let clash = match (lc.ha.as_ref().map(|h| h.state), power) {
            (Some(HaState::Stopped | HaState::Disabled), PowerState::Running) => Some("running"),
            (Some(HaState::Started), PowerState::Stopped) => Some("stopped"),
            _ => None,
        };
        if let (Some(want), Some(n)) = (clash, get("ha")) {
            self.err(
                ErrorKind::Conflict,
                n.span,
                format!("ha: its state disagrees with 'state: {want}'; the HA stack would undo what apply does"),
                "use ha state 'started' with state running, 'stopped' (or 'disabled') with state stopped, or 'ignored'",
            );
            ok = false;
        }
        if fw.secure_boot && fw.bios != Bios::Ovmf {
            if let Some(n) = secure_boot {
                self.err(
                    ErrorKind::Conflict,
                    n.span,
                    "secure_boot: needs 'bios: ovmf' (SeaBIOS has no Secure Boot)",
                    "add 'bios: ovmf' to the VM, or remove secure_boot",
                );
                ok = false;
            }
        }
        if let (Some(b), Some(n)) = (lc.balloon, balloon) {
            if b > memory {
                self.err(
                    ErrorKind::Range,
                    n.span,
                    format!("balloon: {b} MiB is more than the VM's memory ({memory} MiB)"),
                    "the balloon target must not exceed 'memory'; 0 disables ballooning",
                );
                ok = false;
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_types_as_the_schema_takes_them() {
        for ok in [
            "q35",
            "pc",
            "pc-q35-8.1",
            "pc-i440fx-9.2+pve1",
            "pc-q35-6.2.pxe",
            "pc-1.0",
        ] {
            assert!(is_machine(ok), "{ok}");
        }
        for bad in [
            "Q35",
            "virt",
            "pc-q35",
            "pc-q35-8",
            "q35-8.1",
            "pc-q35-8.x",
            "",
        ] {
            assert!(!is_machine(bad), "{bad}");
        }
    }

    #[test]
    fn pool_ids() {
        assert!(is_pool("prod") && is_pool("a/b/c") && is_pool("team_1.x-y"));
        assert!(!is_pool("a/b/c/d") && !is_pool("a//b") && !is_pool("bad pool"));
        assert!(is_configid("ha1") && !is_configid("1ha") && !is_configid("a"));
    }
}
