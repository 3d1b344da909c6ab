//! Proxmox property strings: `key=value,key=value`, with an optional bare
//! item that fills the format's default key.
//!
//! [`PropertyString`] is the low-level splitter. The typed codecs
//! ([`crate::net`], [`crate::drive`], [`crate::ipconfig`], [`crate::boot`])
//! read their items through it, and the rest of pvefleet uses those codecs, so
//! this module is the only place that splits a property string on `,`.
//! Values that themselves contain `,` cannot be represented, exactly as in
//! Proxmox.
//!
//! The crate-internal helpers below are what every codec shares: the checks
//! Proxmox applies to any property string (no key twice, no `key=` without a
//! value, CONTRACT §18), boolean and integer values, and the [`Layout`] that
//! lets a codec print its items back in the order it read them.

use std::collections::BTreeMap;

/// An ordered property string, split but not interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertyString {
    items: Vec<(Option<String>, String)>,
}

impl PropertyString {
    /// An empty property string.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a bare value (the format's default key, e.g. the NIC model).
    pub fn bare(mut self, value: impl Into<String>) -> Self {
        self.items.push((None, value.into()));
        self
    }

    /// Appends `key=value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.items.push((Some(key.into()), value.into()));
        self
    }

    /// Splits a property string leniently: empty items (a trailing `,`) are
    /// skipped and nothing is checked. The typed codecs add the checks.
    pub fn parse(text: &str) -> Self {
        let items = text
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('=') {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, part.to_string()),
            })
            .collect();
        Self { items }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(k, _)| k.as_deref() == Some(key))
            .map(|(_, v)| v.as_str())
    }

    /// The first item, with its key if it had one.
    pub fn first(&self) -> Option<(Option<&str>, &str)> {
        self.items.first().map(|(k, v)| (k.as_deref(), v.as_str()))
    }

    /// All items in order.
    pub fn items(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.items.iter().map(|(k, v)| (k.as_deref(), v.as_str()))
    }
}

impl std::fmt::Display for PropertyString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if let Some(k) = k {
                f.write_str(k)?;
                f.write_str("=")?;
            }
            f.write_str(v)?;
        }
        Ok(())
    }
}

/// Why a property string does not fit its format.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PropertyError {
    /// A key appears twice (also through an alias such as `volume`/`file`).
    #[error("duplicate key in comma-separated list property: {0}")]
    DuplicateKey(String),
    /// `key=` with nothing after the `=`.
    #[error("missing value for key '{0}'")]
    EmptyValue(String),
    /// A key the format requires is absent.
    #[error("missing required key '{0}'")]
    MissingKey(&'static str),
    /// A bare item where the format has no default key, or a second one.
    #[error("value '{0}' has no key")]
    UnexpectedBare(String),
    /// A known key with a value its format rejects.
    #[error("invalid value '{value}' for '{key}': expected {expected}")]
    InvalidValue {
        /// The key as written.
        key: String,
        /// The rejected value.
        value: String,
        /// What the format accepts.
        expected: &'static str,
    },
}

impl PropertyError {
    /// An [`PropertyError::InvalidValue`] for `key=value`.
    pub(crate) fn invalid(key: &str, value: &str, expected: &'static str) -> Self {
        Self::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            expected,
        }
    }
}

/// The items of `text` as `(key, value, bare)`, checked as Proxmox checks
/// every property string. A bare item stands for `default_key`; only one bare
/// item is allowed, and none when the format has no default key.
pub(crate) fn checked_items<'a>(
    text: &'a str,
    default_key: Option<&'static str>,
) -> Result<Vec<(&'a str, &'a str, bool)>, PropertyError> {
    let mut out: Vec<(&'a str, &'a str, bool)> = Vec::new();
    for part in text.split(',').filter(|part| !part.is_empty()) {
        let (key, value, bare) = match part.split_once('=') {
            Some((k, v)) => (k, v, false),
            None => match default_key {
                Some(k) => (k, part, true),
                None => return Err(PropertyError::UnexpectedBare(part.to_string())),
            },
        };
        if value.is_empty() {
            return Err(PropertyError::EmptyValue(key.to_string()));
        }
        if out.iter().any(|(k, _, _)| *k == key) {
            return Err(match bare {
                true => PropertyError::UnexpectedBare(part.to_string()),
                false => PropertyError::DuplicateKey(key.to_string()),
            });
        }
        out.push((key, value, bare));
    }
    Ok(out)
}

/// Stores `value` in `slot`, refusing a second value for the same key (which
/// only an alias can produce once [`checked_items`] has run).
pub(crate) fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), PropertyError> {
    if slot.is_some() {
        return Err(PropertyError::DuplicateKey(key.to_string()));
    }
    *slot = Some(value);
    Ok(())
}

/// A Proxmox boolean: `1 true yes on` or `0 false no off`, any case.
pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, PropertyError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(PropertyError::invalid(key, value, "a boolean (0 or 1)")),
    }
}

/// A boolean as Proxmox prints it.
pub(crate) fn print_bool(value: bool) -> String {
    if value { "1" } else { "0" }.to_string()
}

/// An integer within `range`.
pub(crate) fn parse_int<T>(
    key: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
    expected: &'static str,
) -> Result<T, PropertyError>
where
    T: std::str::FromStr + PartialOrd,
{
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PropertyError::invalid(key, value, expected));
    }
    match value.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(PropertyError::invalid(key, value, expected)),
    }
}

