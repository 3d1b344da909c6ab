//! Snippets and storage content types: `pvesm set STORAGE --content`,
//! `pvesm status`, `pvesm path` of a snippet that is not written yet, and
//! the `cicustom` check of `qm create`/`qm set`.
//!
//! A snippet is a real file under the storage's folder in ROOT (where
//! `pvesm path` points), written there by the client as on a real host, or
//! a volume of the state (`pve-sim init --volume local:snippets/x`).
//!
//! Host behaviour emulated (pve-storage `PVE/Storage/Plugin.pm`
//! `decode_value`, `PVE/Storage.pm` `path`; CONTRACT §12.2, §13):
//! - content types outside Proxmox's list fail the format check; types a
//!   storage type cannot hold are dropped with the warning `storage does
//!   not support content type 'X'`; `none` cannot be combined.
//! - `pvesm path` computes a file's path without checking that it exists.
//! - `cicustom` names `STORAGE:snippets/FILE` volumes; `qm create`/`qm
//!   set` check only their format, and generating the cloud-init drive
//!   (`qm start`, `qm cloudinit update`, `qm set` adding the drive) reads
//!   them (qemu-server `Cloudinit.pm` `read_cloudinit_snippets_file`):
//!   `V is not in the snippets directory`, `can't find file 'V'`.

use crate::schema::Failure;
use crate::state::{Root, State, StorageDef, Volume};
use crate::Ctx;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every content type Proxmox knows (CONTRACT §12.2).
const CONTENT_TYPES: &[&str] = &[
    "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import",
];

/// The content types a storage type can hold.
fn supported(kind: &str) -> &'static [&'static str] {
    match kind {
        "dir" | "nfs" | "cifs" | "btrfs" => CONTENT_TYPES,
        "cephfs" => &["vztmpl", "iso", "backup", "snippets", "import"],
        _ => &["images", "rootdir"],
    }
}

/// A snippet volume `volname` of storage `s` on `node`, for its path.
fn file_of(node: &str, s: &StorageDef, volname: &str) -> Volume {
    Volume {
        storage: s.id.clone(),
        node: node.to_string(),
        volname: volname.to_string(),
        size: 0,
        content: "snippets".into(),
        format: "snippet".into(),
        vmid: None,
        ctime: 0,
    }
}

/// `pvesm path` of a snippet volume of a file storage, written or not.
pub fn snippet_path(root: &Root, st: &State, node: &str, volid: &str) -> Option<String> {
    let (sid, volname) = volid.split_once(':')?;
    let name = volname.strip_prefix("snippets/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let s = st.storage(sid).filter(|s| s.is_dir())?;
    let v = file_of(node, s, volname);
    Some(root.volume_path(st, &v).display().to_string())
}

/// True when the snippet `volid` exists as seen from `node`.
fn snippet_exists(root: &Root, st: &State, node: &str, volid: &str) -> bool {
    st.find_volume(node, volid).is_some()
        || snippet_path(root, st, node, volid).is_some_and(|p| std::path::Path::new(&p).is_file())
}

/// Generating a VM's cloud-init drive (`qm start`, `qm cloudinit update`,
/// `qm set` adding the drive) reads each `cicustom` volume of `config`, as
/// qemu-server's `read_cloudinit_snippets_file` does: the storage must
/// exist, the volume must be of the `snippets` type and its file must
/// exist (pve-storage `abs_filesystem_path`). The storage's content types
/// are not consulted; `qm create`/`qm set` check only the format.
pub fn generation_check(
    root: &Root,
    st: &State,
    node: &str,
    config: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    let Some(value) = config.get("cicustom") else {
        return Ok(());
    };
    for item in value.split(',') {
        let Some((_, volid)) = item.split_once('=') else {
            continue;
        };
        let (sid, volname) = volid
            .split_once(':')
            .ok_or_else(|| Failure::die(["unable to parse volume ID '", volid, "'"].concat()))?;
        if st.storage(sid).is_none() {
            return Err(Failure::die(
                ["storage '", sid, "' does not exist"].concat(),
            ));
        }
        if !volname.starts_with("snippets/") {
            return Err(Failure::die(
                [volid, " is not in the snippets directory"].concat(),
            ));
        }
        if !snippet_exists(root, st, node, volid) {
            return Err(Failure::die(["can't find file '", volid, "'"].concat()));
        }
    }
    Ok(())
}

/// The snippet files written under storage `sid`'s folder on `node` that
/// the state does not list, as content entries (`format: snippet`).
pub fn written(root: &Root, st: &State, node: &str, sid: &str) -> Vec<Value> {
    let Some(dir) = snippet_path(root, st, node, &[sid, ":snippets/x"].concat())
        .and_then(|p| std::path::Path::new(&p).parent().map(|d| d.to_path_buf()))
    else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let volid = [sid, ":snippets/", &name].concat();
            if st.find_volume(node, &volid).is_some() {
                return None;
            }
            Some(json!({"volid": volid, "content": "snippets", "format": "snippet", "size": meta.len(), "ctime": 0}))
        })
        .collect()
}

