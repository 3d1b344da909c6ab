//! `qm` argument parsing and validation, driven by the vendored
//! `qm-schema.json` (dumped from Proxmox's own Perl code).
//!
//! This parser is written independently of pvefleet's command renderer, so
//! a misspelt flag cannot pass on both sides. It follows Getopt::Long as
//! `PVE::JSONSchema::get_options` configures it: `--opt value`, `--opt=value`
//! and `-opt value`; case-insensitive names; unique prefixes; booleans whose
//! value is optional and that swallow a following word; `-list` options that
//! may repeat; positionals that may interleave with options.

use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

static SCHEMA: &str = include_str!("../schema/qm-schema.json");

/// The parsed schema.
pub fn schema() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    CELL.get_or_init(|| serde_json::from_str(SCHEMA).unwrap_or(Value::Null))
}

/// A failed invocation: text for stderr and an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What goes to stderr (newline-terminated).
    pub stderr: String,
    /// The exit code.
    pub exit: i32,
}

impl Failure {
    /// A plain die: the message and exit 255.
    pub fn die(msg: impl Into<String>) -> Self {
        let mut stderr = msg.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Self { stderr, exit: 255 }
    }
}

/// A resolved `qm` command with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The canonical command (`create`, `disk import`, `guest cmd`).
    pub command: String,
    /// Parameter values as given (booleans normalised to `1`/`0`).
    pub params: BTreeMap<String, String>,
    /// The words of a trailing `extra-args` positional (`qm guest exec
    /// VMID -- CMD ARGS...`).
    pub extra: Vec<String>,
}

fn commands() -> &'static serde_json::Map<String, Value> {
    static EMPTY: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    schema()
        .get("commands")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

fn formats() -> Option<&'static serde_json::Map<String, Value>> {
    schema().get("formats").and_then(Value::as_object)
}

/// The usage line of a command, as appended to 400 errors.
pub fn usage(command: &str) -> String {
    let def = commands().get(command);
    let mut u = String::from("qm ");
    u.push_str(command);
    if let Some(pos) = def
        .and_then(|d| d.get("positional"))
        .and_then(Value::as_array)
    {
        for p in pos.iter().filter_map(Value::as_str) {
            u.push_str(" <");
            u.push_str(p);
            u.push('>');
        }
    }
    u.push_str(" [OPTIONS]");
    u
}

fn unknown_command(words: &[&str]) -> Failure {
    let mut s = String::from("ERROR: unknown command 'qm");
    for w in words {
        s.push(' ');
        s.push_str(w);
    }
    s.push_str("'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n");
    Failure {
        stderr: s,
        exit: 255,
    }
}

/// Resolves command words (prefixes, aliases, groups). Returns the canonical
/// command and how many words it used.
pub fn resolve_command(args: &[String]) -> Result<(String, usize), Failure> {
    let cmds = commands();
    let mut prefix = String::new();
    let mut used = 0;
    let mut seen: Vec<&str> = Vec::new();
    loop {
        let Some(word) = args.get(used) else {
            return Err(unknown_command(&seen));
        };
        seen.push(word);
        let level: Vec<(&String, &Value)> = cmds
            .iter()
            .filter(|(k, _)| {
                if prefix.is_empty() {
                    !k.contains(' ')
                } else {
                    k.strip_prefix(&prefix).is_some_and(|r| !r.contains(' '))
                }
            })
            .collect();
        let full = [prefix.as_str(), word].concat();
        let found = level
            .iter()
            .find(|(k, _)| **k == full)
            .copied()
            .or_else(|| {
                let matches: Vec<_> = level
                    .iter()
                    .filter(|(k, v)| v.get("alias").is_none() && k.starts_with(&full))
                    .collect();
                (matches.len() == 1).then(|| *matches[0])
            });
        let Some((name, def)) = found else {
            return Err(unknown_command(&seen));
        };
        used += 1;
        if let Some(target) = def.get("alias").and_then(Value::as_str) {
            return Ok((target.to_string(), used));
        }
        if def.get("group").and_then(Value::as_bool) == Some(true) {
            prefix = [name.as_str(), " "].concat();
            continue;
        }
        return Ok((name.clone(), used));
    }
}

fn param_error(command: &str, lines: &[(String, String)]) -> Failure {
    let mut s = String::from("400 Parameter verification failed.\n");
    for (p, r) in lines {
        s.push_str(p);
        s.push_str(": ");
        s.push_str(r);
        s.push('\n');
    }
    s.push('\n');
    with_usage(s, command)
}

