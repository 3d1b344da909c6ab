//! `cpu`: Proxmox's `pve-vm-cpu-conf` property string,
//! `[cputype=]TYPE[,flags=+FLAG;-FLAG...][,hidden=1][,hv-vendor-id=ID]
//! [,phys-bits=8-64|host][,guest-phys-bits=32-64][,level=N]`, checked as
//! `parse_property_string` and `validate_vm_cpu_conf` (qemu-server
//! CPUConfig.pm) check it. The value is passed to `qm` as written.
//!
//! Offline, a `custom-NAME` model can only be checked for its shape: whether
//! `/etc/pve/virtual-guest/cpu-models.conf` on the host defines it is host
//! state.

use super::Cx;
use crate::error::ErrorKind;
use crate::keys;
use crate::limits::shown;
use crate::raw::Node;

/// Built-in CPU models (`extras.cpu_models_builtin` of `qm-schema.json`):
/// what `cputype` accepts without the `custom-` prefix, in exact case.
pub(super) const BUILTIN_MODELS: &[&str] = &[
    "486",
    "Broadwell",
    "Broadwell-IBRS",
    "Broadwell-noTSX",
    "Broadwell-noTSX-IBRS",
    "Cascadelake-Server",
    "Cascadelake-Server-noTSX",
    "Cascadelake-Server-v2",
    "Cascadelake-Server-v4",
    "Cascadelake-Server-v5",
    "ClearwaterForest",
    "Conroe",
    "Cooperlake",
    "Cooperlake-v2",
    "EPYC",
    "EPYC-Genoa",
    "EPYC-Genoa-v2",
    "EPYC-IBPB",
    "EPYC-Milan",
    "EPYC-Milan-v2",
    "EPYC-Milan-v3",
    "EPYC-Rome",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Rome-v4",
    "EPYC-Rome-v5",
    "EPYC-Turin",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-v5",
    "GraniteRapids",
    "GraniteRapids-v2",
    "GraniteRapids-v3",
    "Haswell",
    "Haswell-IBRS",
    "Haswell-noTSX",
    "Haswell-noTSX-IBRS",
    "Icelake-Client",
    "Icelake-Client-noTSX",
    "Icelake-Server",
    "Icelake-Server-noTSX",
    "Icelake-Server-v3",
    "Icelake-Server-v4",
    "Icelake-Server-v5",
    "Icelake-Server-v6",
    "Icelake-Server-v7",
    "IvyBridge",
    "IvyBridge-IBRS",
    "KnightsMill",
    "Nehalem",
    "Nehalem-IBRS",
    "Opteron_G1",
    "Opteron_G2",
    "Opteron_G3",
    "Opteron_G4",
    "Opteron_G5",
    "Penryn",
    "SandyBridge",
    "SandyBridge-IBRS",
    "SapphireRapids",
    "SapphireRapids-v2",
    "SapphireRapids-v3",
    "SapphireRapids-v4",
    "SierraForest",
    "SierraForest-v2",
    "SierraForest-v3",
    "Skylake-Client",
    "Skylake-Client-IBRS",
    "Skylake-Client-noTSX-IBRS",
    "Skylake-Client-v4",
    "Skylake-Server",
    "Skylake-Server-IBRS",
    "Skylake-Server-noTSX-IBRS",
    "Skylake-Server-v4",
    "Skylake-Server-v5",
    "Westmere",
    "Westmere-IBRS",
    "a64fx",
    "athlon",
    "core2duo",
    "coreduo",
    "cortex-a35",
    "cortex-a53",
    "cortex-a55",
    "cortex-a57",
    "cortex-a710",
    "cortex-a72",
    "cortex-a76",
    "host",
    "kvm32",
    "kvm64",
    "max",
    "neoverse-n1",
    "neoverse-n2",
    "neoverse-v1",
    "pentium",
    "pentium2",
    "pentium3",
    "phenom",
    "qemu32",
    "qemu64",
    "x86-64-v2",
    "x86-64-v2-AES",
    "x86-64-v3",
    "x86-64-v4",
];

