//! Proxmox volume ids: `STORAGE:VOLNAME`.
//!
//! The volname's shape tells its content type and, for VM images, the VM
//! that owns it (CONTRACT §13; pve-storage `Plugin::parse_volname`):
//!
//! | volname | content | owner |
//! |---|---|---|
//! | `100/vm-100-disk-0.qcow2`, `100/base-100-disk-0.raw` (dir-like) | images | 100 |
//! | `vm-100-disk-0`, `base-100-disk-0`, `vm-100-cloudinit` (block) | images | 100 |
//! | `subvol-100-disk-0` (ZFS, containers) | rootdir | 100 |
//! | `iso/…`, `vztmpl/…`, `backup/…`, `snippets/…`, `import/…` | as the folder | — |
//!
//! The storage type is not known here, so both image shapes are accepted for
//! any storage; Proxmox itself rejects the wrong one for a storage.

use crate::{StorageId, StorageIdError, VmId};

/// A volume id, `STORAGE:VOLNAME` (`pve-volume-id`). Kept as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VolId {
    text: String,
    storage: StorageId,
}

/// Why a value is not a volume id.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolIdError {
    /// No `:` or nothing after it; the message is Proxmox's.
    #[error("unable to parse volume ID '{0}'")]
    Shape(String),
    /// The part before `:` is not a storage id.
    #[error("unable to parse volume ID '{volid}': {source}")]
    Storage {
        /// The whole value.
        volid: String,
        /// Why the storage part was rejected.
        #[source]
        source: StorageIdError,
    },
}

/// The content type a volname belongs to (a storage's `content` list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VolContent {
    /// VM disk images (`images`).
    Images,
    /// Container root file systems (`rootdir`).
    Rootdir,
    /// ISO images (`iso`).
    Iso,
    /// Container templates (`vztmpl`).
    Vztmpl,
    /// Backups (`backup`).
    Backup,
    /// Snippets such as cloud-init user data (`snippets`).
    Snippets,
    /// Disk images to import from (`import`, PVE 8.3+).
    Import,
}

impl VolContent {
    /// The content type as Proxmox spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Images => "images",
            Self::Rootdir => "rootdir",
            Self::Iso => "iso",
            Self::Vztmpl => "vztmpl",
            Self::Backup => "backup",
            Self::Snippets => "snippets",
            Self::Import => "import",
        }
    }
}

impl std::fmt::Display for VolContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl VolId {
    /// Validates `text` as `STORAGE:VOLNAME`.
    pub fn parse(text: &str) -> Result<Self, VolIdError> {
        let shape = || VolIdError::Shape(text.to_string());
        let (storage, volname) = text.split_once(':').ok_or_else(shape)?;
        if volname.is_empty() || volname.contains(char::is_whitespace) {
            return Err(shape());
        }
        let storage = StorageId::parse(storage).map_err(|source| VolIdError::Storage {
            volid: text.to_string(),
            source,
        })?;
        Ok(Self {
            text: text.to_string(),
            storage,
        })
    }

    /// Joins a storage and a volname.
    pub fn new(storage: &StorageId, volname: &str) -> Result<Self, VolIdError> {
        Self::parse(&[storage.as_str(), ":", volname].concat())
    }

    /// The whole volume id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The storage part.
    pub fn storage(&self) -> &StorageId {
        &self.storage
    }

    /// The part after the first `:`.
    pub fn volname(&self) -> &str {
        &self.text[self.storage.as_str().len() + 1..]
    }

    /// The content type the volname's shape implies, if it has a known shape.
    pub fn content(&self) -> Option<VolContent> {
        let volname = self.volname();
        if let Some((folder, rest)) = volname.split_once('/') {
            return match folder {
                "iso" => Some(VolContent::Iso),
                "vztmpl" => Some(VolContent::Vztmpl),
                "backup" => Some(VolContent::Backup),
                "snippets" => Some(VolContent::Snippets),
                "import" => Some(VolContent::Import),
                "rootdir" => Some(VolContent::Rootdir),
                _ if is_digits(folder) && !rest.is_empty() => Some(VolContent::Images),
                _ => None,
            };
        }
        match block_owner(volname) {
            Some(("vm" | "base", _)) => Some(VolContent::Images),
            Some(("subvol" | "basevol", _)) => Some(VolContent::Rootdir),
            _ => None,
        }
    }

    /// The VM that owns an `images` (or `rootdir`) volume:
    /// `local:100/base.qcow2` and `local-lvm:vm-100-disk-0` are owned by 100.
    pub fn owner(&self) -> Option<VmId> {
        let volname = self.volname();
        let id = match volname.split_once('/') {
            Some((folder, rest)) if is_digits(folder) && !rest.is_empty() => folder,
            Some(_) => return None,
            None => block_owner(volname)?.1,
        };
        id.parse().ok()
    }