fn getopt_error(command: &str, getopt: &str, what: &str) -> Failure {
    let mut s = String::from(getopt);
    s.push('\n');
    s.push_str("400 ");
    s.push_str(what);
    s.push('\n');
    with_usage(s, command)
}

/// What Getopt and qm say about an option the command does not know.
pub fn unknown_option(command: &str, name: &str) -> Failure {
    getopt_error(
        command,
        &["Unknown option: ", &name.to_ascii_lowercase()].concat(),
        "unable to parse option",
    )
}

/// A usage error: `message`, then the command's usage text (exit 255).
fn with_usage(mut message: String, command: &str) -> Failure {
    message.push_str(&usage(command));
    message.push('\n');
    Failure {
        stderr: message,
        exit: 255,
    }
}

fn is_boolean(def: &Value) -> bool {
    def.get("type").and_then(Value::as_str) == Some("boolean")
}

fn is_list(def: &Value) -> bool {
    def.get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.ends_with("-list"))
}

/// Perl's truth of a string: all but `""` and `"0"` are true.
pub fn perl_true(v: &str) -> bool {
    !v.is_empty() && v != "0"
}

/// Parses a Perl boolean word.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

/// Parses `qm` argv (without the program name) into an [`Invocation`] and
/// validates every parameter against the schema.
pub fn parse_qm(args: &[String]) -> Result<Invocation, Failure> {
    let (command, used) = resolve_command(args)?;
    let def = commands()
        .get(&command)
        .ok_or_else(|| unknown_command(&[command.as_str()]))?;
    static NONE: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    let params_def = def
        .get("parameters")
        .and_then(Value::as_object)
        .unwrap_or_else(|| NONE.get_or_init(serde_json::Map::new));
    let fixed: Vec<String> = def
        .get("fixed")
        .and_then(Value::as_object)
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    let positional: Vec<String> = def
        .get("positional")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<&String> = params_def.keys().filter(|k| !fixed.contains(k)).collect();
    let mut opts: BTreeMap<String, String> = BTreeMap::new();
    let mut pos_values: Vec<String> = Vec::new();
    let rest = &args[used..];
    let mut i = 0;
    let mut only_positional = false;
    while i < rest.len() {
        let arg = &rest[i];
        i += 1;
        if only_positional || arg == "-" || !arg.starts_with('-') {
            pos_values.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        let (body, double) = match arg.strip_prefix("--") {
            Some(b) => (b, true),
            None => (&arg[1..], false),
        };
        // Only `--opt=value` is split; `-opt=value` is one (unknown) name.
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) if double => (n, Some(v)),
            _ => (body, None),
        };
        let lname = name.to_ascii_lowercase();
        let exact: Vec<&&String> = names
            .iter()
            .filter(|n| n.eq_ignore_ascii_case(&lname))
            .collect();
        let matched: Vec<&&String> = if exact.len() == 1 {
            exact
        } else {
            names
                .iter()
                .filter(|n| {
                    n.len() >= lname.len()
                        && n.as_bytes()[..lname.len()].eq_ignore_ascii_case(lname.as_bytes())
                })
                .collect()
        };
        let key = match matched.as_slice() {
            [one] => (**one).clone(),
            [] => {
                return Err(getopt_error(
                    &command,
                    &["Unknown option: ", &lname].concat(),
                    "unable to parse option",
                ))
            }
            many => {
                let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(getopt_error(
                    &command,
                    &["Option ", &lname, " is ambiguous (", &list.join(", "), ")"].concat(),
                    "unable to parse option",
                ));
            }
        };
        let pdef = &params_def[&key];
        let value = if is_interactive(&command, &key) {
            match inline {
                Some(v) => v.to_string(),
                None => match rest.get(i) {
                    Some(next) if !next.starts_with('-') => {
                        i += 1;
                        next.clone()
                    }
                    _ => String::new(),
                },
            }
        } else if is_boolean(pdef) {
            let raw = match inline {
                Some(v) => v.to_string(),
                None => match rest.get(i) {
                    Some(next) if !next.starts_with('-') => {
                        i += 1;
                        next.clone()
                    }
                    _ => "1".to_string(),
                },
            };
            match parse_bool(&raw) {
                Some(b) => if b { "1" } else { "0" }.to_string(),
                None => {
                    return Err(getopt_error(
                        &command,
                        &["Value \"", &raw, "\" invalid for option ", &key].concat(),
                        "unable to parse boolean option",
                    ))
                }
            }
        } else {
            match inline {
                Some("") => {
                    return Err(getopt_error(
                        &command,
                        &["Option ", &key, " requires an argument"].concat(),
                        "unable to parse option",
                    ))
                }
                Some(v) => v.to_string(),
                None => match rest.get(i) {
                    Some(next) => {
                        i += 1;
                        next.clone()
                    }
                    None => {
                        return Err(getopt_error(
                            &command,
                            &["Option ", &key, " requires an argument"].concat(),
                            "unable to parse option",
                        ))
                    }
                },
            }
        };
        match opts.get_mut(&key) {
            Some(prev) if is_list(pdef) => {
                prev.push(',');
                prev.push_str(&value);
            }
            _ => {
                opts.insert(key, value);
            }
        }
    }
    let mut params = opts;
    let mut extra = Vec::new();
    if positional.last().map(String::as_str) == Some("extra-args") {
        // `qm help [extra-args...]`, `qm guest exec VMID [extra-args...]`.
        let fixed = &positional[..positional.len() - 1];
        if pos_values.len() < fixed.len() {
            return Err(Failure {
                stderr: ["400 not enough arguments\n", &usage(&command), "\n"].concat(),
                exit: 255,
            });
        }
        extra = pos_values.split_off(fixed.len());
        for (name, v) in fixed.iter().zip(pos_values) {
            params.insert(name.clone(), v);
        }
    } else {
        if pos_values.len() < positional.len() {
            return Err(Failure {
                stderr: ["400 not enough arguments\n", &usage(&command), "\n"].concat(),
                exit: 255,
            });
        }
        if pos_values.len() > positional.len() {
            return Err(Failure {
                stderr: ["400 too many arguments\n", &usage(&command), "\n"].concat(),
                exit: 255,
            });
        }
        for (name, v) in positional.iter().zip(pos_values) {
            params.insert(name.clone(), v);
        }
    }
    // An interactive option whose value is false in Perl (missing, `''` or
    // `0`) makes qm prompt on the terminal, before the schema checks.
    for (k, v) in &params {
        if is_interactive(&command, k) && (v.is_empty() || v == "0") {
            return Err(Failure::die(
                "Enter new password: \npve-sim: qm prompts for the password here (its value was missing, empty or 0), which a non-interactive session cannot answer",
            ));
        }
    }
    // Required parameters.
    let mut errors: Vec<(String, String)> = Vec::new();
    for k in required(&command) {
        if !fixed.contains(k) && !params.contains_key(k) {
            errors.push((
                k.clone(),
                "property is missing and it is not optional".into(),
            ));
        }
    }
    for (k, v) in &params {
        let Some(d) = params_def.get(k) else {
            continue;
        };
        // A file-mapped argument is a path; its content is checked later.
        if file_mapping(&command, k).is_none() {
            if let Err(reason) = check_value(k, v, d) {
                errors.push((k.clone(), reason));
            }
        }
        // Schema `requires` between parameters.
        if let Some(req) = d.get("requires").and_then(Value::as_str) {
            if !params.contains_key(req) {
                errors.push((
                    req.to_string(),
                    ["missing property required by '", k, "'"].concat(),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(param_error(&command, &errors));
    }
    Ok(Invocation {
        command,
        params,
        extra,
    })
}

/// The parameters of `command` that are not optional (computed once).
fn required(command: &str) -> &'static [String] {
    static CELL: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    let all = CELL.get_or_init(|| {
        commands()
            .iter()
            .map(|(name, def)| {
                let req = def
                    .get("parameters")
                    .and_then(Value::as_object)
                    .map(|ps| {
                        ps.iter()
                            .filter(|(_, d)| {
                                d.get("optional").and_then(Value::as_bool) != Some(true)
                            })
                            .map(|(k, _)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                (name.clone(), req)
            })
            .collect()
    });
    all.get(command).map(Vec::as_slice).unwrap_or(&[])
}

fn mapping_kind(command: &str, key: &str) -> Option<&'static str> {
    commands()
        .get(command)?
        .get("cli_param_mapping")?
        .get(key)?
        .get("kind")?
        .as_str()
}

fn file_mapping(command: &str, key: &str) -> Option<&'static str> {
    mapping_kind(command, key).filter(|k| *k == "file")
}

/// An interactive option (`--cipassword`): Getopt takes its value as
/// optional (`prop:s`), like a boolean's.
fn is_interactive(command: &str, key: &str) -> bool {
    mapping_kind(command, key) == Some("interactive")
}

/// A schema pattern as Perl applies it, `m/^$pattern$/`: the pattern is
/// interpolated as text, so a top-level `|` splits the anchors (the
/// `parallel0` pattern `/dev/parport\d+|/dev/usb/lp\d+` takes
/// `/dev/parport0x`, as a real host does); `(?^:...)` is a plain group and
/// `{,n}` means `{0,n}` (Perl 5.34+). Compiled once per pattern.
fn anchored(pattern: &str) -> Option<&'static Regex> {
    type Cache = BTreeMap<String, Option<&'static Regex>>;
    static CACHE: OnceLock<std::sync::Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().ok()?;
    *cache.entry(pattern.to_string()).or_insert_with(|| {
        let p = pattern
            .replace("(?^u:", "(?:")
            .replace("(?^:", "(?:")
            .replace("{,", "{0,");
        // Kept for the process's life, with the caches its matches build.
        Regex::new(&["^", &p, "$"].concat())
            .ok()
            .map(|r| &*Box::leak(Box::new(r)))
    })
}

/// `PVE::JSONSchema::is_integer`.
fn is_integer(v: &str) -> bool {
    rx("integer", v)
}

/// `PVE::JSONSchema::is_number`: no `inf`, `nan` or hex, unlike Rust's parser.
fn is_number(v: &str) -> bool {
    rx("number", v)
}

/// Checks one value against its schema definition, in the order of
/// `PVE::JSONSchema::check_prop`: type, then format, pattern, lengths, the
/// numeric range (of any value that looks like a number) and the enum.
/// Returns the reason on failure.
pub fn check_value(key: &str, value: &str, def: &Value) -> Result<(), String> {
    let ty = def.get("type").and_then(Value::as_str).unwrap_or("string");
    let type_ok = match ty {
        "integer" => is_integer(value),
        "number" => is_number(value),
        "boolean" => parse_bool(value).is_some(),
        _ => true,
    };
    if !type_ok {
        return Err(["type check ('", ty, "') failed - got '", value, "'"].concat());
    }
    if let Some(f) = def.get("format").and_then(Value::as_str) {
        check_format(key, f, value)?;
    }
    if let Some(p) = def.get("pattern").and_then(Value::as_str) {
        if anchored(p).is_some_and(|re| !re.is_match(value)) {
            return Err("value does not match the regex pattern".into());
        }
    }
    let len = value.len() as u64;
    if let Some(max) = def.get("maxLength").and_then(Value::as_u64) {
        if len > max {
            return Err(["value may only be ", &max.to_string(), " characters long"].concat());
        }
    }
    if let Some(min) = def.get("minLength").and_then(Value::as_u64) {
        if len < min {
            return Err([
                "value must be at least ",
                &min.to_string(),
                " characters long",
            ]
            .concat());
        }
    }
    if is_number(value) {
        check_range(value.parse().unwrap_or(0.0), def)?;
    }
    if let Some(e) = def.get("enum").and_then(Value::as_array) {
        let opts: Vec<&str> = e.iter().filter_map(Value::as_str).collect();
        if !opts.contains(&value) {
            return Err(not_in_enum(value, &opts));
        }
    }
    Ok(())
}

fn check_range(n: f64, def: &Value) -> Result<(), String> {
    if let Some(min) = def.get("minimum").and_then(Value::as_f64) {
        if n < min {
            return Err(["value must have a minimum value of ", &num(min)].concat());
        }
    }
    if let Some(max) = def.get("maximum").and_then(Value::as_f64) {
        if n > max {
            return Err(["value must have a maximum value of ", &num(max)].concat());
        }
    }
    Ok(())
}

fn num(f: f64) -> String {
    if f.fract() == 0.0 {
        (f as i64).to_string()
    } else {
        f.to_string()
    }
}

/// Splits a `-list` value as `PVE::Tools::split_list` does: on NUL when the
/// value holds one, else on `,`, `;` and whitespace.
pub fn split_list(v: &str) -> Vec<&str> {
    if v.contains('\0') {
        return v.split('\0').filter(|s| !s.is_empty()).collect();
    }
    v.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks `value` against a named format.
pub fn check_format(key: &str, format: &str, value: &str) -> Result<(), String> {
    let Some(fdef) = formats().and_then(|f| f.get(format)) else {
        return Ok(());
    };
    match fdef.get("kind").and_then(Value::as_str) {
        Some("list") => {
            let item = fdef
                .get("item_format")
                .and_then(Value::as_str)
                .unwrap_or("");
            for part in split_list(value) {
                check_format(key, item, part)?;
            }
            Ok(())
        }
        Some("property-string") => check_property_string(key, format, fdef, value),
        Some("validator") => {
            let sub = fdef.get("perl_sub").and_then(Value::as_str).unwrap_or("");
            validator(sub, value).map_err(|m| ["invalid format - ", &m].concat())
        }
        _ => Ok(()),
    }
}

/// Parses a property string as `PVE::JSONSchema::parse_property_string`
/// does before it checks the keys: items split on `,` (blank ones skipped),
/// `key=value` with a non-empty value, a bare item fills the default key,
/// aliases and key aliases resolve, a key the format lacks is an error. The
/// first problem is the error (the Perl code dies with it).
///
/// A key given together with an alias of it (`file=...,volume=...`) is an
/// error since pve-common 9.1.9 (PVE 9.2); older hosts let the later one
/// win. pve-sim refuses it on every version.
pub fn parse_property_string(
    fdef: &Value,
    value: &str,
) -> Result<BTreeMap<String, String>, String> {
    let keys = fdef.get("keys").and_then(Value::as_object);
    let default_key = fdef.get("default_key").and_then(Value::as_str);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut used_default = false;
    for part in value.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                if out.contains_key(k) {
                    return Err(["duplicate key in comma-separated list property: ", k].concat());
                }
                let kd = keys.and_then(|ks| ks.get(k));
                let k = match kd.and_then(|d| d.get("alias")).and_then(Value::as_str) {
                    Some(target) => {
                        if let Some(ka) = kd.and_then(|d| d.get("keyAlias")).and_then(Value::as_str)
                        {
                            // `virtio=MAC`: the key names the model, the value is the MAC.
                            if out.contains_key(ka) {
                                return Err(["key alias '", ka, "' is already defined"].concat());
                            }
                            out.insert(ka.to_string(), k.to_string());
                        }
                        if out.contains_key(target) {
                            return Err(
                                ["key '", target, "' is already defined (via alias)"].concat()
                            );
                        }
                        target
                    }
                    None => k,
                };
                if !keys.is_some_and(|ks| ks.contains_key(k)) {
                    return Err(["invalid key in comma-separated list property: ", k].concat());
                }
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                let Some(d) = default_key else {
                    return Err(
                        "value without key, but schema does not define a default key".into(),
                    );
                };
                if used_default || out.get(d).is_some_and(|v| perl_true(v)) {
                    return Err(["duplicate key in comma-separated list property: ", d].concat());
                }
                used_default = true;
                out.insert(d.to_string(), part.to_string());
            }
            Some(_) => return Err("missing key in comma-separated list property".into()),
        }
    }
    Ok(out)
}