/// The flags a VM's own `cpu` may set (`extras.cpu_flags_vm_specific`);
/// any other flag belongs in a custom model.
pub(super) const VM_FLAGS: &[&str] = &[
    "aes",
    "amd-no-ssb",
    "amd-ssbd",
    "hv-evmcs",
    "hv-tlbflush",
    "ibpb",
    "md-clear",
    "nested-virt",
    "pcid",
    "pdpe1gb",
    "spec-ctrl",
    "ssbd",
    "virt-ssbd",
];

/// The keys of `pve-vm-cpu-conf`.
const KEYS: &[&str] = &[
    "cputype",
    "flags",
    "guest-phys-bits",
    "hidden",
    "hv-vendor-id",
    "level",
    "phys-bits",
    "reported-model",
];

/// What is wrong with a `cpu` value: kind, message (after `cpu: `), hint.
type Problem = (ErrorKind, String, String);

fn problem(kind: ErrorKind, message: impl Into<String>, help: impl Into<String>) -> Problem {
    (kind, message.into(), help.into())
}

const MODEL_HELP: &str = "use a built-in model such as host, x86-64-v2-AES or kvm64 (names are case-sensitive), or custom-NAME for a model defined in /etc/pve/virtual-guest/cpu-models.conf";

/// `parse_property_string`: `key=value` items split on `,`, a bare item
/// for `cputype`, blank items skipped. Keys in file order.
fn parse(value: &str) -> Result<Vec<(&str, &str)>, Problem> {
    let syntax = "write the CPU as TYPE or cputype=TYPE, then ,key=value items, e.g. x86-64-v2-AES,flags=+aes";
    let mut items: Vec<(&str, &str)> = Vec::new();
    for part in value.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        let (key, v) = match part.split_once('=') {
            None => ("cputype", part),
            Some((k, v)) if !k.is_empty() && !v.is_empty() => (k, v),
            Some(_) => {
                return Err(problem(
                    ErrorKind::Format,
                    format!("{} is a key or a value without the other", shown(part)),
                    syntax,
                ))
            }
        };
        if !KEYS.contains(&key) {
            let mut message = format!("unknown property {}", shown(key));
            if let Some(s) = keys::suggest(key, KEYS) {
                message.push_str(&format!(" (did you mean '{s}'?)"));
            }
            return Err(problem(
                ErrorKind::Format,
                message,
                format!("a VM's cpu takes: {}", KEYS.join(", ")),
            ));
        }
        if items.iter().any(|(k, _)| *k == key) {
            return Err(problem(
                ErrorKind::Format,
                format!("'{key}' is given twice"),
                "give each property of the CPU once",
            ));
        }
        items.push((key, v));
    }
    Ok(items)
}

/// `cputype`: a built-in model in exact case, or `custom-NAME`.
fn check_model(model: &str) -> Result<(), Problem> {
    if let Some(name) = model.strip_prefix("custom-") {
        // A custom model is a section of cpu-models.conf, whose ids are
        // `pve-configid`: `[a-z][a-z0-9_-]+`, case-insensitive.
        let b = name.as_bytes();
        let valid = b.len() >= 2
            && b[0].is_ascii_alphabetic()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
        if !valid {
            return Err(problem(
                ErrorKind::Format,
                format!("{} is not a custom model name", shown(model)),
                "a custom model is custom-NAME, NAME as in cpu-models.conf: a letter, then letters, digits, '-' or '_'",
            ));
        }
        return Ok(());
    }
    if BUILTIN_MODELS.contains(&model) {
        return Ok(());
    }
    let near = BUILTIN_MODELS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(model))
        .copied()
        .or_else(|| keys::suggest(model, BUILTIN_MODELS));
    let mut message = format!("{} is not a built-in CPU model", shown(model));
    if let Some(m) = near {
        message.push_str(&format!(" (did you mean '{m}'?)"));
    }
    Err(problem(ErrorKind::UnknownValue, message, MODEL_HELP))
}

