//! Disk and CD drive values: `scsiN`, `virtioN`, `sataN`, `ideN`.
//!
//! ```text
//! local-lvm:vm-100-disk-0,discard=on,iothread=1,size=32G
//! ```
//!
//! The default key is `file` (alias `volume`); its value takes one of the
//! forms of CONTRACT §3.4, typed as [`DriveFile`]. Proxmox stores the volume
//! first and the other keys sorted; [`Drive`] prints that form and keeps
//! every item it does not type (`aio`, `replicate`, `serial`, limits, ...) in
//! the order it read them.

use std::collections::BTreeMap;

use crate::propstring::{
    checked_items, extend_other, parse_bool, print_bool, set_once, Layout, PropertyError,
};
use crate::size::{format_size, parse_size};
use crate::{StorageId, VolId};

keyword_enum! {
    /// `media`: what the drive presents to the guest.
    pub enum Media {
        /// `cdrom`: a CD drive.
        Cdrom => "cdrom",
        /// `disk`: a disk (the default).
        Disk => "disk",
    }
}

keyword_enum! {
    /// `format`: the data format of the backing file.
    pub enum DiskFormat {
        /// `raw`.
        Raw => "raw",
        /// `qcow`.
        Qcow => "qcow",
        /// `qed`.
        Qed => "qed",
        /// `qcow2`.
        Qcow2 => "qcow2",
        /// `vmdk`.
        Vmdk => "vmdk",
        /// `cloop`.
        Cloop => "cloop",
    }
}

keyword_enum! {
    /// `cache`: the drive's cache mode.
    pub enum CacheMode {
        /// `none`.
        None => "none",
        /// `writethrough`.
        Writethrough => "writethrough",
        /// `writeback`.
        Writeback => "writeback",
        /// `unsafe`.
        Unsafe => "unsafe",
        /// `directsync`.
        Directsync => "directsync",
    }
}

keyword_enum! {
    /// `discard`: whether trim requests reach the storage.
    pub enum Discard {
        /// `ignore`.
        Ignore => "ignore",
        /// `on`.
        On => "on",
    }
}

/// The `file` item of a drive, in the order Proxmox tells its forms apart
/// (qemu-server `create_disks`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DriveFile {
    /// `STORAGE:SIZE` or a bare `SIZE`: allocate a new volume of SIZE GiB
    /// (decimals allowed); `STORAGE:0` together with `import-from`.
    New {
        /// The storage; without one `qm` uses `--storage`.
        storage: Option<StorageId>,
        /// The size in GiB as written, digits with an optional `.digits`.
        gib: String,
    },
    /// `STORAGE:cloudinit`: allocate the VM's cloud-init volume there.
    CloudInit(StorageId),
    /// An existing volume, e.g. `local-lvm:vm-100-disk-0`.
    Volume(VolId),
    /// `none`: an empty CD drive.
    Empty,
    /// `cdrom`: the host's physical CD drive.
    HostCdrom,
    /// An absolute path on the host, e.g. `/dev/sdb`.
    Path(String),
}

impl DriveFile {
    /// Reads a `file` value.
    pub fn parse(text: &str) -> Result<Self, PropertyError> {
        let invalid = || {
            PropertyError::invalid(
                "file",
                text,
                "a volume, STORAGE:SIZE, none, cdrom or an absolute path",
            )
        };
        match text {
            "none" => return Ok(Self::Empty),
            "cdrom" => return Ok(Self::HostCdrom),
            _ if text.starts_with('/') => return Ok(Self::Path(text.to_string())),
            _ => {}
        }
        let (storage, rest) = match text.split_once(':') {
            Some((s, rest)) => (Some(StorageId::parse(s).map_err(|_| invalid())?), rest),
            None => (None, text),
        };
        if is_gib(rest) {
            return Ok(Self::New {
                storage,
                gib: rest.to_string(),
            });
        }
        match storage {
            Some(storage) if rest == "cloudinit" => Ok(Self::CloudInit(storage)),
            Some(_) => VolId::parse(text).map(Self::Volume).map_err(|_| invalid()),
            None => Err(invalid()),
        }
    }

    /// The volume, when this is an existing one.
    pub fn volume(&self) -> Option<&VolId> {
        match self {
            Self::Volume(v) => Some(v),
            _ => None,
        }
    }
}

/// `\d+(\.\d+)?`, the size part of Proxmox's `NEW_DISK_RE`.
fn is_gib(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(text),
    }
}