fn check_property_string(key: &str, format: &str, fdef: &Value, value: &str) -> Result<(), String> {
    let parsed =
        parse_property_string(fdef, value).map_err(|e| ["invalid format - ", &e].concat())?;
    let keys = fdef.get("keys").and_then(Value::as_object);
    let mut errors: Vec<(String, String)> = Vec::new();
    for (k, v) in &parsed {
        let Some(kd) = keys.and_then(|ks| ks.get(k)) else {
            continue;
        };
        if let Err(r) = check_value(k, v, kd) {
            errors.push((k.clone(), r));
        }
        if let Some(req) = kd.get("requires").and_then(Value::as_str) {
            if !parsed.contains_key(req) {
                errors.push((
                    req.to_string(),
                    ["missing property required by '", key, ".", k, "'"].concat(),
                ));
            }
        }
    }
    if let Some(ks) = keys {
        for (k, kd) in ks {
            let optional = kd.get("optional").and_then(Value::as_bool).unwrap_or(false);
            if kd.get("alias").is_none() && !optional && !parsed.contains_key(k) {
                errors.push((
                    k.clone(),
                    "property is missing and it is not optional".into(),
                ));
            }
        }
    }
    if errors.is_empty() {
        // The format's own validator runs on the parsed value.
        return match format {
            "pve-vm-cpu-conf" => {
                check_vm_cpu(&parsed).map_err(|e| ["invalid format - ", &e].concat())
            }
            _ => Ok(()),
        };
    }
    let mut s = String::from("invalid format - format error");
    for (k, r) in errors {
        s.push('\n');
        s.push_str(key);
        s.push('.');
        s.push_str(&k);
        s.push_str(": ");
        s.push_str(&r);
    }
    Err(s)
}