/// `flags`: `+FLAG` or `-FLAG` items joined by `;`, each FLAG one a VM may
/// set.
fn check_flags(flags: &str) -> Result<(), Problem> {
    let shape = "write flags as +FLAG or -FLAG joined by ';', e.g. flags=+aes;-pcid";
    for item in flags.split(';') {
        let name = item
            .strip_prefix('+')
            .or_else(|| item.strip_prefix('-'))
            .unwrap_or("");
        let well_formed = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
        if !well_formed {
            return Err(problem(
                ErrorKind::Format,
                format!("the flag {} is not +FLAG or -FLAG", shown(item)),
                shape,
            ));
        }
        if !VM_FLAGS.contains(&name) {
            return Err(problem(
                ErrorKind::UnknownValue,
                format!("the flag '{name}' cannot be set on a VM"),
                format!(
                    "a VM's own flags must be among: {}; other flags belong in a custom CPU model",
                    VM_FLAGS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A whole number in `min..=max`, as Proxmox's integer check reads it.
fn check_int(key: &str, v: &str, min: u64, max: u64) -> Result<(), Problem> {
    let n = (!v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
        .then(|| v.parse::<u64>().ok())
        .flatten();
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(problem(
            ErrorKind::Range,
            format!(
                "{key}={} is not a whole number from {min} to {max}",
                shown(v)
            ),
            format!("set {key} to a number from {min} to {max}"),
        )),
    }
}

/// The other properties, each by its schema.
fn check_property(key: &str, v: &str) -> Result<(), Problem> {
    match key {
        "flags" => check_flags(v),
        "hidden" => {
            let b = ["1", "on", "yes", "true", "0", "off", "no", "false"];
            if b.iter().any(|x| x.eq_ignore_ascii_case(v)) {
                Ok(())
            } else {
                Err(problem(
                    ErrorKind::Format,
                    format!("hidden {} is not a boolean", shown(v)),
                    "write hidden=1 or hidden=0",
                ))
            }
        }
        "hv-vendor-id" => {
            if (1..=12).contains(&v.len()) && v.bytes().all(|c| c.is_ascii_alphanumeric()) {
                Ok(())
            } else {
                Err(problem(
                    ErrorKind::Format,
                    format!("hv-vendor-id {} is not 1 to 12 letters or digits", shown(v)),
                    "write a Hyper-V vendor id such as hv-vendor-id=proxmox",
                ))
            }
        }
        "phys-bits" if v == "host" => Ok(()),
        "phys-bits" => check_int(key, v, 8, 64),
        "guest-phys-bits" => check_int(key, v, 32, 64),
        "level" => check_int(key, v, 0, u64::from(u32::MAX)),
        "reported-model" => Err(problem(
            ErrorKind::Misplaced,
            "reported-model is only valid in a custom CPU model definition",
            "remove reported-model, or define a custom model with it in /etc/pve/virtual-guest/cpu-models.conf and use custom-NAME",
        )),
        _ => Ok(()),
    }
}

/// Why `value` is not a CPU Proxmox accepts for a VM, if it is not.
pub(super) fn cpu_problem(value: &str) -> Option<Problem> {
    if value.chars().any(char::is_control) {
        return Some(problem(
            ErrorKind::Format,
            format!("{} contains a control character", shown(value)),
            MODEL_HELP,
        ));
    }
    let items = match parse(value) {
        Ok(items) => items,
        Err(p) => return Some(p),
    };
    let model = items.iter().find(|(k, _)| *k == "cputype").map(|(_, v)| *v);
    let Some(model) = model.filter(|m| *m != "0") else {
        return Some(problem(
            ErrorKind::Missing,
            "no CPU model (cputype)",
            MODEL_HELP,
        ));
    };
    if let Err(p) = check_model(model) {
        return Some(p);
    }
    items
        .iter()
        .filter(|(k, _)| *k != "cputype")
        .find_map(|(k, v)| check_property(k, v).err())
}

impl Cx<'_> {
    /// `cpu`: a CPU as `qm --cpu` takes it.
    pub(super) fn cpu(&mut self, n: &Node) -> Option<String> {
        let s = self.string("cpu", n)?;
        match cpu_problem(&s) {
            None => Some(s),
            Some((kind, message, help)) => {
                self.err(kind, n.span, format!("cpu: {message}"), help);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_list(name: &str) -> Vec<String> {
        let text = include_str!("../../../sim/schema/qm-schema.json");
        let schema: serde_json::Value = serde_json::from_str(text).expect("schema");
        schema["extras"][name]
            .as_array()
            .expect(name)
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect()
    }

    #[test]
    fn lists_match_the_vendored_schema() {
        assert_eq!(BUILTIN_MODELS, schema_list("cpu_models_builtin"));
        assert_eq!(VM_FLAGS, schema_list("cpu_flags_vm_specific"));
    }

    #[test]
    fn accepts_what_proxmox_accepts() {
        for v in [
            "host",
            "x86-64-v2-AES",
            "x86-64-v2-AES,flags=+aes",
            "cputype=kvm64,flags=+pcid;-spec-ctrl",
            "flags=+aes,cputype=host",
            "custom-mymodel",
            "custom-my_model-2,flags=+nested-virt",
            "host,hidden=1,hv-vendor-id=proxmox,phys-bits=host",
            "host,phys-bits=40,guest-phys-bits=40,level=30",
            "host,",
            "host, ,flags=+aes",
        ] {
            assert_eq!(cpu_problem(v), None, "{v}");
        }
    }

    #[test]
    fn refuses_what_proxmox_refuses() {
        let kind = |v: &str| cpu_problem(v).map(|p| p.0);
        assert_eq!(kind("notacpu"), Some(ErrorKind::UnknownValue));
        assert_eq!(kind("Host"), Some(ErrorKind::UnknownValue));
        assert_eq!(kind("host,flags=+avx2"), Some(ErrorKind::UnknownValue));
        assert_eq!(kind("host,flags=aes"), Some(ErrorKind::Format));
        assert_eq!(kind("host,flags=+aes;"), Some(ErrorKind::Format));
        assert_eq!(kind("host,flags="), Some(ErrorKind::Format));
        assert_eq!(kind("host,=x"), Some(ErrorKind::Format));
        assert_eq!(kind("host,kvm64"), Some(ErrorKind::Format));
        assert_eq!(kind("host,cputype=kvm64"), Some(ErrorKind::Format));
        assert_eq!(kind("host,flgs=+aes"), Some(ErrorKind::Format));
        assert_eq!(kind("host, flags=+aes"), Some(ErrorKind::Format));
        assert_eq!(kind("flags=+aes"), Some(ErrorKind::Missing));
        assert_eq!(kind("custom-"), Some(ErrorKind::Format));
        assert_eq!(kind("custom-x"), Some(ErrorKind::Format));
        assert_eq!(
            kind("host,reported-model=kvm64"),
            Some(ErrorKind::Misplaced)
        );
        assert_eq!(kind("host,phys-bits=7"), Some(ErrorKind::Range));
        assert_eq!(kind("host,guest-phys-bits=65"), Some(ErrorKind::Range));
        assert_eq!(kind("host,hidden=maybe"), Some(ErrorKind::Format));
        assert_eq!(
            kind("host,hv-vendor-id=toolongvendor1"),
            Some(ErrorKind::Format)
        );
        assert_eq!(kind("host\n"), Some(ErrorKind::Format));
    }

    #[test]
    fn a_near_model_is_named() {
        let msg = |v: &str| cpu_problem(v).map(|p| p.1).unwrap_or_default();
        assert_eq!(
            msg("Host"),
            "'Host' is not a built-in CPU model (did you mean 'host'?)"
        );
        assert_eq!(
            msg("x86-64-v2-aes"),
            "'x86-64-v2-aes' is not a built-in CPU model (did you mean 'x86-64-v2-AES'?)"
        );
        assert_eq!(
            msg("Skylake-Servr"),
            "'Skylake-Servr' is not a built-in CPU model (did you mean 'Skylake-Server'?)"
        );
        assert_eq!(msg("notacpu"), "'notacpu' is not a built-in CPU model");
    }
}