/// The order in which a codec read its items, so that printing keeps it.
///
/// Two values that differ only in item order are the same value to Proxmox
/// (CONTRACT §18), so a layout never takes part in equality: `eq` is always
/// true and the codecs can derive `PartialEq` over their fields.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layout(Vec<(String, bool)>);

impl PartialEq for Layout {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Layout {}

impl Layout {
    /// Records that `key` came next, bare (`true`) or as `key=value`.
    pub(crate) fn push(&mut self, key: &str, bare: bool) {
        self.0.push((key.to_string(), bare));
    }

    /// Joins `items` (canonical key, value) into a property string.
    ///
    /// Keys that were read keep their place and spelling. A key that was not
    /// read goes first and bare if it is `default_key`; otherwise it goes
    /// before the first later key that sorts after it. Proxmox prints the
    /// default key first and the others sorted, so a value read from a host
    /// gains new keys where Proxmox itself would put them.
    pub(crate) fn render(&self, default_key: Option<&str>, items: Vec<(String, String)>) -> String {
        let mut known: Vec<(usize, String, String, bool)> = Vec::new();
        let mut new: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in items {
            match self.0.iter().position(|(k, _)| *k == key) {
                Some(at) => {
                    let bare = self.0[at].1;
                    known.push((at, key, value, bare));
                }
                None => {
                    new.insert(key, value);
                }
            }
        }
        known.sort_by_key(|(at, ..)| *at);
        let mut out: Vec<(String, String, bool)> =
            known.into_iter().map(|(_, k, v, b)| (k, v, b)).collect();
        for (key, value) in new {
            if Some(key.as_str()) == default_key {
                out.insert(0, (key, value, true));
                continue;
            }
            let at = out
                .iter()
                .position(|(k, _, _)| Some(k.as_str()) != default_key && *k > key)
                .unwrap_or(out.len());
            out.insert(at, (key, value, false));
        }
        let parts: Vec<String> = out
            .into_iter()
            .map(|(k, v, bare)| if bare { v } else { [k, "=".into(), v].concat() })
            .collect();
        parts.join(",")
    }
}

/// Moves the items of `other` into `items`, for [`Layout::render`].
pub(crate) fn extend_other(items: &mut Vec<(String, String)>, other: &BTreeMap<String, String>) {
    items.extend(other.iter().map(|(k, v)| (k.clone(), v.clone())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        let p = PropertyString::new()
            .bare("virtio")
            .with("bridge", "vmbr0")
            .with("tag", "10");
        assert_eq!(p.to_string(), "virtio,bridge=vmbr0,tag=10");
        let q = PropertyString::parse("virtio=BC:24:11:00:00:01,bridge=vmbr1");
        assert_eq!(q.get("virtio"), Some("BC:24:11:00:00:01"));
        assert_eq!(q.get("bridge"), Some("vmbr1"));
        assert_eq!(q.first(), Some((Some("virtio"), "BC:24:11:00:00:01")));
    }

    #[test]
    fn checks_match_proxmox() {
        let items = checked_items("local:iso/x.iso,media=cdrom,", Some("file"));
        assert_eq!(
            items,
            Ok(vec![
                ("file", "local:iso/x.iso", true),
                ("media", "cdrom", false)
            ])
        );
        assert_eq!(
            checked_items("order=", None),
            Err(PropertyError::EmptyValue("order".into()))
        );
        assert_eq!(
            checked_items("a=1,a=2", None),
            Err(PropertyError::DuplicateKey("a".into()))
        );
        assert_eq!(
            checked_items("x,y", Some("file")),
            Err(PropertyError::UnexpectedBare("y".into()))
        );
        assert_eq!(
            checked_items("dhcp", None),
            Err(PropertyError::UnexpectedBare("dhcp".into()))
        );
    }

    #[test]
    fn values() {
        assert_eq!(parse_bool("ssd", "on"), Ok(true));
        assert_eq!(parse_bool("ssd", "0"), Ok(false));
        assert!(parse_bool("ssd", "2").is_err());
        assert_eq!(parse_int("tag", "10", 1u16..=4094, "1..4094"), Ok(10));
        assert!(parse_int("tag", "0", 1u16..=4094, "1..4094").is_err());
        assert!(parse_int("tag", "+5", 1u16..=4094, "1..4094").is_err());
    }

    #[test]
    fn layout_keeps_order_and_sorts_new_keys() {
        let mut layout = Layout::default();
        layout.push("file", true);
        layout.push("backup", false);
        layout.push("size", false);
        let items = vec![
            ("size".to_string(), "2G".to_string()),
            ("file".to_string(), "local:100/a.raw".to_string()),
            ("ssd".to_string(), "1".to_string()),
            ("cache".to_string(), "none".to_string()),
            ("backup".to_string(), "0".to_string()),
        ];
        assert_eq!(
            layout.render(Some("file"), items),
            "local:100/a.raw,backup=0,cache=none,size=2G,ssd=1"
        );
        let fresh = Layout::default().render(
            Some("file"),
            vec![
                ("size".into(), "1G".into()),
                ("file".into(), "local-lvm:1".into()),
            ],
        );
        assert_eq!(fresh, "local-lvm:1,size=1G");
    }
}