fn extras_list(name: &str) -> Vec<&'static str> {
    schema()
        .get("extras")
        .and_then(|e| e.get(name))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `validate_vm_cpu_conf` (qemu-server CPUConfig.pm): a cputype is needed;
/// a built-in one must be on the list (exact case); VM-specific flags come
/// from a fixed set; `reported-model` belongs to custom models only. A
/// `custom-` name is checked against the host by [`custom_cpu_model`].
fn check_vm_cpu(cpu: &BTreeMap<String, String>) -> Result<(), String> {
    let Some(cputype) = cpu.get("cputype").filter(|t| perl_true(t)) else {
        return Err("CPU is missing cputype".into());
    };
    if !cputype.starts_with("custom-")
        && !extras_list("cpu_models_builtin").contains(&cputype.as_str())
    {
        return Err([
            "Built-in cputype '",
            cputype,
            "' is not defined (missing 'custom-' prefix?)",
        ]
        .concat());
    }
    if let Some(flags) = cpu.get("flags").filter(|f| perl_true(f)) {
        let allowed = extras_list("cpu_flags_vm_specific");
        let ok = flags.split(';').all(|f| {
            f.strip_prefix(['+', '-'])
                .is_some_and(|name| allowed.contains(&name))
        });
        if !ok {
            return Err([
                "VM-specific CPU flags must be a subset of: ",
                &allowed.join(", "),
            ]
            .concat());
        }
    }
    if cpu.contains_key("reported-model") {
        return Err("Property 'reported-model' not allowed in VM-specific CPU config.".into());
    }
    Ok(())
}