/// `pvesh get /storage`: each storage's configuration; a file storage's
/// `path` is its folder in ROOT as seen from `node` (where `pvesm path`
/// points).
pub fn storage_list(root: &Root, st: &State, node: &str) -> Value {
    let list: Vec<Value> = st
        .storages
        .iter()
        .map(|s| {
            let mut e = json!({"storage": s.id, "type": s.kind, "content": s.content.join(","), "shared": u8::from(s.shared), "digest": "0"});
            if let Some(dir) = snippet_path(root, st, node, &[s.id.as_str(), ":snippets/x"].concat())
                .and_then(|p| {
                    std::path::Path::new(&p)
                        .parent()
                        .and_then(|d| d.parent())
                        .map(|d| d.display().to_string())
                })
            {
                e["path"] = json!(dir);
            }
            e
        })
        .collect();
    json!(list)
}

/// `pvesm set STORAGE --content LIST`.
fn set_content(cx: &mut Ctx, sid: &str, list: &str) -> Result<(), Failure> {
    let mut wanted: Vec<String> = Vec::new();
    for t in list.split([',', ';', ' ']).filter(|t| !t.is_empty()) {
        if t != "none" && !CONTENT_TYPES.contains(&t) {
            return Err(Failure::die(
                [
                    "400 Parameter verification failed.\ncontent: invalid format - invalid content type '",
                    t,
                    "'\n",
                ]
                .concat(),
            ));
        }
        if !wanted.iter().any(|w| w == t) {
            wanted.push(t.to_string());
        }
    }
    if wanted.iter().any(|w| w == "none") && wanted.len() > 1 {
        return Err(Failure::die(
            "update storage failed: unable to combine 'none' with other content types",
        ));
    }
    let kind = cx
        .root
        .read()?
        .storage(sid)
        .map(|s| s.kind.clone())
        .ok_or_else(|| Failure::die(["storage '", sid, "' does not exist"].concat()))?;
    let ok = supported(&kind);
    let (keep, dropped): (Vec<String>, Vec<String>) = wanted
        .into_iter()
        .partition(|t| (t == "none" && ok.contains(&"iso")) || ok.contains(&t.as_str()));
    for t in &dropped {
        cx.err(&["storage does not support content type '", t, "'"].concat());
    }
    // Only file storages may hold nothing (`none`).
    if keep.is_empty() && !ok.contains(&"iso") {
        return Err(Failure::die(
            "update storage failed: storage does not support content type 'none'",
        ));
    }
    cx.root.update(|st| {
        if let Some(s) = st.storages.iter_mut().find(|s| s.id == sid) {
            s.content = keep.into_iter().filter(|t| t != "none").collect();
        }
        Ok(())
    })
}

/// `pvesm status [--content TYPE]`: the storages (those enabled for
/// `TYPE`), as the text table's columns; pve-sim models no usage.
fn status(cx: &mut Ctx, content: Option<&str>) -> Result<(), Failure> {
    if let Some(c) = content.filter(|c| !CONTENT_TYPES.contains(c)) {
        return Err(Failure::die(
            [
                "400 Parameter verification failed.\ncontent: invalid format - invalid content type '",
                c,
                "'\n",
            ]
            .concat(),
        ));
    }
    let st = cx.root.read()?;
    cx.out(
        "Name             Type     Status           Total            Used       Available        %",
    );
    for s in &st.storages {
        if content.is_some_and(|c| !s.content.iter().any(|x| x == c)) {
            continue;
        }
        cx.out(&format!(
            "{:<16} {:<8} {:<10} {:>16} {:>16} {:>16} {:>8}",
            s.id, s.kind, "active", 0, 0, 0, "0.00%"
        ));
    }
    Ok(())
}

/// The `pvesm` subcommands this module emulates; `None` when `args` is
/// none of them.
pub fn pvesm(cx: &mut Ctx, args: &[String]) -> Option<Result<(), Failure>> {
    match args {
        [cmd, sid, opt, list] if cmd == "set" && opt == "--content" => {
            Some(set_content(cx, sid, list))
        }
        [cmd] if cmd == "status" => Some(status(cx, None)),
        [cmd, opt, c] if cmd == "status" && opt == "--content" => Some(status(cx, Some(c))),
        [cmd, volid] if cmd == "path" => {
            let st = match cx.root.read() {
                Ok(st) => st,
                Err(e) => return Some(Err(e)),
            };
            if st.find_volume(&cx.node, volid).is_some() {
                return None;
            }
            let path = snippet_path(&cx.root, &st, &cx.node, volid)?;
            cx.out(&path);
            Some(Ok(()))
        }
        _ => None,
    }
}