    /// True for the cloud-init volume Proxmox names `vm-<vmid>-cloudinit`
    /// (block storages) or `<vmid>/vm-<vmid>-cloudinit.<format>` (file
    /// storages), as qemu-server's `drive_is_cloudinit` matches it.
    pub fn is_cloudinit(&self) -> bool {
        let name = self.volname().rsplit('/').next().unwrap_or("");
        let stem = match name.rsplit_once('.') {
            Some((stem, "raw" | "qcow2" | "vmdk")) => stem,
            _ => name,
        };
        // A template's own volumes are named `base-N-...`.
        stem.strip_prefix("vm-")
            .or_else(|| stem.strip_prefix("base-"))
            .and_then(|s| s.strip_suffix("-cloudinit"))
            .is_some_and(is_digits)
    }
}

/// `vm-100-disk-0` → `("vm", "100")`, for block-storage volnames.
fn block_owner(volname: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = volname.split_once('-')?;
    let (id, tail) = rest.split_once('-')?;
    (is_digits(id) && !tail.is_empty()).then_some((prefix, id))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

string_newtype!(VolId, VolIdError);

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(text: &str) -> VolId {
        VolId::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parts() {
        let v = vol("local:100/base.qcow2");
        assert_eq!(v.storage().as_str(), "local");
        assert_eq!(v.volname(), "100/base.qcow2");
        assert_eq!(v.to_string(), "local:100/base.qcow2");
        assert_eq!(v.content(), Some(VolContent::Images));
        assert_eq!(v.owner().map(VmId::get), Some(100));
    }

    #[test]
    fn content_and_owner_of_real_volids() {
        // From fixtures/pvesh/storage-content--*.json and qemu-config--*.json.
        let cases: [(&str, Option<VolContent>, Option<u32>); 12] = [
            (
                "local-lvm:vm-101-disk-0",
                Some(VolContent::Images),
                Some(101),
            ),
            (
                "local-lvm:vm-101-cloudinit",
                Some(VolContent::Images),
                Some(101),
            ),
            (
                "local:100/vm-100-disk-0.raw",
                Some(VolContent::Images),
                Some(100),
            ),
            (
                "local-zfs:subvol-105-disk-0",
                Some(VolContent::Rootdir),
                Some(105),
            ),
            (
                "local:iso/debian-12.0.0-amd64-netinst.iso",
                Some(VolContent::Iso),
                None,
            ),
            (
                "local:import/irellevant1.qcow2",
                Some(VolContent::Import),
                None,
            ),
            (
                "myshared:snippets/cloud-config-ubuntu-vendor-data",
                Some(VolContent::Snippets),
                None,
            ),
            (
                "local:vztmpl/debian-12-standard_12.0-1_amd64.tar.zst",
                Some(VolContent::Vztmpl),
                None,
            ),
            (
                "local:backup/vzdump-qemu-100-2023_08_28-12_00_00.vma.zst",
                Some(VolContent::Backup),
                None,
            ),
            (
                "datastore:backup/vm/931/2023-12-14T04:34:34Z",
                Some(VolContent::Backup),
                None,
            ),
            // `000` is a folder of digits but not a VM id.
            (
                "local:000/fedora-coreos-38.20231027.3.2-qemu.x86_64.qcow2",
                Some(VolContent::Images),
                None,
            ),
            ("local-lvm:cloudinit", None, None),
        ];
        for (text, content, owner) in cases {
            let v = vol(text);
            assert_eq!(v.content(), content, "{text}");
            assert_eq!(v.owner().map(VmId::get), owner, "{text}");
        }
    }

    #[test]
    fn cloudinit_names() {
        assert!(vol("local-lvm:vm-101-cloudinit").is_cloudinit());
        assert!(vol("local:1000/vm-1000-cloudinit.qcow2").is_cloudinit());
        assert!(!vol("local-lvm:vm-101-disk-0").is_cloudinit());
        assert!(!vol("local:iso/cloudinit-notes.iso").is_cloudinit());
        assert!(!vol("local-lvm:cloudinit").is_cloudinit());
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(
            VolId::parse("local"),
            Err(VolIdError::Shape("local".into()))
        );
        assert_eq!(
            VolId::parse("local:"),
            Err(VolIdError::Shape("local:".into()))
        );
        assert!(matches!(
            VolId::parse("1x:vm-1-disk-0"),
            Err(VolIdError::Storage { .. })
        ));
        assert!(VolId::parse("/var/lib/vz/x.img").is_err());
    }

    #[test]
    fn new_joins() {
        let s = StorageId::parse("local-lvm").expect("valid");
        assert_eq!(
            VolId::new(&s, "vm-100-disk-0").map(|v| v.to_string()),
            Ok("local-lvm:vm-100-disk-0".into())
        );
    }
}