/// The `custom-NAME` model a `--cpu` value names, if any: it must exist in
/// the host's `/etc/pve/virtual-guest/cpu-models.conf`.
pub fn custom_cpu_model(value: &str) -> Option<String> {
    let fdef = formats()?.get("pve-vm-cpu-conf")?;
    let parsed = parse_property_string(fdef, value).ok()?;
    parsed
        .get("cputype")?
        .strip_prefix("custom-")
        .map(str::to_string)
}

fn re(p: &str) -> Regex {
    Regex::new(p).unwrap_or_else(|_| Regex::new("^$").unwrap_or_else(|_| unreachable!()))
}

fn regexes() -> &'static BTreeMap<&'static str, Regex> {
    static CELL: OnceLock<BTreeMap<&'static str, Regex>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut m = BTreeMap::new();
        m.insert("vmid", re(r"^[1-9][0-9]{2,8}$"));
        m.insert("integer", re(r"^[+-]?\d+$"));
        m.insert(
            "number",
            re(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$"),
        );
        m.insert("dns", re(r"^([A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?$"));
        m.insert("storage", re(r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$"));
        m.insert("volid", re(r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$"));
        m.insert("bridge", re(r"^[-_.\w\d]+$"));
        m.insert("tag", re(r"^(?i)[a-z0-9_][a-z0-9_\-+.]*$"));
        m.insert("urlenc", re(r"^[-%a-zA-Z0-9_.!~*'()]*$"));
        m.insert("configid", re(r"^(?i:[a-z][a-z0-9_\-]+)$"));
        m.insert("disksize", re(r"^\d+(\.\d+)?([KMGT](iB)?)?$"));
        m.insert("node", re(r"^(?i:[a-z0-9]([a-z0-9\-]*[a-z0-9])?)$"));
        m.insert("poolid", re(r"^[A-Za-z0-9.\-_]+(/[A-Za-z0-9.\-_]+){0,2}$"));
        m.insert("mac", re(r"^(?i:[a-f0-9][02468ace](:[a-f0-9]{2}){5})$"));
        m.insert("physbits", re(r"^(host|\d{1,2})$"));
        m
    })
}

fn rx(name: &str, v: &str) -> bool {
    regexes().get(name).is_some_and(|r| r.is_match(v))
}

/// `ADDR/PREFIX` with 8 <= PREFIX <= max (`/0` to `/7` are rejected).
fn cidr<A: std::str::FromStr>(v: &str, max: u32) -> bool {
    v.split_once('/').is_some_and(|(a, p)| {
        a.parse::<A>().is_ok()
            && !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|p| (8..=max).contains(&p))
    })
}

fn cidr4(v: &str) -> bool {
    cidr::<std::net::Ipv4Addr>(v, 32)
}

fn cidr6(v: &str) -> bool {
    cidr::<std::net::Ipv6Addr>(v, 128)
}

fn is_ip(v: &str) -> bool {
    // Rust's parsers, like Proxmox's regexes, refuse leading zeros in IPv4.
    v.parse::<std::net::IpAddr>().is_ok()
}

/// `pve_parse_startup_order`: `order=N` (or bare `N`), `up=N`, `down=N`.
fn startup_order(v: &str) -> bool {
    if v.is_empty() || v == "0" {
        return false;
    }
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    v.split(',').filter(|p| !p.trim().is_empty()).all(|p| {
        num(p.strip_prefix("order=").unwrap_or(p))
            || p.strip_prefix("up=").is_some_and(num)
            || p.strip_prefix("down=").is_some_and(num)
    })
}

/// `PVE::CpuSet::parse_cpuset`: comma-separated `N` or `N-M` (M >= N), each
/// with optional blanks around it. Perl's `split` drops trailing empty
/// items, so `1,2,` and the empty set are accepted; `1,,2` is not.
fn cpuset(v: &str) -> bool {
    let mut parts: Vec<&str> = v.split(',').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<f64>().ok())
            .flatten()
    };
    parts.iter().all(|part| {
        let p = part.trim_matches([' ', '\t']);
        match p.split_once('-') {
            Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if b >= a),
            None => num(p).is_some(),
        }
    })
}

