//! Images fetched by URL and the guest commands of the cloud-init wait, as
//! typed commands.
//!
//! Host facts relied on (pve-storage `src/PVE/API2/Storage/Status.pm`
//! `download_url`, pve-common `PVE::Tools::download_file_from_url`,
//! qemu-server `src/PVE/CLI/qm.pm` `exec`):
//! - `pvesh create /nodes/N/storage/S/download-url --url U --filename F
//!   --content iso|vztmpl|import [--checksum H --checksum-algorithm sha256]`
//!   runs a `download` task (PVE 7.0+, pve-storage 7.0-4). `iso` takes
//!   names ending `.iso`/`.img`; `import` takes `.qcow2`/`.raw`/`.vmdk`
//!   from pve-storage 8.3.6 (PVE 8.4, `.ova` only before). Like every task
//!   run by `pvesh create`, a failed download still exits 0 (CONTRACT
//!   §12.1): the error is on stderr and only a content read tells.
//! - A checksum mismatch ends the task with `checksum mismatch: got 'X' !=
//!   expect 'Y'` and removes the temporary file; an unreachable URL with
//!   `download failed: command 'wget ...' failed: exit code N`.
//! - `qm guest exec VMID --synchronous 0 -- CMD ARGS...` prints
//!   `{"pid" : N}`; `qm guest exec-status VMID PID` prints `exited`,
//!   `exitcode`, `out-data`, `err-data` (decoded from base64) as pretty
//!   JSON. Both fail with `QEMU guest agent is not running` like `qm guest
//!   cmd` (CONTRACT §10).

/// The content type a downloaded image is stored as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DownloadContent {
    /// `iso`: names ending `.img` or `.iso`, used by path.
    Iso,
    /// `import` (PVE 8.4+): `.qcow2`, `.raw`, `.vmdk`, used by volume id.
    Import,
}

impl DownloadContent {
    /// The content type's name, also the volume name's folder.
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadContent::Iso => "iso",
            DownloadContent::Import => "import",
        }
    }

    /// True when `filename` has an extension Proxmox downloads as this
    /// content type.
    pub fn accepts(self, filename: &str) -> bool {
        let lower = filename.to_ascii_lowercase();
        match self {
            DownloadContent::Iso => lower.ends_with(".img") || lower.ends_with(".iso"),
            DownloadContent::Import => {
                [".qcow2", ".raw", ".vmdk"]
                    .iter()
                    .any(|e| filename.ends_with(e))
                    && filename
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.+=_".contains(c))
            }
        }
    }
}

/// `pvesh create /nodes/NODE/storage/STORAGE/download-url ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadUrl {
    /// The node that downloads.
    pub node: String,
    /// The storage it downloads to.
    pub storage: String,
    /// The URL.
    pub url: String,
    /// The file name on the storage.
    pub filename: String,
    /// The content type.
    pub content: DownloadContent,
    /// The expected SHA-256, lower-case hex.
    pub sha256: String,
}

impl DownloadUrl {
    /// The argv.
    pub fn argv(&self) -> Vec<String> {
        let path = [
            "/nodes/",
            &self.node,
            "/storage/",
            &self.storage,
            "/download-url",
        ]
        .concat();
        [
            "pvesh",
            "create",
            &path,
            "--url",
            &self.url,
            "--filename",
            &self.filename,
            "--content",
            self.content.as_str(),
            "--checksum",
            &self.sha256,
            "--checksum-algorithm",
            "sha256",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The volume id the download makes (`STORAGE:iso/NAME`).
    pub fn volid(&self) -> String {
        [
            self.storage.as_str(),
            ":",
            self.content.as_str(),
            "/",
            &self.filename,
        ]
        .concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_download() {
        let d = DownloadUrl {
            node: "pve".into(),
            storage: "local".into(),
            url: "https://example.com/a.img".into(),
            filename: "a.img".into(),
            content: DownloadContent::Iso,
            sha256: "ab".repeat(32),
        };
        let argv = d.argv();
        assert_eq!(
            argv[..3],
            ["pvesh", "create", "/nodes/pve/storage/local/download-url"]
        );
        assert_eq!(argv.last().map(String::as_str), Some("sha256"));
        assert_eq!(d.volid(), "local:iso/a.img");
    }

    #[test]
    fn knows_the_extensions_of_each_content_type() {
        assert!(DownloadContent::Iso.accepts("jammy.IMG"));
        assert!(!DownloadContent::Iso.accepts("debian.qcow2"));
        assert!(DownloadContent::Import.accepts("debian-12.qcow2"));
        assert!(!DownloadContent::Import.accepts("jammy.img"));
        assert!(!DownloadContent::Import.accepts("a b.qcow2"));
    }
}
