//! Custom cloud-init data: `user_data` (a mapping written as a
//! `#cloud-config` file, or a string written as given), `user_data_file`,
//! `user_data_mode` and `snippets_storage`.
//!
//! Decision on `user_data_mode: user`: Proxmox stops generating its own
//! user-data when `--cicustom user=…` is set, so `user`, `ssh_keys`,
//! `password` and the hostname would silently stop reaching the guest. They
//! are refused beside it rather than dropped; vendor mode (the default)
//! keeps them working, cloud-init merging the two.

use super::primitives::is_storage_id;
use super::{Cx, Fields};
use crate::error::{ErrorKind, Span};
use crate::keys;
use crate::limits::{self, shown};
use crate::raw::{Node, Value};
use pvefleet_model::cloudinit::{UserData, UserDataMode};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// The header every mapping's file starts with.
pub const CLOUD_CONFIG: &str = "#cloud-config";

/// The first lines cloud-init recognises as a user-data format
/// (cloud-init's `user_data.py` part types).
const HEADERS: &[&str] = &[
    "#cloud-config",
    "#!",
    "#include",
    "#cloud-boothook",
    "#part-handler",
    "#cloud-config-archive",
    "#cloud-config-jsonp",
    "## template: jinja",
    "Content-Type: multipart/",
];

/// Top-level keys of the user-data Proxmox generates (CONTRACT §3.3,
/// §14: hostname, user, password, keys, `package_upgrade`): cloud-init lets
/// user-data win over vendor-data, so in vendor mode `user_data` cannot
/// set them.
const GENERATED_BY_PROXMOX: &[&str] = &[
    "hostname",
    "fqdn",
    "manage_etc_hosts",
    "user",
    "users",
    "password",
    "chpasswd",
    "ssh_authorized_keys",
    "package_upgrade",
];

/// Keys that stop working beside `user_data_mode: user`.
const GENERATED: &[&str] = &["user", "ssh_keys", "ssh_keys_file", "password"];

/// Proxmox reads a snippet of at most 1 MiB.
pub const MAX_USER_DATA_BYTES: usize = 1 << 20;

/// A YAML value written back out as YAML (mapping order kept).
struct Yaml<'a>(&'a Node);

impl Serialize for Yaml<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0.value {
            Value::Map(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(&k.name, &Yaml(v))?;
                }
                m.end()
            }
            Value::Seq(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    q.serialize_element(&Yaml(i))?;
                }
                q.end()
            }
            Value::Str(t) => s.serialize_str(t),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Null | Value::Refused => s.serialize_unit(),
        }
    }
}

/// The `#cloud-config` file of a mapping.
pub fn cloud_config_text(node: &Node) -> Result<String, String> {
    let body = serde_saphyr::to_string(&Yaml(node)).map_err(|e| e.to_string())?;
    Ok(format!("{CLOUD_CONFIG}\n{body}"))
}

/// True when `text` starts with a header cloud-init recognises.
pub fn has_header(text: &str) -> bool {
    HEADERS.iter().any(|h| text.starts_with(h))
}