/// The named-format validators of `PVE::JSONSchema` and qemu-server, as
/// CONTRACT §18 describes them. Unknown validators accept.
fn validator(sub: &str, v: &str) -> Result<(), String> {
    let name = sub.rsplit("::").next().unwrap_or(sub);
    let fail = |m: &str| Err(m.to_string());
    let quoted = |pre: &str, post: &str| Err([pre, v, post].concat());
    match name {
        "pve_verify_vmid" if !rx("vmid", v) => fail("value does not look like a valid VM ID"),
        "pve_verify_dns_name" if !rx("dns", v) => fail("value does not look like a valid DNS name"),
        "pve_verify_node_name" if !rx("node", v) => {
            fail("value does not look like a valid node name")
        }
        "pve_verify_mac_addr" if !rx("mac", v) => {
            fail("value does not look like a valid unicast MAC address")
        }
        "pve_verify_ipv4" if v.parse::<std::net::Ipv4Addr>().is_err() => {
            fail("value does not look like a valid IPv4 address")
        }
        "pve_verify_ipv6" if v.parse::<std::net::Ipv6Addr>().is_err() => {
            fail("value does not look like a valid IPv6 address")
        }
        "pve_verify_ip" if !is_ip(v) => fail("value does not look like a valid IP address"),
        // The DNS check returns the value, and `0` is false in Perl.
        "pve_verify_address" if !(is_ip(v) || rx("dns", v)) || v == "0" => {
            quoted("value does not look like a valid address: ", "")
        }
        "pve_verify_cidr" if !(cidr4(v) || cidr6(v)) => {
            fail("value does not look like a valid CIDR network")
        }
        "pve_verify_cidrv4" if !cidr4(v) => {
            fail("value does not look like a valid IPv4 CIDR network")
        }
        "pve_verify_cidrv6" if !cidr6(v) => {
            fail("value does not look like a valid IPv6 CIDR network")
        }
        "pve_verify_ipv4_config" if !(matches!(v, "dhcp" | "manual") || cidr4(v)) => {
            fail("value does not look like a valid ipv4 network configuration")
        }
        "pve_verify_ipv6_config" if !(matches!(v, "auto" | "dhcp" | "manual") || cidr6(v)) => {
            fail("value does not look like a valid ipv6 network configuration")
        }
        "pve_verify_tag" if !rx("tag", v) => fail("invalid characters in tag"),
        "pve_verify_urlencoded" if !rx("urlenc", v) => quoted("invalid urlencoded string: ", ""),
        "parse_storage_id" if v.chars().count() < 2 => {
            quoted("storage ID '", "' cannot be shorter than 2 characters")
        }
        "parse_storage_id" if !rx("storage", v) => {
            quoted("storage ID '", "' contains illegal characters")
        }
        "parse_bridge_id" if !rx("bridge", v) => quoted("invalid bridge ID '", "'"),
        "pve_verify_configid" if !rx("configid", v) => quoted("invalid configuration ID '", "'"),
        "pve_verify_disk_size" if !rx("disksize", v) => {
            quoted("value does not look like a valid disk size: ", "")
        }
        "pve_verify_startup_order" if !startup_order(v) => fail("unable to parse startup options"),
        "verify_poolname" if v.split('/').count() > 3 => {
            quoted("pool name '", "' nested too deeply (max levels = 3)")
        }
        "verify_poolname" if !rx("poolid", v) => {
            quoted("pool name '", "' contains invalid characters")
        }
        "verify_bootdisk" if !extras_list("valid_drive_names").contains(&v) => {
            quoted("invalid boot disk '", "'")
        }
        "verify_bootdev" => {
            let drive = extras_list("valid_drive_names").contains(&v)
                && !v.starts_with("efidisk")
                && !v.starts_with("tpmstate");
            let other = ["net", "usb", "hostpci"].iter().any(|base| {
                v.strip_prefix(base)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }) && config_keys().contains(&v);
            if drive || other {
                Ok(())
            } else {
                quoted("invalid boot device '", "'")
            }
        }
        "pve_verify_cpuset" if !cpuset(v) => fail("unable to parse cpuset option"),
        "pve_verify_hotplug_features" if v != "0" && v != "1" => {
            for f in split_list(v) {
                if !matches!(
                    f,
                    "network" | "disk" | "cpu" | "memory" | "usb" | "cloudinit"
                ) {
                    return Err(["invalid hotplug feature '", f, "'"].concat());
                }
            }
            Ok(())
        }
        "parse_phys_bits"
            if !rx("physbits", v)
                || (v != "host" && v.parse::<u32>().is_ok_and(|n| !(8..=64).contains(&n))) =>
        {
            fail("value must be an integer between 8 and 64 or 'host'")
        }
        "verify_volume_id_or_qm_path"
            if !(v == "none" || v == "cdrom" || v.starts_with('/') || rx("volid", v)) =>
        {
            quoted("unable to parse volume ID '", "'")
        }
        "verify_volume_id_or_absolute_path" if !(v.starts_with('/') || rx("volid", v)) => {
            quoted("unable to parse volume ID '", "'")
        }
        "pve_verify_volume_id" | "parse_volume_id" if !rx("volid", v) => {
            quoted("unable to parse volume ID '", "'")
        }
        _ => Ok(()),
    }
}

