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

/// True for a name Proxmox keeps as written, with an extension it
/// downloads a disk image as: `.img`/`.iso` in any case (content `iso`),
/// `.qcow2`/`.raw`/`.vmdk` in lower case (content `import`).
fn usable_filename(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let ext = |n: &str, e: &str| n.ends_with(e) && n.len() > e.len();
    !name.starts_with('.')
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && ([".img", ".iso"].iter().any(|e| ext(&lower, e))
            || [".qcow2", ".raw", ".vmdk"].iter().any(|e| ext(name, e)))
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
    use crate::error::ConfigError;
    use crate::spec::{DiskSource, WaitFor};

    const SHA: &str = "3c1d4a8e6a0d4b5d2f0e8a7c9b1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";

    fn parse(text: &str) -> Result<crate::spec::Desired, Vec<ConfigError>> {
        super::super::parse("t.yml", text, &|_| Err("no files".into())).map_err(|r| r.errors)
    }

    fn vm(image: &str, rest: &str) -> String {
        format!("proxmox: {{host: pve}}\nvms:\n  - name: a\n    image:\n{image}{rest}")
    }

    /// The one error: kind, message, line:col.
    fn only(text: &str) -> (ErrorKind, String, (u32, u32)) {
        let errors = parse(text).err().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let e = &errors[0];
        let span = e.span.map(|s| (s.line, s.col)).unwrap_or_default();
        (e.kind, e.message.clone(), span)
    }

    #[test]
    fn an_image_by_url_names_its_volume_and_where_it_comes_from() {
        let text = vm(
            &format!("      url: https://h.example/d/noble.img?x=1\n      checksum: sha256:{}\n      storage: local\n", SHA.to_uppercase()),
            "    wait: cloud-init\n",
        );
        let d = parse(&text).unwrap_or_else(|e| panic!("{e:#?}"));
        let v = &d.vms[0];
        let url = v.image_url.as_ref().expect("url");
        assert_eq!(url.filename, "noble.img");
        assert_eq!(url.sha256, SHA);
        assert_eq!(
            v.source,
            DiskSource::Image(ImageRef::Volume {
                storage: "local".into(),
                volname: "iso/noble.img".into()
            })
        );
        assert_eq!(v.wait, WaitFor::CloudInit);
        let qcow = vm(
            &format!("      url: https://h.example/debian.qcow2\n      checksum: sha256:{SHA}\n      storage: local\n"),
            "",
        );
        let d = parse(&qcow).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(
            matches!(&d.vms[0].source, DiskSource::Image(ImageRef::Volume { volname, .. }) if volname == "import/debian.qcow2")
        );
        assert_eq!(d.vms[0].wait, WaitFor::Ip);
    }

    #[test]
    fn the_errors_of_an_image_by_url() {
        let (kind, msg, at) = only(&vm(
            "      url: https://h.example/n.img\n      checksum: sha256:abc\n      storage: local\n",
            "",
        ));
        assert_eq!((kind, at), (ErrorKind::Format, (6, 17)), "{msg}");
        let (kind, msg, at) = only(&vm(
            &format!("      url: https://h.example/n.img\n      checksum: sha256:{SHA}\n"),
            "",
        ));
        assert_eq!((kind, at), (ErrorKind::Missing, (5, 7)), "{msg}");
        assert!(msg.contains("'storage'"), "{msg}");
        let (kind, msg, at) = only(&vm(
            &format!("      url: ftp://h.example/n.img\n      checksum: sha256:{SHA}\n      storage: local\n"),
            "",
        ));
        assert_eq!((kind, at), (ErrorKind::Format, (5, 12)), "{msg}");
        let (kind, msg, _) = only(&vm(
            &format!("      url: https://h.example/SHA256SUMS\n      checksum: sha256:{SHA}\n      storage: local\n"),
            "",
        ));
        assert_eq!(kind, ErrorKind::Format);
        assert!(msg.contains("last segment"), "{msg}");
        let (kind, _, at) = only(&vm(
            &format!("      url: https://h.example/n.img\n      checksum: sha256:{SHA}\n      storage: local\n      filename: a b.img\n"),
            "",
        ));
        assert_eq!((kind, at), (ErrorKind::Format, (8, 17)));
        let (kind, msg, at) = only(&vm(
            &format!("      url: https://h.example/n.img\n      checksum: sha256:{SHA}\n      storage: local\n      size: 1\n"),
            "",
        ));
        assert_eq!((kind, at), (ErrorKind::UnknownKey, (8, 7)), "{msg}");
        let (kind, msg, at) = only(&vm("      local:iso/x.img\n", "    wait: later\n"));
        assert_eq!((kind, at), (ErrorKind::UnknownValue, (6, 11)), "{msg}");
    }

    #[test]
    fn file_names_and_urls() {
        assert_eq!(last_segment("https://h/a/b.img?x=1"), "b.img");
        assert!(usable_filename("noble-server-cloudimg-amd64.img"));
        assert!(usable_filename("debian-12.qcow2"));
        assert!(!usable_filename("a b.img"));
        assert!(!usable_filename("SHA256SUMS"));
        assert!(!usable_filename(".img"));
        assert!(usable_filename("NOBLE.IMG"));
        assert!(!usable_filename("debian.QCOW2"));
        assert!(usable_url("https://example.com/x.img"));
        assert!(!usable_url("ftp://example.com/x.img"));
        assert!(!usable_url("https:///x.img"));
    }
}
