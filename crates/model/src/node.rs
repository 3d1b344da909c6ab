//! The name of a Proxmox cluster node.

/// A Proxmox node name (`pve-node`): one DNS label,
/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` (CONTRACT §18). Kept as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

/// Why a value is not a node name.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a valid node name (letters, digits and inner '-', e.g. pve1)")]
pub struct NodeNameError(pub String);

impl NodeName {
    /// Validates `text` as a node name.
    pub fn parse(text: &str) -> Result<Self, NodeNameError> {
        let bytes = text.as_bytes();
        let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        let inner_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
        if edge_ok(bytes.first()) && edge_ok(bytes.last()) && inner_ok {
            Ok(Self(text.to_string()))
        } else {
            Err(NodeNameError(text.to_string()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(NodeName, NodeNameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names() {
        for name in ["pve", "node1", "srv-proxmox-02", "pve-node1", "a"] {
            assert_eq!(
                NodeName::parse(name).map(|n| n.to_string()),
                Ok(name.into())
            );
        }
    }

    #[test]
    fn rejects_non_labels() {
        for name in ["", "-pve", "pve-", "pve.example.com", "pve_1", "pve 1"] {
            assert!(NodeName::parse(name).is_err(), "{name}");
        }
    }

    #[test]
    fn serde_is_a_string() {
        let n: NodeName = "pve1".parse().expect("valid");
        assert_eq!(serde_json::to_string(&n).ok().as_deref(), Some("\"pve1\""));
        assert!(serde_json::from_str::<NodeName>("\"-x\"").is_err());
    }
}