impl std::fmt::Display for DriveFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::New {
                storage: Some(s),
                gib,
            } => write!(f, "{s}:{gib}"),
            Self::New { storage: None, gib } => f.write_str(gib),
            Self::CloudInit(s) => write!(f, "{s}:cloudinit"),
            Self::Volume(v) => f.write_str(v.as_str()),
            Self::Empty => f.write_str("none"),
            Self::HostCdrom => f.write_str("cdrom"),
            Self::Path(p) => f.write_str(p),
        }
    }
}

/// The source of `import-from`: a volume id or an absolute host path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImportSource {
    /// A volume of content `images` or `import`, e.g. `local:import/x.qcow2`.
    Volume(VolId),
    /// An absolute path on the host, e.g. `/var/lib/vz/template/iso/x.img`.
    Path(String),
}

impl ImportSource {
    /// Reads an `import-from` value.
    pub fn parse(text: &str) -> Result<Self, PropertyError> {
        if text.starts_with('/') {
            return Ok(Self::Path(text.to_string()));
        }
        VolId::parse(text).map(Self::Volume).map_err(|_| {
            PropertyError::invalid("import-from", text, "a volume id or an absolute path")
        })
    }
}

impl std::fmt::Display for ImportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Volume(v) => f.write_str(v.as_str()),
            Self::Path(p) => f.write_str(p),
        }
    }
}

/// One drive value. Equality is structural: item order does not matter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drive {
    /// `file` (or `volume`): what backs the drive.
    pub file: DriveFile,
    /// `media`; unset means `disk`.
    pub media: Option<Media>,
    /// `size` in bytes (Proxmox prints it with the largest exact unit).
    pub size: Option<u64>,
    /// `format`.
    pub format: Option<DiskFormat>,
    /// `cache`.
    pub cache: Option<CacheMode>,
    /// `discard`.
    pub discard: Option<Discard>,
    /// `ssd`: present the drive as an SSD.
    pub ssd: Option<bool>,
    /// `iothread`.
    pub iothread: Option<bool>,
    /// `backup`: include in backups (unset means yes).
    pub backup: Option<bool>,
    /// `import-from`: create the volume by importing this source.
    pub import_from: Option<ImportSource>,
    /// Every other item, by key, values as written.
    pub other: BTreeMap<String, String>,
    layout: Layout,
}

impl Drive {
    /// A drive backed by `file` with nothing else set.
    pub fn new(file: DriveFile) -> Self {
        Self {
            file,
            media: None,
            size: None,
            format: None,
            cache: None,
            discard: None,
            ssd: None,
            iothread: None,
            backup: None,
            import_from: None,
            other: BTreeMap::new(),
            layout: Layout::default(),
        }
    }

    /// `STORAGE:0,import-from=SOURCE`: a new volume on `storage` filled from
    /// `source` (PVE 7.2+, CONTRACT §3.4).
    pub fn import(storage: StorageId, source: ImportSource) -> Self {
        let mut drive = Self::new(DriveFile::New {
            storage: Some(storage),
            gib: "0".into(),
        });
        drive.import_from = Some(source);
        drive
    }

    /// `STORAGE:cloudinit`: the request that makes Proxmox allocate the VM's
    /// cloud-init drive (it adds `media=cdrom` itself).
    pub fn cloudinit(storage: StorageId) -> Self {
        Self::new(DriveFile::CloudInit(storage))
    }

    /// Parses a drive value, checked as Proxmox checks it.
    pub fn parse(text: &str) -> Result<Self, PropertyError> {
        let mut file = None;
        let mut drive = Self::new(DriveFile::Empty);
        for (key, value, bare) in checked_items(text, Some("file"))? {
            let key = if key == "volume" { "file" } else { key };
            drive.layout.push(key, bare);
            if key == "file" {
                set_once(&mut file, key, DriveFile::parse(value)?)?;
            } else {
                drive.set(key, value)?;
            }
        }
        drive.file = file.ok_or(PropertyError::MissingKey("file"))?;
        Ok(drive)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), PropertyError> {
        fn keyword<T>(key: &str, value: &str, parsed: Option<T>) -> Result<T, PropertyError> {
            parsed.ok_or_else(|| PropertyError::invalid(key, value, "a value the schema lists"))
        }
        match key {
            "media" => self.media = Some(keyword(key, value, Media::parse(value))?),
            "size" => {
                let bytes = parse_size(value)
                    .map_err(|_| PropertyError::invalid(key, value, "a disk size such as 32G"))?;
                self.size = Some(bytes);
            }
            "format" => self.format = Some(keyword(key, value, DiskFormat::parse(value))?),
            "cache" => self.cache = Some(keyword(key, value, CacheMode::parse(value))?),
            "discard" => self.discard = Some(keyword(key, value, Discard::parse(value))?),
            "ssd" => self.ssd = Some(parse_bool(key, value)?),
            "iothread" => self.iothread = Some(parse_bool(key, value)?),
            "backup" => self.backup = Some(parse_bool(key, value)?),
            "import-from" => self.import_from = Some(ImportSource::parse(value)?),
            _ => {
                self.other.insert(key.to_string(), value.to_string());
            }
        }
        Ok(())
    }

