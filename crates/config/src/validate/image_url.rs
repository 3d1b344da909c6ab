//! `image: {url, checksum, storage, filename}`: a cloud image Proxmox
//! downloads by URL (`pvesh create .../download-url`), checked offline.
//!
//! Proxmox takes `http://` and `https://` URLs only, and keeps names made
//! of `[A-Za-z0-9_.-]` (it rewrites any other character to `_`), ending
//! `.img`/`.iso` (content `iso`) or `.qcow2`/`.raw`/`.vmdk` (content
//! `import`, PVE 8.4+); pve-storage `src/PVE/API2/Storage/Status.pm`
//! `download_url`, `PVE::Storage::normalize_content_filename`.

use super::primitives::is_storage_id;
use super::Cx;
use crate::error::ErrorKind;
use crate::limits::shown;
use crate::raw::{Node, Value};
use crate::spec::{ImageRef, ImageUrl};

/// The keys of an `image:` mapping.
pub const IMAGE_URL_KEYS: &[&str] = &["url", "checksum", "storage", "filename"];

/// The file name extensions Proxmox downloads a disk image as.
const EXTENSIONS: &[&str] = &[".img", ".iso", ".qcow2", ".raw", ".vmdk"];

/// True for a name Proxmox keeps as written, with a disk image extension.
fn usable_filename(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && EXTENSIONS
            .iter()
            .any(|e| lower.ends_with(e) && lower.len() > e.len())
}

/// The URL's last path segment (without query or fragment).
fn last_segment(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or("")
}

/// `http(s)://HOST...` without spaces or control characters.
fn usable_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !r.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

impl Cx<'_> {
    /// The mapping form of `image`: the image's volume (in its `iso` or
    /// `import` form, chosen by the file name's extension) and where it
    /// comes from. `None` on error (recorded).
    pub(super) fn image_url(&mut self, key: &str, n: &Node) -> Option<(ImageRef, ImageUrl)> {
        let entries = self.map(key, n)?;
        let f = self.fields(entries, IMAGE_URL_KEYS, "an image URL mapping");
        let get = |k: &str| f.get(k).map(|(_, v)| *v);
        let mut ok = true;
        let url = match get("url") {
            Some(v) => self.url(key, v),
            None => {
                self.missing(
                    key,
                    n,
                    "url",
                    "the http:// or https:// address of the image",
                );
                None
            }
        };
        let sha256 = match get("checksum") {
            Some(v) => self.checksum(key, v),
            None => {
                self.missing(
                    key,
                    n,
                    "checksum",
                    "sha256:<64 hex digits>, as published beside the image",
                );
                None
            }
        };
        let storage = match get("storage") {
            Some(v) => self.checked(
                &format!("{key}.storage"),
                v,
                is_storage_id,
                "is not a storage id",
                "name the file storage the image is downloaded to, e.g. local",
            ),
            None => {
                self.missing(
                    key,
                    n,
                    "storage",
                    "the file storage the image is downloaded to, e.g. local",
                );
                None
            }
        };
        let filename = match (get("filename"), &url) {
            (Some(v), _) => self.filename(key, v),
            (None, Some(u)) => {
                let name = last_segment(u).to_string();
                if usable_filename(&name) {
                    Some(name)
                } else {
                    if let Some(v) = get("url") {
                        self.err(
                            ErrorKind::Format,
                            v.span,
                            format!("{key}.url: its last segment {} is no usable file name", shown(&name)),
                            "set 'filename:' to a name of letters, digits, '_', '.', '-' ending .img, .iso, .qcow2, .raw or .vmdk",
                        );
                    }
                    None
                }
            }
            (None, None) => None,
        };
        ok &= url.is_some() && sha256.is_some() && storage.is_some() && filename.is_some();
        if !ok {
            return None;
        }
        let (url, sha256, storage, filename) = (url?, sha256?, storage?, filename?);
        let lower = filename.to_ascii_lowercase();
        let folder = if lower.ends_with(".img") || lower.ends_with(".iso") {
            "iso"
        } else {
            "import"
        };
        let volume = ImageRef::Volume {
            storage: storage.clone(),
            volname: [folder, "/", &filename].concat(),
        };
        Some((
            volume,
            ImageUrl {
                url,
                sha256,
                storage,
                filename,
            },
        ))
    }

    fn missing(&mut self, key: &str, n: &Node, sub: &str, what: &str) {
        self.err(
            ErrorKind::Missing,
            n.span,
            format!("{key}: an image by URL needs '{sub}'"),
            format!("add '{sub}:', {what}"),
        );
    }

    fn url(&mut self, key: &str, n: &Node) -> Option<String> {
        let s = self.string(&format!("{key}.url"), n)?;
        if usable_url(&s) {
            return Some(s);
        }
        self.err(
            ErrorKind::Format,
            n.span,
            format!("{key}.url: {} is not an http:// or https:// URL", shown(&s)),
            "Proxmox downloads from http:// and https:// URLs only, e.g. https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        );
        None
    }

    fn checksum(&mut self, key: &str, n: &Node) -> Option<String> {
        let s = self.string(&format!("{key}.checksum"), n)?;
        match s.split_once(':') {
            Some(("sha256", hex))
                if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                Some(hex.to_ascii_lowercase())
            }
            _ => {
                self.err(
                    ErrorKind::Format,
                    n.span,
                    format!("{key}.checksum: {} is not a SHA-256 checksum", shown(&s)),
                    "write sha256: followed by the 64 hex digits of the image's SHA-256 (from the publisher's SHA256SUMS)",
                );
                None
            }
        }
    }

    fn filename(&mut self, key: &str, n: &Node) -> Option<String> {
        if let Value::Str(s) = &n.value {
            if !usable_filename(s) {
                self.err(
                    ErrorKind::Format,
                    n.span,
                    format!("{key}.filename: {} is not a usable image file name", shown(s)),
                    "use letters, digits, '_', '.', '-' (Proxmox rewrites any other character), ending .img, .iso, .qcow2, .raw or .vmdk",
                );
                return None;
            }
        }
        self.string(&format!("{key}.filename"), n)
    }

    /// `wait`: `ip`, `cloud-init` or `none`.
    pub(super) fn wait_for(&mut self, n: &Node) -> Option<crate::spec::WaitFor> {
        use crate::spec::WaitFor;
        let s = self.string("wait", n)?;
        match s.as_str() {
            "ip" => Some(WaitFor::Ip),
            "cloud-init" => Some(WaitFor::CloudInit),
            "none" => Some(WaitFor::None),
            _ => {
                let mut msg = format!("wait: {} is not known", shown(&s));
                if let Some(h) = crate::keys::suggest(&s, &["ip", "cloud-init", "none"]) {
                    msg.push_str(&format!(" (did you mean '{h}'?)"));
                }
                self.err(
                    ErrorKind::UnknownValue,
                    n.span,
                    msg,
                    "use ip (the guest agent reports the address), cloud-init (and cloud-init finished) or none",
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_urls() {
        assert_eq!(last_segment("https://h/a/b.img?x=1"), "b.img");
        assert!(usable_filename("noble-server-cloudimg-amd64.img"));
        assert!(usable_filename("debian-12.qcow2"));
        assert!(!usable_filename("a b.img"));
        assert!(!usable_filename("SHA256SUMS"));
        assert!(!usable_filename(".img"));
        assert!(usable_url("https://example.com/x.img"));
        assert!(!usable_url("ftp://example.com/x.img"));
        assert!(!usable_url("https:///x.img"));
    }
}
