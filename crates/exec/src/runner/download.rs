//! Images by URL: each planned [`Download`] runs once, on its node, for all
//! the VMs that import it (on a shared storage, for every node's VMs).
//!
//! `pvesh create .../download-url` exits 0 even when its task failed
//! (CONTRACT §12.1), so success is what the storage lists afterwards: the
//! volume present with a size. Otherwise the VMs fail with the task's
//! error (`checksum mismatch: ...`, `download failed: ...`).

use super::Lane;
use pvefleet_model::{Command, Pvesh};
use pvefleet_plan::observed::parse_content;
use pvefleet_plan::types::Download;

impl Lane {
    /// Runs `plan.downloads[i]` once; later callers wait for the first and
    /// get its outcome.
    pub(super) async fn download(&self, i: usize) -> Result<(), String> {
        let Some((d, done)) = self.pre.downloads.get(i) else {
            return Err("the image download is not in the plan".into());
        };
        done.get_or_init(|| async { self.run_download(d).await })
            .await
            .clone()
    }

    async fn run_download(&self, d: &Download) -> Result<(), String> {
        let transport = match self.pre.transports.get(&d.node) {
            Some(t) => t.clone(),
            None => self.transport.clone(),
        };
        let url = &d.command.url;
        self.say(&d.node, format!("downloading {url} to {}", d.volid));
        let out = transport
            .run(Command::DownloadUrl(d.command.clone()).argv())
            .await
            .map_err(|e| format!("the download of {url} could not be sent: {e}"))?;
        // The task's error (one line), or a refusal before the task: its
        // lines without the usage line pvesh appends to parameter errors.
        let said: Vec<&str> = out
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("pvesh "))
            .collect();
        let task_error = (!said.is_empty()).then(|| said.join(" "));
        let listing = transport
            .run(Command::Pvesh(Pvesh::storage_content(&d.node, &d.command.storage)).argv())
            .await
            .map_err(|e| format!("the storage could not be read after the download: {e}"))?;
        let vols = parse_content(listing.stdout.as_bytes()).unwrap_or_default();
        let size = vols
            .iter()
            .find(|v| v.volid == d.volid)
            .and_then(|v| v.size);
        match size {
            Some(s) if s > 0 && out.success() => Ok(()),
            _ => Err(format!(
                "the download of {url} to {} failed: {}",
                d.volid,
                task_error
                    .unwrap_or_else(|| "the storage does not list the file afterwards".into())
            )),
        }
    }
}