    /// True for `media=cdrom`.
    pub fn is_cdrom(&self) -> bool {
        self.media == Some(Media::Cdrom)
    }

    /// True for a cloud-init drive: the `STORAGE:cloudinit` request, or a
    /// `media=cdrom` drive whose volume has Proxmox's cloud-init name
    /// (`vm-<vmid>-cloudinit`, `<vmid>/vm-<vmid>-cloudinit.<format>`).
    pub fn is_cloudinit(&self) -> bool {
        match &self.file {
            DriveFile::CloudInit(_) => true,
            DriveFile::Volume(v) => self.is_cdrom() && v.is_cloudinit(),
            _ => false,
        }
    }

    /// True when setting this value makes Proxmox allocate a volume: a new
    /// `STORAGE:SIZE`, a cloud-init request or an `import-from`.
    pub fn allocates(&self) -> bool {
        self.import_from.is_some()
            || matches!(self.file, DriveFile::New { .. } | DriveFile::CloudInit(_))
    }
}

/// True when `value` parses as a cloud-init drive ([`Drive::is_cloudinit`]);
/// a value that does not parse as a drive is not one.
pub fn is_cloudinit_drive(value: &str) -> bool {
    Drive::parse(value).is_ok_and(|d| d.is_cloudinit())
}

impl std::fmt::Display for Drive {
    /// The volume first, then the other items in the order they were read;
    /// new ones where Proxmox sorts them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut items = vec![("file".to_string(), self.file.to_string())];
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                items.push((k.to_string(), v));
            }
        };
        put("media", self.media.map(|m| m.to_string()));
        put("size", self.size.map(format_size));
        put("format", self.format.map(|x| x.to_string()));
        put("cache", self.cache.map(|x| x.to_string()));
        put("discard", self.discard.map(|x| x.to_string()));
        put("ssd", self.ssd.map(print_bool));
        put("iothread", self.iothread.map(print_bool));
        put("backup", self.backup.map(print_bool));
        put(
            "import-from",
            self.import_from.as_ref().map(|s| s.to_string()),
        );
        extend_other(&mut items, &self.other);
        f.write_str(&self.layout.render(Some("file"), items))
    }
}

