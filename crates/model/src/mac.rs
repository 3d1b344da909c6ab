//! MAC addresses as Proxmox stores them in `netN`.

/// A MAC address, `XX:XX:XX:XX:XX:XX` in hex of either case (`mac-addr`).
///
/// The text is kept as written so printing reproduces it, but two addresses
/// that differ only in case are equal: Proxmox and QEMU treat them alike.
#[derive(Clone, Debug)]
pub struct MacAddr(String);

/// Why a value is not a MAC address.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a MAC address (expected XX:XX:XX:XX:XX:XX)")]
pub struct MacAddrError(pub String);

impl MacAddr {
    /// Validates the shape of `text`: six pairs of hex digits joined by `:`.
    /// Multicast addresses are accepted here because observed configs can hold
    /// them; [`MacAddr::is_unicast`] is the check Proxmox makes on input.
    pub fn parse(text: &str) -> Result<Self, MacAddrError> {
        let pairs: Vec<&str> = text.split(':').collect();
        let ok = pairs.len() == 6
            && pairs
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(Self(text.to_string()))
        } else {
            Err(MacAddrError(text.to_string()))
        }
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the I/G bit of the first octet is clear, as Proxmox requires
    /// of an address it is given (`value does not look like a valid unicast
    /// MAC address`).
    pub fn is_unicast(&self) -> bool {
        self.0
            .get(..2)
            .and_then(|first| u8::from_str_radix(first, 16).ok())
            .is_some_and(|octet| octet & 1 == 0)
    }
}

impl PartialEq for MacAddr {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for MacAddr {}

impl std::hash::Hash for MacAddr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_ascii_uppercase().hash(state);
    }
}

string_newtype!(MacAddr, MacAddrError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_equality() {
        let a = MacAddr::parse("BC:24:11:CB:B3:C7").expect("valid");
        let b = MacAddr::parse("bc:24:11:cb:b3:c7").expect("valid");
        assert_eq!(a, b);
        assert_eq!(b.to_string(), "bc:24:11:cb:b3:c7");
        assert!(a.is_unicast());
        assert!(!MacAddr::parse("ff:ff:ff:ff:ff:ff")
            .expect("valid")
            .is_unicast());
    }

    #[test]
    fn rejects_bad_shapes() {
        for text in [
            "",
            "BC:24:11:CB:B3",
            "BC-24-11-CB-B3-C7",
            "BC:24:11:CB:B3:CG",
            "B:24:11:CB:B3:C7",
        ] {
            assert!(MacAddr::parse(text).is_err(), "{text}");
        }
    }
}
