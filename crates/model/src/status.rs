//! The power state of a guest, as pvesh reports it.
//!
//! `status` is `running` or `stopped`; a paused VM still reports `running`
//! there, and only `qmpstatus` (from `status/current`) says `paused`. So
//! [`VmStatus::from_pvesh`] takes both.

/// What a guest is doing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VmStatus {
    /// Running.
    Running,
    /// Stopped.
    Stopped,
    /// Running but paused (`qmpstatus: paused`).
    Paused,
    /// Any other value, kept as reported (lower-cased).
    Other(String),
}

impl VmStatus {
    /// Reads a `status` value leniently: surrounding space and case are
    /// ignored, and an unknown value becomes [`VmStatus::Other`].
    pub fn parse(status: &str) -> Self {
        let status = status.trim().to_ascii_lowercase();
        match status.as_str() {
            "running" => Self::Running,
            "stopped" => Self::Stopped,
            "paused" => Self::Paused,
            _ => Self::Other(status),
        }
    }

    /// Combines `status` with `qmpstatus` when pvesh gave one: a running VM
    /// whose `qmpstatus` is `paused` is [`VmStatus::Paused`]. Other
    /// `qmpstatus` values (`prelaunch`, `running`, `stopped`) leave `status`
    /// as it is.
    pub fn from_pvesh(status: &str, qmpstatus: Option<&str>) -> Self {
        let base = Self::parse(status);
        match (base, qmpstatus.map(Self::parse)) {
            (Self::Running, Some(Self::Paused)) => Self::Paused,
            (base, _) => base,
        }
    }

    /// The value as pvesh spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Paused => "paused",
            Self::Other(s) => s,
        }
    }

    /// True for [`VmStatus::Running`] and [`VmStatus::Paused`]: QEMU is up.
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

impl std::fmt::Display for VmStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for VmStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for VmStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_current_samples() {
        // (status, qmpstatus) from fixtures/pvesh/qemu-status-current--*.json.
        assert_eq!(
            VmStatus::from_pvesh("stopped", Some("prelaunch")),
            VmStatus::Stopped
        );
        assert_eq!(
            VmStatus::from_pvesh("stopped", Some("stopped")),
            VmStatus::Stopped
        );
        assert_eq!(
            VmStatus::from_pvesh("running", Some("running")),
            VmStatus::Running
        );
        assert_eq!(
            VmStatus::from_pvesh("running", Some("paused")),
            VmStatus::Paused
        );
        assert_eq!(VmStatus::from_pvesh("running", None), VmStatus::Running);
    }

    #[test]
    fn lenient() {
        assert_eq!(VmStatus::parse(" Running\n"), VmStatus::Running);
        assert_eq!(
            VmStatus::parse("unknown"),
            VmStatus::Other("unknown".into())
        );
        assert_eq!(VmStatus::Other("unknown".into()).to_string(), "unknown");
        assert!(VmStatus::Paused.is_up());
        assert!(!VmStatus::Stopped.is_up());
    }
}
