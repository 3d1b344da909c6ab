//! Proxmox property strings: `key=value,key=value`, with an optional bare
//! first item that fills the format's default key.
//!
//! This is the one place in pvefleet that splits on `,`. Values that
//! themselves contain `,` (none of the keys pvefleet writes do) cannot be
//! represented, exactly as in Proxmox.

/// An ordered property string.
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

    /// Parses a property string leniently, as observed on a host.
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
}