impl Cx<'_> {
    /// The VM's custom cloud-init data, if it has any; clears `ok` on error.
    pub(super) fn user_data(&mut self, f: &Fields<'_>, ok: &mut bool) -> Option<UserData> {
        let get = |k: &str| f.get(k).map(|(_, n)| *n);
        let mode = match get("user_data_mode") {
            Some(n) => self.user_data_mode(n),
            None => Some(UserDataMode::Vendor),
        };
        let storage = match get("snippets_storage") {
            Some(n) => self.snippets_storage(n),
            None => Some("local".to_string()),
        };
        let text = match (get("user_data"), get("user_data_file")) {
            (Some(_), Some(file)) => {
                self.err(
                    ErrorKind::Conflict,
                    file.span,
                    "both 'user_data' and 'user_data_file' are set",
                    "give the cloud-init data inline (user_data) or in a file (user_data_file), not both",
                );
                None
            }
            (Some(n), None) => self.user_data_inline(n),
            (None, Some(n)) => self.user_data_file(n),
            (None, None) => return None,
        };
        let (Some(text), Some(mode), Some(storage)) = (text, mode, storage) else {
            *ok = false;
            return None;
        };
        if mode == UserDataMode::Vendor {
            if let Some(n) = get("user_data") {
                *ok &= self.vendor_keys_effective(n, &text);
            }
        }
        if mode == UserDataMode::User {
            for key in GENERATED {
                if let Some(n) = get(key) {
                    self.err(
                        ErrorKind::Conflict,
                        n.span,
                        format!("'{key}' has no effect with user_data_mode: user"),
                        "with user_data_mode: user Proxmox no longer generates the user-data that carries user, ssh_keys and password; use user_data_mode: vendor (the default), or put them into user_data",
                    );
                    *ok = false;
                }
            }
        }
        Some(UserData {
            text,
            mode,
            storage,
        })
    }

    /// In vendor mode, refuses the top-level keys Proxmox's own user-data
    /// sets (they would silently lose), at their place in a mapping or at
    /// `user_data` for text. True when there are none.
    fn vendor_keys_effective(&mut self, n: &Node, text: &str) -> bool {
        let found: Vec<(String, crate::error::Span)> = match &n.value {
            Value::Map(entries) => entries
                .iter()
                .filter(|(k, _)| GENERATED_BY_PROXMOX.contains(&k.name.as_str()))
                .map(|(k, _)| (k.name.clone(), k.span))
                .collect(),
            _ if text.starts_with(CLOUD_CONFIG) => text
                .lines()
                .filter_map(|l| l.split_once(':').map(|(k, _)| k))
                .filter(|k| GENERATED_BY_PROXMOX.contains(k))
                .map(|k| (k.to_string(), n.span))
                .collect(),
            _ => Vec::new(),
        };
        for (key, span) in &found {
            self.err(
                ErrorKind::Conflict,
                *span,
                format!("user_data: '{key}' has no effect as vendor data: the user-data Proxmox generates sets it, and cloud-init lets user-data win"),
                "set it with pvefleet's own keys (name, user, ssh_keys, password), or use user_data_mode: user, where user_data replaces Proxmox's user-data",
            );
        }
        found.is_empty()
    }

    /// `user_data`: a mapping (a `#cloud-config` file) or the file's text.
    fn user_data_inline(&mut self, n: &Node) -> Option<String> {
        let text = match &n.value {
            Value::Map(_) if !self.scalars_kept(n) => return None,
            Value::Map(_) => match cloud_config_text(n) {
                Ok(t) => t,
                Err(why) => {
                    self.err(
                        ErrorKind::Format,
                        n.span,
                        format!("user_data: cannot be written as YAML: {why}"),
                        "write user_data as a mapping of cloud-config keys",
                    );
                    return None;
                }
            },
            Value::Str(s) => s.clone(),
            _ => {
                self.type_err(
                    "user_data",
                    n,
                    "a mapping of cloud-config keys or the text of a cloud-init file",
                );
                return None;
            }
        };
        self.user_data_text("user_data", &text, n.span)
            .then_some(text)
    }

    /// True when every scalar of a `user_data` mapping reaches cloud-init
    /// with the meaning it has as written. Numbers this file's YAML reads
    /// as floats (`0644`, `010`, `1.5`, integers past 2^63) would be written
    /// back as `644.0`, and a plain `yes`/`no`/`on`/`off` is a boolean to
    /// cloud-init (YAML 1.1) but a string here: each is refused at its
    /// place (the errors are recorded).
    fn scalars_kept(&mut self, n: &Node) -> bool {
        match &n.value {
            // Every scalar is looked at, so that each one is reported.
            Value::Map(entries) => {
                let mut ok = true;
                for (_, v) in entries {
                    ok &= self.scalars_kept(v);
                }
                ok
            }
            Value::Seq(items) => {
                let mut ok = true;
                for v in items {
                    ok &= self.scalars_kept(v);
                }
                ok
            }
            Value::Float(_) => {
                let written = self.written(n);
                self.err(
                    ErrorKind::Format,
                    n.span,
                    format!("user_data: {written} would reach cloud-init as a different number"),
                    "quote it ('0644' for a file mode, which cloud-init takes as a string), or give user_data as text (user_data: |)",
                );
                false
            }
            Value::Str(_) => {
                let written = self.written(n);
                let yaml11_bool = ["yes", "no", "on", "off", "y", "n"]
                    .contains(&written.to_ascii_lowercase().as_str());
                if yaml11_bool {
                    self.err(
                        ErrorKind::Format,
                        n.span,
                        format!(
                            "user_data: {written} is a boolean to cloud-init but a string here"
                        ),
                        "write true or false, or quote it if you mean the text",
                    );
                }
                !yaml11_bool
            }
            _ => true,
        }
    }

    /// The value at `n` as the file writes it (quotes included).
    fn written(&self, n: &Node) -> String {
        self.text
            .get(n.span.offset..n.span.offset + n.span.len)
            .unwrap_or_default()
            .to_string()
    }

    /// `user_data_file`: a file relative to the configuration file.
    fn user_data_file(&mut self, n: &Node) -> Option<String> {
        let path = self.string("user_data_file", n)?;
        let text = (self.load)(&path).and_then(|t| {
            if t.len() > MAX_USER_DATA_BYTES {
                Err(limits::too_large(
                    MAX_USER_DATA_BYTES,
                    "a cloud-init snippet",
                ))
            } else {
                Ok(t)
            }
        });
        match text {
            Ok(t) => self
                .user_data_text("user_data_file", &t, n.span)
                .then_some(t),
            Err(why) => {
                // The loader bounds every file as it bounds key files (also
                // 1 MiB) and says so; name the right kind of file.
                let why = why.replace("an ssh_keys_file", "a user_data_file");
                self.err(
                    ErrorKind::File,
                    n.span,
                    format!("user_data_file: cannot read {}: {why}", shown(&path)),
                    "give a readable cloud-init file; relative paths start at the configuration file's folder",
                );
                None
            }
        }
    }

    /// Checks the file's text: a known header, a bounded size, no NUL.
    fn user_data_text(&mut self, key: &str, text: &str, span: Span) -> bool {
        if text.len() > MAX_USER_DATA_BYTES {
            self.err(
                ErrorKind::Range,
                span,
                format!(
                    "{key}: {} bytes, over the 1 MiB Proxmox reads of a snippet",
                    text.len()
                ),
                "keep the cloud-init data under 1 MiB (fetch large files from the guest instead)",
            );
            return false;
        }
        if text.contains('\0') {
            self.err(
                ErrorKind::Format,
                span,
                format!("{key}: contains a NUL byte"),
                "a cloud-init file is text; remove the \\0",
            );
            return false;
        }
        if !has_header(text) {
            let first = text.lines().next().unwrap_or("");
            self.err(
                ErrorKind::Format,
                span,
                format!(
                    "{key}: starts with {}, not a cloud-init header",
                    shown(first)
                ),
                "start the text with '#cloud-config' (or '#!' for a script), or write user_data as a mapping",
            );
            return false;
        }
        true
    }

    /// `user_data_mode`: `vendor` or `user`.
    fn user_data_mode(&mut self, n: &Node) -> Option<UserDataMode> {
        let s = self.string("user_data_mode", n)?;
        match s.as_str() {
            "vendor" => Some(UserDataMode::Vendor),
            "user" => Some(UserDataMode::User),
            _ => {
                let mut msg = format!("user_data_mode: {} is not a known mode", shown(&s));
                if let Some(h) = keys::suggest(&s, &["vendor", "user"]) {
                    msg.push_str(&format!(" (did you mean '{h}'?)"));
                }
                self.err(
                    ErrorKind::UnknownValue,
                    n.span,
                    msg,
                    "use vendor (merged with what Proxmox generates) or user (replaces it)",
                );
                None
            }
        }
    }

    /// `snippets_storage`: a storage id.
    fn snippets_storage(&mut self, n: &Node) -> Option<String> {
        self.checked(
            "snippets_storage",
            n,
            is_storage_id,
            "is not a valid storage id",
            "use a storage id such as local (it needs the snippets content type)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, ConfigError, Desired};

    const HEAD: &str = "proxmox: {host: pve}\nvms:\n  - name: a\n    image: local:iso/x.img\n";

    fn ok(vm: &str) -> Desired {
        parse("t.yml", &format!("{HEAD}{vm}"), &|p| {
            Ok(format!("#cloud-config\n# from {p}\n"))
        })
        .unwrap_or_else(|r| panic!("{}", r.render(false)))
    }

    fn errs(vm: &str) -> Vec<ConfigError> {
        match parse("t.yml", &format!("{HEAD}{vm}"), &|_| Err("missing".into())) {
            Ok(_) => panic!("accepted {vm}"),
            Err(r) => r.errors,
        }
    }

    fn user_data(d: &Desired) -> &UserData {
        d.vms[0].user_data.as_ref().expect("user data")
    }

    #[test]
    fn a_mapping_becomes_a_cloud_config_file() {
        let d = ok("    user_data:\n      packages: [qemu-guest-agent]\n      write_files:\n        - {path: /etc/x, content: 'yes'}\n      runcmd: ['123', 'on', 15]\n");
        let u = user_data(&d);
        assert_eq!(u.mode, UserDataMode::Vendor);
        assert_eq!(u.storage, "local");
        assert!(u.text.starts_with("#cloud-config\npackages:"), "{}", u.text);
        // Strings that YAML 1.1 would read as booleans or numbers stay strings.
        let back: serde_json::Value = serde_saphyr::from_str(&u.text).expect("yaml");
        assert_eq!(back["write_files"][0]["content"], "yes");
        assert_eq!(back["runcmd"][0], "123");
        assert_eq!(back["runcmd"][1], "on");
        assert_eq!(back["runcmd"][2], 15);
        assert!(
            u.text.contains("'yes'") || u.text.contains("\"yes\""),
            "{}",
            u.text
        );
    }

    #[test]
    fn scalars_that_would_change_meaning_are_refused_each_at_its_place() {
        let e = errs("    user_data:\n      write_files: [{path: /a, permissions: 0644}]\n      runcmd: [on, 'off', 1.5]\n");
        let at: Vec<(u32, u32)> = e
            .iter()
            .map(|x| x.span.map_or((0, 0), |s| (s.line, s.col)))
            .collect();
        assert_eq!(at, [(6, 45), (7, 16), (7, 27)], "{e:#?}");
    }

    #[test]
    fn text_and_file_forms() {
        let d = ok("    user_data: \"#!/bin/sh\\necho hi\\n\"\n    user_data_mode: user\n    snippets_storage: nas\n");
        let u = user_data(&d);
        assert_eq!(u.text, "#!/bin/sh\necho hi\n");
        assert_eq!((u.mode, u.storage.as_str()), (UserDataMode::User, "nas"));
        let d = ok("    user_data_file: ci.yaml\n");
        assert_eq!(user_data(&d).text, "#cloud-config\n# from ci.yaml\n");
        assert!(ok("    memory: 512\n").vms[0].user_data.is_none());
    }

    #[test]
    fn values_inside_the_mapping_may_be_long_and_a_password_there_is_hidden() {
        let long = "x".repeat(10_000);
        let d = ok(&format!(
            "    user_data:\n      write_files: [{{path: /x, content: {long}}}]\n"
        ));
        assert!(user_data(&d).text.contains(&long));
        let text = format!(
            "{HEAD}    user_data:\n      chpasswd: {{users: [{{name: a, password: s3cret}}]}}\n    vlan: 0\n"
        );
        let r = parse("t.yml", &text, &|_| Err(String::new())).expect_err("vlan 0");
        assert!(!r.text.contains("s3cret"), "{}", r.text);
    }

    #[test]
    fn refusals() {
        let e = errs("    user_data: {a: 1}\n    user_data_file: x\n");
        assert_eq!(e[0].kind, ErrorKind::Conflict);
        let e = errs("    user_data: 'packages: [a]'\n");
        assert!(e[0].message.contains("not a cloud-init header"), "{e:?}");
        let e = errs("    user_data_file: nope.yaml\n");
        assert_eq!(e[0].kind, ErrorKind::File);
        let e = errs("    user_data: {a: 1}\n    user_data_mode: usr\n");
        assert!(e[0].message.contains("did you mean 'user'"), "{e:?}");
        let e = errs("    user_data: {a: 1}\n    user_data_mode: user\n    user: ubuntu\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, ErrorKind::Conflict);
        assert_eq!(e[0].span.map(|s| s.line), Some(7));
        assert!(e[0].help.as_deref().unwrap_or("").contains("vendor"));
        // Vendor data cannot set what Proxmox's user-data sets.
        let e = errs("    user_data: {users: [default], packages: [htop]}\n");
        assert!(
            e[0].message
                .contains("'users' has no effect as vendor data"),
            "{e:?}"
        );
        assert_eq!((e.len(), e[0].span.map(|s| s.col)), (1, Some(17)));
    }

    #[test]
    fn headers() {
        assert!(has_header("#cloud-config\npackages: [a]\n"));
        assert!(has_header("#!/bin/sh\necho hi\n"));
        assert!(!has_header("packages: [a]\n"));
        assert!(!has_header(""));
    }
}
