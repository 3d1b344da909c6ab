//! Images by URL (`image: {url, checksum, storage}`): which content type a
//! node downloads the file as, and the download itself, planned once per
//! node and storage (once for the cluster on a shared storage) as a
//! [`Download`] that the VMs importing it wait for. A file the storage
//! already lists is used as it is.
//!
//! Host facts (pve-storage `download_url`): the `iso` content type takes
//! `.img`/`.iso` names on every supported version; `import` takes
//! `.qcow2`/`.raw`/`.vmdk` from PVE 8.4 (pve-storage 8.3.6); the storage
//! must be a file storage enabled for that content type (`storage 'X' is
//! not configured for content-type 'iso'`).

use crate::diff::Planner;
use crate::observed::{NodeState, PveVersion, StorageOnNode};
use crate::problem::PlanProblem;
use crate::types::{Download, VmPlan};
use pvefleet_model::spec::{DiskSource, ImageRef, ImageUrl, VmSpec};
use pvefleet_model::{DownloadContent, DownloadUrl};
use std::borrow::Cow;

/// One download per (node, or none for a shared storage; storage; file).
pub(crate) type DownloadKey = (Option<String>, String, String);

/// The content type `url`'s file is downloaded as on a node of `version`.
pub fn download_content(url: &ImageUrl, version: PveVersion) -> Result<DownloadContent, String> {
    if DownloadContent::Iso.accepts(&url.filename) {
        return Ok(DownloadContent::Iso);
    }
    if !DownloadContent::Import.accepts(&url.filename) {
        return Err(format!(
            "'{}' ends in no extension Proxmox downloads a disk image as (.img, .iso; .qcow2, .raw, .vmdk on PVE 8.4+)",
            url.filename
        ));
    }
    if version.at_least(8, 4) {
        Ok(DownloadContent::Import)
    } else {
        Err(format!(
            "PVE {version} downloads only .img and .iso files (content 'iso'); .qcow2, .raw and .vmdk need PVE 8.4 (content 'import'): set 'filename:' to a .img name"
        ))
    }
}

impl Planner<'_> {
    /// The spec a VM whose image comes by URL is planned with: its image
    /// as the volume the node stores it as, downloaded first unless the
    /// storage lists it already (recorded in `vp.download`). Other specs
    /// are returned as they are.
    pub(crate) fn url_image<'s>(
        &mut self,
        spec: &'s VmSpec,
        node: &NodeState,
        version: PveVersion,
        vp: &mut VmPlan,
    ) -> Result<Cow<'s, VmSpec>, PlanProblem> {
        let Some(url) = &spec.image_url else {
            return Ok(Cow::Borrowed(spec));
        };
        let problem = |reason: String| PlanProblem::DownloadImpossible {
            url: url.url.clone(),
            node: node.name.clone(),
            reason,
        };
        let content = download_content(url, version).map_err(problem)?;
        let observed = self.input.observed;
        match observed.storage_on(&node.name, &url.storage) {
            StorageOnNode::Missing => {
                return Err(problem(format!(
                    "the node has no storage '{}'",
                    url.storage
                )))
            }
            StorageOnNode::Present(f) if !f.holds(content.as_str()) => {
                let mut types = f.content.clone().unwrap_or_default();
                types.push(content.as_str().to_string());
                return Err(problem(format!(
                    "storage '{}' is not configured for content-type '{}'; enable it with 'pvesm set {} --content {}' (a file storage such as local)",
                    url.storage,
                    content.as_str(),
                    url.storage,
                    types.join(",")
                )));
            }
            _ => {}
        }
        let command = DownloadUrl {
            node: node.name.clone(),
            storage: url.storage.clone(),
            url: url.url.clone(),
            filename: url.filename.clone(),
            content,
            sha256: url.sha256.clone(),
        };
        let volid = command.volid();
        let listed = node
            .storages
            .get(&url.storage)
            .is_some_and(|vols| vols.iter().any(|v| v.volid == volid));
        if !listed {
            vp.download = Some(self.download(command).map_err(problem)?);
        }
        let mut spec = spec.clone();
        spec.source = DiskSource::Image(ImageRef::Volume {
            storage: url.storage.clone(),
            volname: [content.as_str(), "/", &url.filename].concat(),
        });
        Ok(Cow::Owned(spec))
    }

    /// The index of the download of `command`, planned once per node and
    /// storage (per storage when the cluster shares it). Two URLs or
    /// checksums for one file cannot both be right.
    fn download(&mut self, command: DownloadUrl) -> Result<usize, String> {
        let shared = self
            .input
            .observed
            .shared_storages
            .contains(&command.storage);
        let key: DownloadKey = (
            (!shared).then(|| command.node.clone()),
            command.storage.clone(),
            command.filename.clone(),
        );
        if let Some(&i) = self.downloads.get(&key) {
            let planned = &self.plan.downloads[i].command;
            if planned.url != command.url || planned.sha256 != command.sha256 {
                return Err(format!(
                    "another VM downloads {} to the same file {} (with {}); give one of them another 'filename'",
                    planned.url,
                    command.volid(),
                    if planned.url != command.url { "another URL" } else { "another checksum" }
                ));
            }
            return Ok(i);
        }
        self.plan.downloads.push(Download {
            node: command.node.clone(),
            volid: command.volid(),
            shared,
            command,
        });
        let i = self.plan.downloads.len() - 1;
        self.downloads.insert(key, i);
        Ok(i)
    }

    /// The content type of `volid` on `node` when a download of this plan
    /// makes it.
    pub(crate) fn downloading(&self, node: &str, volid: &str) -> Option<DownloadContent> {
        self.plan
            .downloads
            .iter()
            .find(|d| d.volid == volid && (d.shared || d.node == node))
            .map(|d| d.command.content)
    }
}
