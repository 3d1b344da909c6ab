//! The id of a Proxmox storage.

/// A Proxmox storage id (`pve-storage-id`): at least two characters,
/// `[a-z][a-z0-9\-_.]*[a-z0-9]`, any case (CONTRACT §18). Kept as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageId(String);

/// Why a value is not a storage id; the messages are Proxmox's.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum StorageIdError {
    /// Fewer than two characters.
    #[error("storage ID '{0}' cannot be shorter than 2 characters")]
    TooShort(String),
    /// A character outside `[a-z0-9\-_.]` or a bad first or last one.
    #[error("storage ID '{0}' contains illegal characters")]
    Illegal(String),
}

impl StorageId {
    /// Validates `text` as a storage id.
    pub fn parse(text: &str) -> Result<Self, StorageIdError> {
        let bytes = text.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return Err(StorageIdError::TooShort(text.to_string()));
        };
        if bytes.len() < 2 {
            return Err(StorageIdError::TooShort(text.to_string()));
        }
        let inner_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if first.is_ascii_alphabetic() && last.is_ascii_alphanumeric() && inner_ok {
            Ok(Self(text.to_string()))
        } else {
            Err(StorageIdError::Illegal(text.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype!(StorageId, StorageIdError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ids() {
        for id in [
            "local",
            "local-lvm",
            "local-zfs",
            "cloud-init",
            "myshared",
            "nfs.a_b",
        ] {
            assert_eq!(StorageId::parse(id).map(|s| s.to_string()), Ok(id.into()));
        }
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(
            StorageId::parse("a"),
            Err(StorageIdError::TooShort("a".into()))
        );
        assert_eq!(
            StorageId::parse(""),
            Err(StorageIdError::TooShort("".into()))
        );
        for id in ["1local", "local-", "lo:cal", "lo cal", "-x"] {
            assert_eq!(
                StorageId::parse(id),
                Err(StorageIdError::Illegal(id.into())),
                "{id}"
            );
        }
    }
}
