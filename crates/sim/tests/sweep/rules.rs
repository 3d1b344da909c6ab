//! The rule table of the sweep: whether a real Proxmox VE 9.2 node accepts
//! a `qm create` or `qm set` line, decided from CONTRACT.md §1.1 and §18,
//! the `cli_parsing`, parameters, formats and `api_level_checks` of
//! `qm-schema.json`, and, where those are silent, the qemu-server,
//! pve-common and pve-storage sources they cite (named at each rule).
//!
//! It is written apart from pve-sim and calls none of its code, so that a
//! rule both get wrong by sharing code cannot pass unseen. It answers only
//! accept or reject (with the first reason it finds); messages are pve-sim's
//! business and are checked by the conformance table.

use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

/// What the table knows of the host the lines run on: the host the sweep
/// builds (see `main.rs`), described independently.
pub struct Fixture {
    /// `(id, kind, content types)`; kind is `dir` or `lvmthin`.
    pub storages: Vec<(&'static str, &'static str, Vec<&'static str>)>,
    /// Existing volumes: `(volid, content)`.
    pub volumes: Vec<(String, &'static str)>,
    /// Regular files on the host, with `true` for a valid SSH key file.
    pub files: Vec<(String, bool)>,
    /// Custom CPU models (`custom-NAME`).
    pub cpu_models: Vec<&'static str>,
    /// The config keys of the VM `qm set` lines change, and its memory.
    pub base_keys: Vec<&'static str>,
    /// `memory` of that VM (MiB).
    pub base_memory: u64,
    /// The slot holding that VM's cloud-init drive.
    pub base_cloudinit: &'static str,
}

/// Accept, or reject with a reason.
pub type Verdict = Result<(), String>;

/// The vendored schema, parsed once.
pub fn schema() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    CELL.get_or_init(|| {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/qm-schema.json"),
        )
        .expect("schema");
        serde_json::from_str(&text).expect("schema JSON")
    })
}

fn params(cmd: &str) -> &'static serde_json::Map<String, Value> {
    schema()["commands"][cmd]["parameters"]
        .as_object()
        .expect("parameters")
}

/// The definition of a named format.
pub fn format(name: &str) -> Option<&'static Value> {
    schema()["formats"].get(name)
}

/// A list of `extras` (drive names, config keys, CPU models...), read once.
fn extras(name: &str) -> &'static [&'static str] {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static [&'static str]>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("extras cache");
    cache.entry(name.to_string()).or_insert_with(|| {
        let v: Vec<&'static str> = schema()["extras"][name]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Vec::leak(v)
    })
}

/// A compiled regex, cached (and kept, with its match caches, for the
/// whole run): the table asks for the same few hundred.
fn rx(pattern: &str) -> &'static Regex {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static Regex>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("regex cache");
    cache.entry(pattern.to_string()).or_insert_with(|| {
        let r = Regex::new(pattern).unwrap_or_else(|e| panic!("rule regex {pattern}: {e}"));
        Box::leak(Box::new(r))
    })
}

/// Perl truth of a string: `""` and `"0"` are false.
fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "0")
}

// ---------------------------------------------------------------------------
// §1.1 and `cli_parsing`: Getopt::Long as PVE::JSONSchema::get_options sets it up.

/// `parse_boolean`: `1|on|yes|true` and `0|off|no|false`, any case.
pub fn perl_bool(v: &str) -> Option<&'static str> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some("1"),
        "0" | "off" | "no" | "false" => Some("0"),
        _ => None,
    }
}

/// The parameters a line gives, positional ones included.
pub struct Line {
    /// Option values by canonical name (booleans as `1`/`0`).
    pub opts: BTreeMap<String, String>,
}