/// The named format of a `qm` drive/net/... key (`scsi0` -> `qm-scsi`).
pub fn format_of(command: &str, key: &str) -> Option<&'static Value> {
    let f = commands()
        .get(command)?
        .get("parameters")?
        .get(key)?
        .get("format")?
        .as_str()?;
    formats()?.get(f)
}

/// `STORAGE:SIZE_GiB`, the new-disk syntax (`extras.new_disk_re`), compiled once.
pub fn new_disk_re() -> Option<&'static Regex> {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    CELL.get_or_init(|| {
        let pattern = schema().get("extras")?.get("new_disk_re")?.as_str()?;
        Regex::new(pattern).ok()
    })
    .as_ref()
}

/// All config keys a VM may have (for `--delete`).
pub fn config_keys() -> Vec<&'static str> {
    schema()
        .get("extras")
        .and_then(|e| e.get("config_keys"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// JSONSchema's message for a value outside an enumeration: `value 'x'
/// does not have a value in the enumeration 'a, b'`.
pub fn not_in_enum(value: &str, allowed: &[&str]) -> String {
    [
        "value '",
        value,
        "' does not have a value in the enumeration '",
        &allowed.join(", "),
        "'",
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn resolves_prefixes_and_aliases() {
        assert_eq!(
            resolve_command(&argv("cr 100")).map(|r| r.0),
            Ok("create".into())
        );
        assert_eq!(
            resolve_command(&argv("importdisk 1")).map(|r| r.0),
            Ok("disk import".into())
        );
        assert_eq!(
            resolve_command(&argv("disk resi 1")).map(|r| r.0),
            Ok("disk resize".into())
        );
        assert!(resolve_command(&argv("st 100")).is_err());
        assert!(
            resolve_command(&argv("disk res 1")).is_err(),
            "rescan or resize"
        );
    }

    #[test]
    fn boolean_swallows_next_word() {
        let e = parse_qm(&argv("create --start 100")).expect_err("vmid was eaten");
        assert!(
            e.stderr.contains("unable to parse boolean option"),
            "{}",
            e.stderr
        );
        let ok = parse_qm(&argv("create 100 --start")).expect("bare boolean");
        assert_eq!(ok.params.get("start").map(String::as_str), Some("1"));
    }
}