impl std::str::FromStr for Drive {
    type Err = PropertyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// True for a bus drive's config key: `scsiN`, `virtioN`, `sataN`, `ideN`.
pub fn is_drive_key(key: &str) -> bool {
    ["scsi", "virtio", "sata", "ide"].iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// True for every config key that holds a volume: the bus drives,
/// `efidisk0` and `tpmstate0`.
pub fn is_disk_key(key: &str) -> bool {
    is_drive_key(key) || key == "efidisk0" || key == "tpmstate0"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(text: &str) -> Drive {
        Drive::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn storage(text: &str) -> StorageId {
        StorageId::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn real_values_round_trip() {
        // From fixtures/pvesh/qemu-config--*.json and CONTRACT §3.4.
        for text in [
            "local-lvm:vm-101-cloudinit,media=cdrom,size=4M",
            "none,media=cdrom",
            "local-lvm:vm-101-disk-0,size=8G",
            "storage:vm-102-disk-0,size=100G",
            "local:100/vm-100-disk-0.raw,backup=0,replicate=0,size=2G",
            "local-lvm:vm-102-disk-30,size=32G",
            "local:1000/vm-1000-cloudinit.qcow2,media=cdrom,size=4M",
            "local-lvm:vm-1000-disk-0,size=64G",
            "local-lvm:vm-100-disk-0,size=2252M",
            "local-lvm:0,import-from=/var/lib/vz/template/iso/x.img",
            "local-lvm:0,import-from=local:import/noble.qcow2",
            "local-lvm:cloudinit",
            "local-lvm:32",
            "local:iso/debian-12.0.0-amd64-netinst.iso,media=cdrom",
            "local-lvm:vm-100-disk-0,cache=writeback,discard=on,iothread=1,size=32G,ssd=1",
        ] {
            assert_eq!(drive(text).to_string(), text);
        }
    }

    #[test]
    fn typed_fields() {
        let d = drive("local:100/vm-100-disk-0.raw,backup=0,replicate=0,size=2G");
        assert_eq!(
            d.file.volume().map(|v| v.as_str()),
            Some("local:100/vm-100-disk-0.raw")
        );
        assert_eq!(d.backup, Some(false));
        assert_eq!(d.size, Some(2 << 30));
        assert_eq!(d.other.get("replicate").map(String::as_str), Some("0"));
        let i = drive("volume=local-lvm:0,import-from=local:import/x.qcow2,format=qcow2");
        assert_eq!(
            i.file,
            DriveFile::New {
                storage: Some(storage("local-lvm")),
                gib: "0".into()
            }
        );
        assert_eq!(i.format, Some(DiskFormat::Qcow2));
        assert!(i.allocates());
        assert_eq!(
            i.to_string(),
            "file=local-lvm:0,import-from=local:import/x.qcow2,format=qcow2"
        );
    }

    #[test]
    fn file_forms() {
        let file = |t: &str| DriveFile::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(
            file("32"),
            DriveFile::New {
                storage: None,
                gib: "32".into()
            }
        );
        assert_eq!(
            file("local-lvm:1.5"),
            DriveFile::New {
                storage: Some(storage("local-lvm")),
                gib: "1.5".into()
            }
        );
        assert_eq!(
            file("local-lvm:cloudinit"),
            DriveFile::CloudInit(storage("local-lvm"))
        );
        assert_eq!(file("cdrom"), DriveFile::HostCdrom);
        assert_eq!(file("/dev/sdb"), DriveFile::Path("/dev/sdb".into()));
        assert!(matches!(
            file("local-lvm:vm-1-disk-0"),
            DriveFile::Volume(_)
        ));
        // `32G` is not a new-disk size: Proxmox reads it as a volume name.
        assert!(matches!(file("local-lvm:32G"), DriveFile::Volume(_)));
        for bad in ["x", "1.", "1:vm-1-disk-0", "local-lvm:"] {
            assert!(DriveFile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cloudinit_detection_parses() {
        assert!(is_cloudinit_drive(
            "local-lvm:vm-101-cloudinit,media=cdrom,size=4M"
        ));
        assert!(is_cloudinit_drive(
            "local:1000/vm-1000-cloudinit.qcow2,media=cdrom,size=4M"
        ));
        assert!(is_cloudinit_drive("local-lvm:cloudinit"));
        assert!(!is_cloudinit_drive("none,media=cdrom"));
        assert!(!is_cloudinit_drive("local-lvm:vm-101-cloudinit"));
        assert!(!is_cloudinit_drive("local:iso/cloudinit.iso,media=cdrom"));
        assert!(!is_cloudinit_drive(
            "local-lvm:vm-101-disk-0,serial=cloudinit"
        ));
        assert!(!is_cloudinit_drive("garbage,,=cloudinit"));
    }

    #[test]
    fn change_keeps_unknown_items() {
        let mut d = drive("local:100/vm-100-disk-0.raw,backup=0,replicate=0,size=2G");
        d.size = Some(4 << 30);
        d.ssd = Some(true);
        assert_eq!(
            d.to_string(),
            "local:100/vm-100-disk-0.raw,backup=0,replicate=0,size=4G,ssd=1"
        );
        let fresh = Drive::import(
            storage("local-lvm"),
            ImportSource::Path("/tmp/x.img".into()),
        );
        assert_eq!(fresh.to_string(), "local-lvm:0,import-from=/tmp/x.img");
        assert_eq!(
            Drive::cloudinit(storage("local-lvm")).to_string(),
            "local-lvm:cloudinit"
        );
    }

    #[test]
    fn rejects_what_proxmox_rejects() {
        for text in [
            "media=cdrom",
            "local-lvm:1,file=local-lvm:2",
            "local-lvm:1,volume=local-lvm:2",
            "local-lvm:1,media=floppy",
            "local-lvm:1,size=big",
            "local-lvm:1,cache=fast",
            "local-lvm:1,ssd=2",
            "local-lvm:0,import-from=x.img",
            "local-lvm:1,size=",
        ] {
            assert!(Drive::parse(text).is_err(), "{text}");
        }
    }
}
