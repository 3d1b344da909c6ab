//! The `boot` property string: the boot order.
//!
//! `order=<dev>[;<dev>...]` is the current form; the default key `legacy`
//! holds the deprecated `[acdn]{1,4}` letters, written bare (`boot: cdn`)
//! (CONTRACT §3.5). Proxmox stores the value as given, so [`Boot`] prints
//! the items in the order it read them.

use std::collections::BTreeMap;

use crate::propstring::{checked_items, extend_other, Layout, PropertyError};

/// One `boot` value. Equality is structural: item order does not matter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boot {
    /// `order`: devices such as `scsi0`, `ide2`, `net0`, tried in turn.
    pub order: Option<Vec<String>>,
    /// `legacy` (default key): the deprecated letters, e.g. `cdn` or `c`.
    pub legacy: Option<String>,
    /// Items the schema does not have, kept as read.
    pub other: BTreeMap<String, String>,
    layout: Layout,
}

impl Boot {
    /// `order=` the given devices.
    pub fn with_order<S: Into<String>>(devices: impl IntoIterator<Item = S>) -> Self {
        Self {
            order: Some(devices.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Parses a `boot` value, checked as Proxmox checks it.
    pub fn parse(text: &str) -> Result<Self, PropertyError> {
        let mut boot = Self::default();
        for (key, value, bare) in checked_items(text, Some("legacy"))? {
            boot.layout.push(key, bare);
            match key {
                "order" => {
                    let devices: Vec<String> = value.split(';').map(str::to_string).collect();
                    if devices.iter().any(|d| !is_device(d)) {
                        return Err(PropertyError::invalid(key, value, "device[;device...]"));
                    }
                    boot.order = Some(devices);
                }
                "legacy" => {
                    let ok = value.len() <= 4 && value.bytes().all(|b| b"acdn".contains(&b));
                    if !ok {
                        return Err(PropertyError::invalid(key, value, "[acdn]{1,4}"));
                    }
                    boot.legacy = Some(value.to_string());
                }
                _ => {
                    boot.other.insert(key.to_string(), value.to_string());
                }
            }
        }
        Ok(boot)
    }

    /// The first device of `order`, if any.
    pub fn first_device(&self) -> Option<&str> {
        self.order.as_ref()?.first().map(String::as_str)
    }
}

/// A boot device name: letters then digits (`scsi0`, `net0`, `hostpci1`).
fn is_device(name: &str) -> bool {
    let digits = name.trim_start_matches(|c: char| c.is_ascii_lowercase());
    digits.len() < name.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl std::fmt::Display for Boot {
    /// The items in the order they were read; a new `legacy` goes first and
    /// bare, other new items sorted among the rest.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut items = Vec::new();
        if let Some(legacy) = &self.legacy {
            items.push(("legacy".to_string(), legacy.clone()));
        }
        if let Some(order) = &self.order {
            items.push(("order".to_string(), order.join(";")));
        }
        extend_other(&mut items, &self.other);
        f.write_str(&self.layout.render(Some("legacy"), items))
    }
}

impl std::str::FromStr for Boot {
    type Err = PropertyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(text: &str) -> Boot {
        Boot::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn real_values_round_trip() {
        // `cdn` and `c` from fixtures/pvesh/qemu-config--*.json; the rest as
        // qm stores what it is given.
        for text in [
            "cdn",
            "c",
            "order=scsi0;ide2;net0",
            "order=scsi0",
            "legacy=cdn,order=scsi0",
            "order=scsi0,legacy=cdn",
        ] {
            assert_eq!(boot(text).to_string(), text);
        }
    }

    #[test]
    fn typed_fields() {
        let b = boot("order=scsi0;ide2;net0");
        assert_eq!(b.first_device(), Some("scsi0"));
        assert_eq!(b.legacy, None);
        assert_eq!(boot("cdn").legacy.as_deref(), Some("cdn"));
        assert_eq!(
            boot("order=scsi0,legacy=cdn"),
            boot("legacy=cdn,order=scsi0")
        );
        assert_eq!(
            Boot::with_order(["scsi0", "ide2"]).to_string(),
            "order=scsi0;ide2"
        );
        let mut legacy = boot("order=scsi0");
        legacy.legacy = Some("c".into());
        assert_eq!(legacy.to_string(), "c,order=scsi0");
    }

    #[test]
    fn rejects_what_proxmox_rejects() {
        for text in [
            "order=",
            "order=scsi0;;ide2",
            "order=scsi0,order=ide2",
            "cdnx",
            "x",
            "order=SCSI0",
        ] {
            assert!(Boot::parse(text).is_err(), "{text}");
        }
    }
}
