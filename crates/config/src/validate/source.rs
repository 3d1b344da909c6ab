//! A VM's system disk: where it comes from (`image`/`template` or `clone`),
//! where it is stored (`storage`), its size (`disk`) and how an image
//! becomes a disk (`disk_from`).

use super::primitives::{is_dns_name, is_storage_id};
use super::{Cx, Fields};
use crate::error::ErrorKind;
use crate::limits::shown;
use crate::raw::{Node, Value};
use crate::spec::{CloneRef, DiskFrom, DiskSource, ImageRef, ImageUrl};
use pvefleet_model::{size, VmId};

impl Cx<'_> {
    /// `image`/`template` or `clone`, exactly one of them, with the URL of
    /// an image given by URL. Clears `ok` on any error.
    pub(super) fn source(
        &mut self,
        f: &Fields<'_>,
        item: &Node,
        ok: &mut bool,
    ) -> Option<(DiskSource, Option<ImageUrl>)> {
        let source = self.source_of(f, item);
        *ok &= source.is_some();
        source
    }

    fn source_of(&mut self, f: &Fields<'_>, item: &Node) -> Option<(DiskSource, Option<ImageUrl>)> {
        let image = match (f.get("image"), f.get("template")) {
            (Some(_), Some((k, _))) => {
                self.err(
                    ErrorKind::Conflict,
                    k.span,
                    "both 'image' and 'template' are set",
                    "'template' is another name for 'image': keep one",
                );
                return None;
            }
            (Some((_, n)), None) => Some(("image", *n)),
            (None, Some((_, n))) => Some(("template", *n)),
            (None, None) => None,
        };
        let clone = f.get("clone").map(|(_, n)| *n);
        match (image, clone) {
            (Some(_), Some(c)) => {
                self.err(
                    ErrorKind::Conflict,
                    c.span,
                    "both 'image' and 'clone' are set",
                    "a VM's disk comes from a cloud image or from a template VM, not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    ErrorKind::Missing,
                    item.span,
                    "VM without a disk source",
                    "set 'image:' (a cloud image on the host) or 'clone:' (a template VM), here or in defaults",
                );
                None
            }
            (Some((key, n)), None) if matches!(n.value, Value::Map(_)) => self
                .image_url(key, n)
                .map(|(img, url)| (DiskSource::Image(img), Some(url))),
            (Some((key, n)), None) => self.image(key, n).map(|i| (DiskSource::Image(i), None)),
            (None, Some(n)) => self.clone_ref(n).map(|c| (DiskSource::Clone(c), None)),
        }
    }

    /// `image` (or its other name `template`): a volume id or an absolute path.
    fn image(&mut self, key: &str, n: &Node) -> Option<ImageRef> {
        let s = self.string(key, n)?;
        if s.starts_with('/') {
            if s.contains("/../") || s.ends_with("/..") || s.contains(',') {
                self.err(
                    ErrorKind::Format,
                    n.span,
                    format!("{key}: {} is not a usable path", shown(&s)),
                    "give a plain absolute path on the host",
                );
                return None;
            }
            return Some(ImageRef::Path(s));
        }
        match s.split_once(':') {
            Some((storage, volname))
                if is_storage_id(storage)
                    && !volname.is_empty()
                    && !volname.contains(',')
                    && !volname.starts_with('/') =>
            {
                Some(ImageRef::Volume {
                    storage: storage.to_string(),
                    volname: volname.to_string(),
                })
            }
            _ => {
                self.err(
                    ErrorKind::Format,
                    n.span,
                    format!("{key}: {} is neither a volume id nor an absolute path", shown(&s)),
                    "write a volume id such as local:iso/jammy-server-cloudimg-amd64.img, or an absolute path on the host",
                );
                None
            }
        }
    }

    /// `clone`: a template VM by id or name.
    fn clone_ref(&mut self, n: &Node) -> Option<CloneRef> {
        match &n.value {
            Value::Int(i) => match VmId::new(*i) {
                Ok(id) => Some(CloneRef::Id(id)),
                Err(_) => {
                    self.err(
                        ErrorKind::Range,
                        n.span,
                        "clone: not a valid VM id",
                        "name the template VM by its id (100 to 999999999) or its name",
                    );
                    None
                }
            },
            Value::Str(s) if is_dns_name(s) => Some(CloneRef::Name(s.clone())),
            _ => {
                self.type_err("clone", n, "a template VM id or name");
                None
            }
        }
    }

    /// `storage`: a Proxmox storage id.
    pub(super) fn storage(&mut self, n: &Node) -> Option<String> {
        self.checked(
            "storage",
            n,
            is_storage_id,
            "is not a storage id",
            "Proxmox storage ids are lower-case, e.g. local-lvm",
        )
    }

    /// `disk`: a size with a unit, or a number of GiB.
    pub(super) fn disk(&mut self, n: &Node) -> Option<u64> {
        let bytes = match &n.value {
            Value::Int(i) if *i > 0 => (*i as u64) << 30,
            Value::Str(s) => match size::parse_size(s) {
                Ok(b) if s.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) => b,
                _ => {
                    self.err(
                        ErrorKind::Format,
                        n.span,
                        format!("disk: {} is not a disk size", shown(s)),
                        "write a size with a binary unit, e.g. 20G or 512M (G means GiB)",
                    );
                    return None;
                }
            },
            _ => {
                self.type_err("disk", n, "a size such as 20G");
                return None;
            }
        };
        if !((1 << 20)..=(1u64 << 50)).contains(&bytes) {
            self.err(
                ErrorKind::Range,
                n.span,
                "disk: size out of range",
                "use a size between 1M and 1024T",
            );
            return None;
        }
        Some(bytes)
    }

    /// `disk_from`: `import`, `linked-clone` or `full-clone`.
    pub(super) fn disk_from(&mut self, n: &Node) -> Option<DiskFrom> {
        let s = self.string("disk_from", n)?;
        match s.as_str() {
            "import" => Some(DiskFrom::Import),
            "linked-clone" => Some(DiskFrom::LinkedClone),
            "full-clone" => Some(DiskFrom::FullClone),
            _ => {
                self.err(
                    ErrorKind::UnknownValue,
                    n.span,
                    format!("disk_from: {} is not known", shown(&s)),
                    "use import, linked-clone or full-clone",
                );
                None
            }
        }
    }
}
