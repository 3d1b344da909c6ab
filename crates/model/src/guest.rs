//! The kind of a Proxmox guest, as `/cluster/resources` reports it.

/// A QEMU virtual machine or an LXC container (`type` in
/// `/cluster/resources`, the path segment in `/nodes/N/qemu/V`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// `qemu`: a virtual machine, managed with `qm`.
    Qemu,
    /// `lxc`: a container, managed with `pct`.
    Lxc,
}

/// Why a value is not a guest kind.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a guest type (expected qemu or lxc)")]
pub struct GuestKindError(pub String);

impl GuestKind {
    /// Reads a pvesh `type` leniently: surrounding space and case are
    /// ignored. Other resource types (`node`, `storage`, `sdn`) are errors.
    pub fn parse(text: &str) -> Result<Self, GuestKindError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "qemu" => Ok(Self::Qemu),
            "lxc" => Ok(Self::Lxc),
            _ => Err(GuestKindError(text.to_string())),
        }
    }

    /// The spelling pvesh uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qemu => "qemu",
            Self::Lxc => "lxc",
        }
    }
}

impl std::str::FromStr for GuestKind {
    type Err = GuestKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::fmt::Display for GuestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pvesh_types() {
        assert_eq!(GuestKind::parse("qemu"), Ok(GuestKind::Qemu));
        assert_eq!(GuestKind::parse(" LXC "), Ok(GuestKind::Lxc));
        assert!(GuestKind::parse("node").is_err());
        assert_eq!(GuestKind::Lxc.to_string(), "lxc");
        assert_eq!(
            serde_json::to_string(&GuestKind::Qemu).ok().as_deref(),
            Some("\"qemu\"")
        );
    }
}