fn getopt(cmd: &str, args: &[String]) -> Result<Line, String> {
    let defs = params(cmd);
    let fixed: Vec<&str> = schema()["commands"][cmd]["fixed"]
        .as_object()
        .map(|f| f.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let names: Vec<&String> = defs
        .keys()
        .filter(|k| !fixed.contains(&k.as_str()))
        .collect();
    let interactive = |k: &str| {
        schema()["commands"][cmd]["cli_param_mapping"][k]["kind"].as_str() == Some("interactive")
    };
    let mut opts = BTreeMap::new();
    let mut positional = Vec::new();
    let mut i = 0;
    let mut rest_positional = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if rest_positional || arg == "-" || !arg.starts_with('-') {
            positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            rest_positional = true;
            continue;
        }
        // `--opt=value` splits; `-opt=value` names an option `opt=value`.
        let (name, inline) = match arg.strip_prefix("--") {
            Some(body) => match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            },
            None => (arg[1..].to_string(), None),
        };
        let lower = name.to_ascii_lowercase();
        let exact: Vec<&&String> = names
            .iter()
            .filter(|n| n.to_ascii_lowercase() == lower)
            .collect();
        let found: Vec<&&String> = if exact.len() == 1 {
            exact
        } else {
            names
                .iter()
                .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
                .collect()
        };
        let key = match found.as_slice() {
            [one] => one.to_string(),
            [] => return Err(format!("getopt: unknown option {name}")),
            _ => return Err(format!("getopt: ambiguous option {name}")),
        };
        let def = &defs[&key];
        let next_word = |i: &mut usize| -> Option<String> {
            let w = args.get(*i).filter(|w| !w.starts_with('-')).cloned();
            if w.is_some() {
                *i += 1;
            }
            w
        };
        let value = if interactive(&key) {
            inline.or_else(|| next_word(&mut i)).unwrap_or_default()
        } else if def["type"] == "boolean" {
            let raw = inline
                .or_else(|| next_word(&mut i))
                .unwrap_or_else(|| "1".into());
            perl_bool(&raw)
                .ok_or_else(|| format!("getopt: boolean {key} given {raw:?}"))?
                .to_string()
        } else {
            match inline {
                Some(v) if v.is_empty() => return Err(format!("getopt: {key}= without value")),
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("getopt: {key} needs a value"))?;
                    i += 1;
                    v
                }
            }
        };
        let list = def["format"].as_str().is_some_and(|f| f.ends_with("-list"));
        match opts.get_mut(&key) {
            Some(prev) if list => *prev = format!("{prev},{value}"),
            _ => {
                opts.insert(key, value);
            }
        }
    }
    let wanted: Vec<&str> = schema()["commands"][cmd]["positional"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if positional.len() != wanted.len() {
        return Err("wrong number of positional arguments".into());
    }
    for (k, v) in wanted.iter().zip(positional) {
        opts.insert(k.to_string(), v);
    }
    Ok(Line { opts })
}

// ---------------------------------------------------------------------------
// PVE::JSONSchema::check_prop: type, then format, pattern, lengths, range, enum.

fn is_integer(v: &str) -> bool {
    rx(r"^[+-]?\d+$").is_match(v)
}

fn is_number(v: &str) -> bool {
    rx(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$").is_match(v)
}

/// A schema pattern as Perl applies it: `m/^$pattern$/`, the pattern
/// interpolated without a group of its own (so a top-level `|` splits the
/// anchors), `(?^:...)` as a plain group, and `{,n}` as `{0,n}` (Perl 5.34+).
fn perl_pattern(p: &str) -> &'static Regex {
    let body = p
        .replace("(?^u:", "(?:")
        .replace("(?^:", "(?:")
        .replace("{,", "{0,");
    rx(&format!("^{body}$"))
}

/// Checks one value against a property definition.
pub fn check_prop(def: &Value, v: &str) -> Verdict {
    match def["type"].as_str().unwrap_or("string") {
        "boolean" if v != "1" && v != "0" => return Err(format!("not a boolean: {v:?}")),
        "integer" if !is_integer(v) => return Err(format!("not an integer: {v:?}")),
        "number" if !is_number(v) => return Err(format!("not a number: {v:?}")),
        _ => {}
    }
    if let Some(f) = def["format"].as_str() {
        check_format(f, v)?;
    }
    if let Some(p) = def["pattern"].as_str() {
        if !perl_pattern(p).is_match(v) {
            return Err(format!("{v:?} does not match {p}"));
        }
    }
    let len = v.chars().count() as u64;
    if def["maxLength"].as_u64().is_some_and(|m| len > m) {
        return Err("too long".into());
    }
    if def["minLength"].as_u64().is_some_and(|m| len < m) {
        return Err("too short".into());
    }
    if is_number(v) {
        let n: f64 = v.parse().unwrap_or(0.0);
        if def["maximum"].as_f64().is_some_and(|m| n > m) {
            return Err("above the maximum".into());
        }
        if def["minimum"].as_f64().is_some_and(|m| n < m) {
            return Err("below the minimum".into());
        }
    }
    if let Some(e) = def["enum"].as_array() {
        if !e.iter().any(|x| x.as_str() == Some(v)) {
            return Err(format!("{v:?} not in the enumeration"));
        }
    }
    Ok(())
}

