//! The Proxmox VM id.

use std::fmt;
use std::str::FromStr;

/// A Proxmox VM id: an integer from 100 to 999 999 999 (`pve-vmid`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct VmId(u32);

impl TryFrom<u32> for VmId {
    type Error = VmIdError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        Self::new(i64::from(v))
    }
}

impl From<VmId> for u32 {
    fn from(v: VmId) -> u32 {
        v.0
    }
}

/// The smallest VM id Proxmox accepts.
pub const MIN: u32 = 100;
/// The largest VM id Proxmox accepts.
pub const MAX: u32 = 999_999_999;

/// Why a value is not a VM id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("vmid {0} is out of range (Proxmox accepts 100 to 999999999)")]
pub struct VmIdError(pub i64);

impl VmId {
    /// Validates `value` as a VM id.
    pub fn new(value: i64) -> Result<Self, VmIdError> {
        if (i64::from(MIN)..=i64::from(MAX)).contains(&value) {
            Ok(Self(value as u32))
        } else {
            Err(VmIdError(value))
        }
    }

    /// The id as an integer.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for VmId {
    type Err = VmIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: i64 = s.trim().parse().map_err(|_| VmIdError(-1))?;
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(VmId::new(99).is_err());
        assert_eq!(VmId::new(100).map(VmId::get), Ok(100));
        assert_eq!(VmId::new(999_999_999).map(VmId::get), Ok(999_999_999));
        assert!(VmId::new(1_000_000_000).is_err());
        assert_eq!("101".parse::<VmId>().map(VmId::get), Ok(101));
    }
}
