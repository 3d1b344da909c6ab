//! Custom cloud-init data a VM carries as a snippet (`user_data:`).

/// Which part of the cloud-init data the snippet replaces or adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UserDataMode {
    /// `--cicustom vendor=…`: Proxmox still generates the user-data (user,
    /// SSH keys, password, hostname) and cloud-init merges the snippet in.
    #[default]
    Vendor,
    /// `--cicustom user=…`: the snippet replaces Proxmox's generated
    /// user-data, so `ciuser`, `sshkeys`, `cipassword` and the hostname no
    /// longer reach the guest.
    User,
}

impl UserDataMode {
    /// The `cicustom` item name: `vendor` or `user`.
    pub fn item(self) -> &'static str {
        match self {
            UserDataMode::Vendor => "vendor",
            UserDataMode::User => "user",
        }
    }
}

/// The custom cloud-init data of a VM, as the snippet file holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserData {
    /// The whole file, starting with its header line (`#cloud-config`,
    /// `#!`, ...).
    pub text: String,
    /// Vendor or user data.
    pub mode: UserDataMode,
    /// The storage the snippet is written to (it needs the `snippets`
    /// content type).
    pub storage: String,
}

/// The prefix of every snippet file pvefleet writes; `destroy` removes only
/// files with it.
pub const SNIPPET_PREFIX: &str = "pvefleet-";