/// `PVE::Tools::split_list`: on NUL if there is one, else on `,`, `;`
/// and whitespace.
pub fn split_list(v: &str) -> Vec<&str> {
    if v.contains('\0') {
        return v.split('\0').filter(|s| !s.is_empty()).collect();
    }
    v.split(|c: char| c == ',' || c == ';' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks a value against a named format.
pub fn check_format(name: &str, v: &str) -> Verdict {
    let Some(f) = format(name) else {
        panic!("the rule table lacks format {name}");
    };
    match f["kind"].as_str() {
        Some("list") => {
            let item = f["item_format"].as_str().unwrap_or("");
            split_list(v)
                .into_iter()
                .try_for_each(|x| check_format(item, x))
        }
        Some("property-string") => property_string(name, v).map(|_| ()),
        Some("validator") => validator(name, v),
        other => panic!("format {name} of kind {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// §18 named formats.

fn ipv4_re() -> &'static str {
    "(?:(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])\\.){3}(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
}

/// RFC 3986 `IPv6address`, alternative by alternative.
fn ipv6_re() -> String {
    let h = "[0-9a-fA-F]{1,4}";
    let ls32 = format!("(?:{h}:{h}|{})", ipv4_re());
    let alts = [
        format!("(?:{h}:){{6}}{ls32}"),
        format!("::(?:{h}:){{5}}{ls32}"),
        format!("(?:{h})?::(?:{h}:){{4}}{ls32}"),
        format!("(?:(?:{h}:){{0,1}}{h})?::(?:{h}:){{3}}{ls32}"),
        format!("(?:(?:{h}:){{0,2}}{h})?::(?:{h}:){{2}}{ls32}"),
        format!("(?:(?:{h}:){{0,3}}{h})?::{h}:{ls32}"),
        format!("(?:(?:{h}:){{0,4}}{h})?::{ls32}"),
        format!("(?:(?:{h}:){{0,5}}{h})?::{h}"),
        format!("(?:(?:{h}:){{0,6}}{h})?::"),
    ];
    format!("(?:{})", alts.map(|a| format!("(?:{a})")).join("|"))
}

fn is_ipv4(v: &str) -> bool {
    static R: OnceLock<&'static Regex> = OnceLock::new();
    R.get_or_init(|| rx(&format!("^{}$", ipv4_re())))
        .is_match(v)
}

fn is_ipv6(v: &str) -> bool {
    static R: OnceLock<&'static Regex> = OnceLock::new();
    R.get_or_init(|| rx(&format!("^{}$", ipv6_re())))
        .is_match(v)
}

/// `ADDR/N` with 8 <= N <= max (§18: `/0` to `/7` are refused).
fn is_cidr(v: &str, addr: fn(&str) -> bool, max: u32) -> bool {
    let Some((a, n)) = v.rsplit_once('/') else {
        return false;
    };
    addr(a)
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && n.trim_start_matches('0').len() <= 3
        && n.parse::<u32>().is_ok_and(|n| (8..=max).contains(&n))
}

fn is_dns_name(v: &str) -> bool {
    static R: OnceLock<&'static Regex> = OnceLock::new();
    let label = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
    R.get_or_init(|| rx(&format!("^(?:{label}\\.)*{label}$")))
        .is_match(v)
}

fn is_volume_id(v: &str) -> bool {
    rx(r"(?i)^[a-z][a-z0-9._-]*[a-z0-9]:.+$").is_match(v)
}

fn drive_names() -> &'static [&'static str] {
    extras("valid_drive_names")
}

/// `N` or `N-M` (M >= N), comma-separated, spaces around allowed; Perl's
/// split drops trailing empty items, so `1,2,` and the empty set pass.
fn is_cpuset(v: &str) -> bool {
    let mut parts: Vec<&str> = v.split(',').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    let r = rx(r"^\s*(\d+)(?:-(\d+))?\s*$");
    parts.iter().all(|p| match r.captures(p) {
        Some(c) => {
            let from: f64 = c[1].parse().unwrap_or(0.0);
            let to: f64 = c.get(2).map_or(from, |m| m.as_str().parse().unwrap_or(0.0));
            to >= from
        }
        None => false,
    })
}

/// `pve_parse_startup_order`: false for `""` and `0`, else each non-blank
/// item is `[order=]N`, `up=N` or `down=N`.
fn is_startup(v: &str) -> bool {
    if v.is_empty() || v == "0" {
        return false;
    }
    let r = rx(r"^(?:(?:order=)?\d+|up=\d+|down=\d+)$");
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .all(|p| r.is_match(p))
}

fn validator(name: &str, v: &str) -> Verdict {
    let ok = match name {
        "ipv4" => is_ipv4(v),
        "ipv6" => is_ipv6(v),
        "ip" => is_ipv4(v) || is_ipv6(v),
        "CIDR" => is_cidr(v, is_ipv4, 32) || is_cidr(v, is_ipv6, 128),
        "pve-ipv4-config" => matches!(v, "dhcp" | "manual") || is_cidr(v, is_ipv4, 32),
        "pve-ipv6-config" => matches!(v, "auto" | "dhcp" | "manual") || is_cidr(v, is_ipv6, 128),
        "dns-name" => is_dns_name(v),
        // An IP or a DNS name, but `0` is false in Perl (§18).
        "address" => (is_ipv4(v) || is_ipv6(v) || is_dns_name(v)) && v != "0",
        "mac-addr" => rx(r"(?i)^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$").is_match(v),
        "pve-tag" => rx(r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$").is_match(v),
        "pve-vmid" => rx(r"^[1-9][0-9]{2,8}$").is_match(v),
        "pve-node" => rx(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$").is_match(v),
        "pve-storage-id" => {
            v.chars().count() >= 2 && rx(r"(?i)^[a-z][a-z0-9._-]*[a-z0-9]$").is_match(v)
        }
        "pve-bridge-id" => rx(r"^[-_.\w]+$").is_match(v),
        "pve-configid" => rx(r"(?i)^[a-z][a-z0-9_-]+$").is_match(v),
        "urlencoded" => rx(r"^[-%a-zA-Z0-9_.!~*'()]*$").is_match(v),
        "disk-size" => rx(r"^\d+(?:\.\d+)?(?:[KMGT](?:iB)?)?$").is_match(v),
        "pve-startup-order" => is_startup(v),
        "pve-poolid" => rx(r"^[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}$").is_match(v),
        "pve-volume-id" => is_volume_id(v),
        "pve-volume-id-or-absolute-path" => v.starts_with('/') || is_volume_id(v),
        "pve-volume-id-or-qm-path" => {
            v == "none" || v == "cdrom" || v.starts_with('/') || is_volume_id(v)
        }
        "pve-qm-bootdisk" => drive_names().contains(&v),
        "pve-qm-bootdev" => {
            let drive = drive_names().contains(&v)
                && !v.starts_with("efidisk")
                && !v.starts_with("tpmstate");
            let keyed = ["net", "usb", "hostpci"].iter().any(|b| {
                v.strip_prefix(b)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            }) && extras("config_keys").contains(&v);
            drive || keyed
        }
        "pve-cpuset" => is_cpuset(v),
        "pve-hotplug-features" => {
            v == "0"
                || v == "1"
                || split_list(v).iter().all(|f| {
                    matches!(
                        *f,
                        "network" | "disk" | "cpu" | "memory" | "usb" | "cloudinit"
                    )
                })
        }
        "pve-phys-bits" => {
            v == "host"
                || (rx(r"^\d{1,2}$").is_match(v)
                    && (8..=64).contains(&v.parse::<u32>().unwrap_or(0)))
        }
        other => panic!("the rule table has no validator for format {other}"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{v:?} is not a valid {name}"))
    }
}

// ---------------------------------------------------------------------------
// Property strings (PVE::JSONSchema::parse_property_string, then check_object).

/// Parses and checks a property string of format `name`; returns its keys.
pub fn property_string(name: &str, data: &str) -> Result<BTreeMap<String, String>, String> {
    let f = format(name).expect("format");
    let keys = f["keys"].as_object().expect("keys");
    let mut res: BTreeMap<String, String> = BTreeMap::new();
    let mut default_used = false;
    for part in data.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                if res.contains_key(k) {
                    return Err(format!("duplicate key {k}"));
                }
                let mut k = k.to_string();
                let mut kd = keys.get(&k);
                if let Some(target) = kd.and_then(|d| d["alias"].as_str()) {
                    if let Some(ka) = kd.and_then(|d| d["keyAlias"].as_str()) {
                        if res.contains_key(ka) {
                            return Err(format!("key alias {ka} already defined"));
                        }
                        res.insert(ka.to_string(), k.clone());
                    }
                    k = target.to_string();
                    kd = keys.get(&k);
                    if res.contains_key(&k) {
                        return Err(format!("key {k} already defined via an alias"));
                    }
                }
                let Some(kd) = kd else {
                    return Err(format!("invalid key {k}"));
                };
                let v = if kd["type"] == "boolean" {
                    perl_bool(v).map_or_else(|| v.to_string(), str::to_string)
                } else {
                    v.to_string()
                };
                res.insert(k, v);
            }
            None => {
                let Some((dk, dd)) = keys.iter().find(|(_, d)| d["default_key"] == true) else {
                    return Err("a value without key, and no default key".into());
                };
                if default_used || truthy(res.get(dk)) {
                    return Err(format!("duplicate key {dk}"));
                }
                default_used = true;
                let v = if dd["type"] == "boolean" {
                    perl_bool(part).map_or_else(|| part.to_string(), str::to_string)
                } else {
                    part.to_string()
                };
                res.insert(dk.clone(), v);
            }
            Some(_) => return Err("missing key in comma-separated list".into()),
        }
    }
    for (k, kd) in keys {
        if kd.get("alias").is_some() {
            continue;
        }
        match res.get(k) {
            Some(v) => check_prop(kd, v).map_err(|e| format!("{k}: {e}"))?,
            None if kd["optional"] != true => return Err(format!("{k} is missing")),
            None => {}
        }
    }
    for k in res.keys() {
        if let Some(req) = keys.get(k).and_then(|d| d["requires"].as_str()) {
            if !res.contains_key(req) {
                return Err(format!("{k} requires {req}"));
            }
        }
    }
    if name == "pve-vm-cpu-conf" {
        vm_cpu(&res)?;
    }
    Ok(res)
}

/// `validate_vm_cpu_conf` (qemu-server CPUConfig.pm, CONTRACT §18); the
/// custom model's existence is a host check ([`host_cpu`]).
fn vm_cpu(cpu: &BTreeMap<String, String>) -> Verdict {
    if !truthy(cpu.get("cputype")) {
        return Err("CPU is missing cputype".into());
    }
    let cputype = &cpu["cputype"];
    if !cputype.starts_with("custom-") && !extras("cpu_models_builtin").contains(&cputype.as_str())
    {
        return Err(format!("built-in cputype {cputype} is not defined"));
    }
    if truthy(cpu.get("flags")) {
        let allowed = extras("cpu_flags_vm_specific");
        let ok = cpu["flags"].split(';').all(|f| {
            f.strip_prefix(['+', '-'])
                .is_some_and(|n| allowed.contains(&n))
        });
        if !ok {
            return Err("VM-specific CPU flags outside the allowed set".into());
        }
    }
    if cpu.contains_key("reported-model") {
        return Err("reported-model in a VM CPU".into());
    }
    Ok(())
}

fn host_cpu(fx: &Fixture, value: &str) -> Verdict {
    let cpu = property_string("pve-vm-cpu-conf", value)?;
    match cpu["cputype"].strip_prefix("custom-") {
        Some(name) if !fx.cpu_models.contains(&name) => Err(format!("no custom CPU {name}")),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Drives (api_level_checks; qemu-server Drive.pm parse_drive, API2/Qemu.pm
// check_drive_param, check_storage_access and create_disks).

fn is_drive(key: &str) -> bool {
    drive_names().contains(&key)
}

fn drive_format(key: &str, cmd: &str) -> &'static str {
    params(cmd)[key]["format"].as_str().expect("drive format")
}

fn new_disk(file: &str) -> Option<(Option<String>, String)> {
    let c = rx(r"^(([^/:\s]+):)?(\d+(\.\d+)?)$").captures(file)?;
    Some((c.get(2).map(|m| m.as_str().to_string()), c[3].to_string()))
}

/// What a volume name means on a storage: its content type, or why it
/// does not parse (pve-storage Plugin.pm / LvmThinPlugin.pm parse_volname).
fn volume_content(fx: &Fixture, volid: &str) -> Result<&'static str, String> {
    let (sid, volname) = volid.split_once(':').ok_or("no storage")?;
    let (_, kind, _) = fx
        .storages
        .iter()
        .find(|s| s.0 == sid)
        .ok_or_else(|| format!("storage {sid} does not exist"))?;
    if *kind == "lvmthin" {
        let lvm = rx(r"(?i)^[a-z0-9][a-z0-9._-]*[a-z0-9]$").is_match(volname);
        if lvm && rx(r"^(vm|base)-\d+-\S+$").is_match(volname) {
            return Ok("images");
        }
        return Err(format!("unable to parse lvm volume name {volname}"));
    }
    let name = r"(?:(?:vm|base|subvol)-\d+-[^/\s]+|(?:base-)?[^/\s]+)\.(?:raw|qcow2|vmdk|subvol)";
    let kinds = [
        (format!(r"^\d+/{name}$"), "images"),
        (format!(r"^\d+/\S+/\d+/{name}$"), "images"),
        (r"(?i)^iso/[^/]+\.(?:iso|img)$".to_string(), "iso"),
        (r"^snippets/[^/]+$".to_string(), "snippets"),
        (
            r"^import/[-\w.+= ]+\.(?:ova|ovf|qcow2|raw|vmdk)$".to_string(),
            "import",
        ),
    ];
    kinds
        .iter()
        .find(|(r, _)| rx(r).is_match(volname))
        .map(|(_, c)| *c)
        .ok_or_else(|| format!("unable to parse directory volume name {volname}"))
}

fn storage<'a>(
    fx: &'a Fixture,
    id: &str,
) -> Option<&'a (&'static str, &'static str, Vec<&'static str>)> {
    fx.storages.iter().find(|s| s.0 == id)
}

/// Checks one drive option; `cloudinit_at` is where the VM's cloud-init
/// drive already is (not counting `key` itself).
fn drive(
    fx: &Fixture,
    cmd: &str,
    key: &str,
    value: &str,
    cloudinit_at: &mut Option<String>,
) -> Verdict {
    let d = property_string(drive_format(key, cmd), value)?;
    let t = |k: &str| truthy(d.get(k));
    // parse_drive
    for o in ["bps", "bps_rd", "bps_wr"] {
        if d.contains_key(o) && d.contains_key(&format!("m{o}")) {
            return Err(format!("both {o} and m{o}"));
        }
    }
    let mb = |o: &str| t(o) || d.contains_key(&o[1..]);
    for (o, r) in [
        ("mbps_max", "mbps"),
        ("mbps_rd_max", "mbps_rd"),
        ("mbps_wr_max", "mbps_wr"),
    ] {
        if t(o) && !mb(r) {
            return Err(format!("{o} requires {r}"));
        }
    }
    for (o, r) in [
        ("bps_max_length", "mbps_max"),
        ("bps_rd_max_length", "mbps_rd_max"),
        ("bps_wr_max_length", "mbps_wr_max"),
        ("iops_max_length", "iops_max"),
        ("iops_rd_max_length", "iops_rd_max"),
        ("iops_wr_max_length", "iops_wr_max"),
    ] {
        if t(o) && !t(r) {
            return Err(format!("{o} requires {r}"));
        }
    }
    if (mb("mbps_rd") || mb("mbps_wr")) && mb("mbps") {
        return Err("mbps with mbps_rd/mbps_wr".into());
    }
    if (t("iops_rd") || t("iops_wr")) && t("iops") {
        return Err("iops with iops_rd/iops_wr".into());
    }
    let cdrom = d.get("media").map(String::as_str) == Some("cdrom");
    if cdrom && (t("snapshot") || t("format") || key.starts_with("virtio")) {
        return Err("a CD-ROM with snapshot, format or on virtio".into());
    }
    let file = d.get("file").cloned().unwrap_or_default();
    // check_drive_param: import-from syntax
    if let Some(src) = d.get("import-from").filter(|s| !s.is_empty()) {
        match new_disk(&file) {
            Some((_, size)) if size.parse::<f64>().ok() == Some(0.0) => {}
            _ => return Err("import-from requires STORAGE:0".into()),
        }
        if key == "efidisk0" && !(d.contains_key("efitype") && d.contains_key("pre-enrolled-keys"))
        {
            return Err("efidisk0 import needs efitype and pre-enrolled-keys".into());
        }
        if key == "tpmstate0" && !d.contains_key("version") {
            return Err("tpmstate0 import needs version".into());
        }
        import_source(fx, src)?;
    }
    // cleanup_drive_path: a path outside /dev must lie on a storage; an ISO
    // there becomes its volume, a CD-ROM unless `media=disk` says otherwise.
    if file.starts_with('/') && !file.starts_with("/dev/") {
        let iso = file
            .strip_prefix("/var/lib/vz/template/iso/")
            .filter(|_| fx.files.iter().any(|(f, _)| *f == file));
        return match iso {
            Some(_) if d.get("media").map(String::as_str) == Some("disk") => {
                Err("unable to associate disk media with an iso file".into())
            }
            Some(_) => Ok(()),
            None => Err("unable to associate the path to any storage".into()),
        };
    }
    let cloudinit = file == "cloudinit" || file.ends_with(":cloudinit");
    if cloudinit {
        let sid = file.trim_end_matches("cloudinit").trim_end_matches(':');
        if storage(fx, sid).is_none() {
            return Err(format!("storage {sid} does not exist"));
        }
        if let Some(other) = cloudinit_at.as_ref().filter(|o| *o != key) {
            return Err(format!("cloud-init drive already at {other}"));
        }
        *cloudinit_at = Some(key.to_string());
        return Ok(());
    }
    if file == "none" || file == "cdrom" {
        return Ok(());
    }
    if let (Some((sid, _)), false) = (new_disk(&file), cdrom) {
        let sid = sid.ok_or("no storage ID")?;
        let (_, kind, content) =
            storage(fx, &sid).ok_or_else(|| format!("storage {sid} does not exist"))?;
        if !content.contains(&"images") {
            return Err(format!("storage {sid} holds no images"));
        }
        // The storage plugin allocates only its own formats (also for an import).
        let formats: &[&str] = if *kind == "lvmthin" {
            &["raw"]
        } else {
            &["raw", "qcow2", "vmdk"]
        };
        if let Some(f) = d.get("format").filter(|f| !formats.contains(&f.as_str())) {
            return Err(format!("format {f} on a {kind} storage"));
        }
        return Ok(());
    }
    if file.starts_with('/') {
        // Under /dev/ the file is taken as given; it must exist.
        return if fx.files.iter().any(|(f, _)| *f == file) {
            Ok(())
        } else {
            Err(format!("volume {file} does not exist"))
        };
    }
    let content = volume_content(fx, &file)?;
    if content != "images" && content != "iso" {
        return Err("content type needs to be images or iso".into());
    }
    if content == "iso" && !cdrom {
        return Err("explicit media=cdrom is required for iso images".into());
    }
    if !fx.volumes.iter().any(|(v, _)| *v == file) {
        return Err(format!("volume {file} does not exist"));
    }
    let real_format = if file.ends_with(".qcow2") {
        "qcow2"
    } else {
        "raw"
    };
    if let Some(f) = d.get("format").filter(|f| *f != real_format) {
        return Err(format!("format {f} differs from the volume's"));
    }
    Ok(())
}

/// `import-from`: an absolute path to a file, or an `images`/`import`
/// volume that exists.
fn import_source(fx: &Fixture, src: &str) -> Verdict {
    if src.starts_with('/') {
        return if fx.files.iter().any(|(f, _)| f == src) {
            Ok(())
        } else {
            Err(format!("cannot read {src}"))
        };
    }
    let content = volume_content(fx, src)?;
    if content != "images" && content != "import" {
        return Err(format!("{src} has wrong type {content}"));
    }
    if !fx.volumes.iter().any(|(v, _)| v == src) {
        return Err(format!("{src} does not exist"));
    }
    Ok(())
}

/// `unusedN` (check_storage_access): a volume of content `images` whose
/// name parses on its storage; it need not exist (root's access check
/// does not look).
fn unused(fx: &Fixture, value: &str) -> Verdict {
    let d = property_string("qm-unused", value)?;
    let file = &d["file"];
    match volume_content(fx, file)? {
        "images" => Ok(()),
        other => Err(format!("unused volume of content {other}")),
    }
}

// ---------------------------------------------------------------------------
// The two commands.

fn ssh_keys(fx: &Fixture, path: &str) -> Verdict {
    match fx.files.iter().find(|(f, _)| f == path) {
        Some((_, true)) => Ok(()),
        Some((_, false)) => Err("SSH public key validation error".into()),
        None => Err(format!("can't open {path}")),
    }
}

fn vga_clipboard(value: &str) -> Verdict {
    let v = property_string("qm-vga", value)?;
    let vnc = v.get("clipboard").map(String::as_str) == Some("vnc");
    let ty = v.get("type").filter(|t| truthy(Some(t)));
    if vnc && ty.is_some_and(|t| !rx("^(std|cirrus|vmware|virtio|qxl)").is_match(t)) {
        return Err("vga type is not compatible with the VNC clipboard".into());
    }
    Ok(())
}

fn memory_mib(value: &str) -> u64 {
    property_string("qm-memory", value)
        .ok()
        .and_then(|m| m.get("current").and_then(|c| c.parse::<f64>().ok()))
        .map_or(512, |m| m as u64)
}

/// The verdict of a real host on `qm ARGS` (create or set).
pub fn judge(fx: &Fixture, args: &[String]) -> Verdict {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    assert!(
        cmd == "create" || cmd == "set",
        "the table knows create and set only"
    );
    let line = getopt(cmd, &args[1..])?;
    let p = &line.opts;
    // An interactive option with a false value makes qm prompt.
    if p.get("cipassword").is_some_and(|v| !truthy(Some(v))) {
        return Err("qm prompts for the password".into());
    }
    let defs = params(cmd);
    for (k, v) in p {
        if k == "sshkeys" {
            ssh_keys(fx, v)?;
            continue;
        }
        check_prop(&defs[k], v).map_err(|e| format!("{k}: {e}"))?;
    }
    for k in p.keys() {
        if let Some(req) = defs[k]["requires"].as_str() {
            if !p.contains_key(req) {
                return Err(format!("{k} requires {req}"));
            }
        }
    }
    if let Some(cpu) = p.get("cpu") {
        host_cpu(fx, cpu)?;
    }
    if cmd == "create" {
        create(fx, p)
    } else {
        set(fx, p)
    }
}

/// Drive options after `--cdrom` became `ide2` (resolve_cdrom_alias).
fn with_cdrom(p: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut p = p.clone();
    if let Some(c) = p.remove("cdrom").filter(|c| truthy(Some(c))) {
        let v = if c.contains("media=") {
            c
        } else {
            format!("{c},media=cdrom")
        };
        p.insert("ide2".into(), v);
    }
    p
}

fn drives(
    fx: &Fixture,
    cmd: &str,
    p: &BTreeMap<String, String>,
    mut cloudinit_at: Option<String>,
) -> Verdict {
    for (k, v) in p {
        if is_drive(k) {
            drive(fx, cmd, k, v, &mut cloudinit_at).map_err(|e| format!("{k}: {e}"))?;
        } else if k.starts_with("unused") {
            unused(fx, v).map_err(|e| format!("{k}: {e}"))?;
        }
    }
    Ok(())
}

fn create(fx: &Fixture, p: &BTreeMap<String, String>) -> Verdict {
    // A true --archive restores a backup; the fixture has none.
    if truthy(p.get("archive")) {
        return Err("restore: the host has no such backup".into());
    }
    if p.contains_key("pool") {
        return Err("the host has no pools".into());
    }
    let p = with_cdrom(p);
    drives(fx, "create", &p, None)?;
    if let Some(vga) = p.get("vga") {
        vga_clipboard(vga)?;
    }
    Ok(())
}

fn set(fx: &Fixture, p: &BTreeMap<String, String>) -> Verdict {
    let given: Vec<&String> = p
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "vmid" | "digest" | "skiplock" | "delete" | "revert" | "force"
            )
        })
        .collect();
    let deletes: Vec<String> = p
        .get("delete")
        .filter(|d| truthy(Some(d)))
        .map(|d| {
            split_list(d)
                .iter()
                .map(|s| {
                    if *s == "cdrom" {
                        "ide2".to_string()
                    } else {
                        s.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let reverts: Vec<&str> = p
        .get("revert")
        .filter(|r| truthy(Some(r)))
        .map(|r| split_list(r))
        .unwrap_or_default();
    if given.is_empty() && deletes.is_empty() && reverts.is_empty() {
        return Err("no options specified".into());
    }
    let keys = extras("config_keys");
    let p = with_cdrom(p);
    for r in &reverts {
        if !keys.contains(r) {
            return Err(format!("revert: unknown option {r}"));
        }
        if p.contains_key(*r) {
            return Err(format!("{r} set and reverted"));
        }
    }
    for d in &deletes {
        if p.contains_key(d) || reverts.contains(&d.as_str()) {
            return Err(format!("{d} deleted and set or reverted"));
        }
        if !keys.contains(&d.as_str()) {
            return Err(format!("delete: unknown option {d}"));
        }
    }
    // hookscript: an existing executable snippet; the fixture has none.
    if p.contains_key("hookscript") {
        return Err("no such hook script".into());
    }
    // balloon against the memory of this call or of the VM (default 512).
    if p.contains_key("memory") || p.contains_key("balloon") {
        let memory = p
            .get("memory")
            .filter(|m| truthy(Some(m)))
            .map_or(fx.base_memory, |m| memory_mib(m));
        let balloon: f64 = p.get("balloon").and_then(|b| b.parse().ok()).unwrap_or(0.0);
        if balloon > memory as f64 {
            return Err("balloon value too large".into());
        }
    }
    // A drive --delete removes is only a pending deletion while the new
    // drives are made, so the cloud-init drive still counts.
    drives(fx, "set", &p, Some(fx.base_cloudinit.to_string()))?;
    if let Some(vga) = p.get("vga") {
        vga_clipboard(vga)?;
    }
    if let Some(boot) = p.get("boot") {
        let b = property_string("pve-qm-boot", boot)?;
        if let Some(order) = b.get("order").filter(|o| truthy(Some(o))) {
            for dev in split_list(order) {
                let exists = fx.base_keys.contains(&dev) || p.contains_key(dev);
                if !exists || deletes.iter().any(|d| d == dev) {
                    return Err(format!("invalid bootorder: device {dev} does not exist"));
                }
            }
        }
    }
    Ok(())
}
