//! `pvesh create /nodes/NODE/storage/STORAGE/download-url`: a `download`
//! task that fetches an image into a file storage.
//!
//! The emulated host has no network: a URL's content comes from
//! `ROOT/urls.json`, `{"URL": {"file": "PATH"}}` (a file whose bytes are
//! the content, PATH relative to ROOT or absolute) or `{"URL": {"sha256":
//! "HEX", "size": BYTES}}` (content described only). Any other URL fails
//! as an unreachable one does.
//!
//! As on a real host (pve-storage `download_url`, pve-common
//! `download_file_from_url`, CONTRACT §1.3, §12.1): parameter and storage
//! checks fail before the task (non-zero exit); inside the task a
//! checksum mismatch or a failed fetch leaves no file, prints the error
//! on stderr, and pvesh still exits 0 and prints the UPID. The task log
//! is kept in `ROOT/tasks/NODE/`.

use crate::schema::Failure;
use crate::state::{now_ms, State, Volume};
use crate::Ctx;
use serde_json::Value;
use sha2::Digest;
use std::collections::BTreeMap;

const PARAMS: &[&str] = &[
    "url",
    "content",
    "filename",
    "checksum",
    "checksum-algorithm",
    "compression",
    "verify-certificates",
    "output-format",
];

fn param_error(errors: &[(String, String)]) -> Failure {
    let mut s = String::from("400 Parameter verification failed.\n");
    for (k, why) in errors {
        s.push_str(&[k.as_str(), ": ", why, "\n"].concat());
    }
    s.push_str("\npvesh create <api_path> --url <string> --content <string> --filename <string> [OPTIONS] [FORMAT_OPTIONS]\n");
    Failure {
        stderr: s,
        exit: 255,
    }
}

/// The options of the command line (`--key value`).
fn options(args: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let Some(key) = args[i].strip_prefix("--") else {
            return Err(Failure::die("400 too many arguments"));
        };
        if !PARAMS.contains(&key) {
            return Err(param_error(&[(key.to_string(), "property is not defined in schema and the schema does not allow additional properties".into())]));
        }
        let Some(v) = args.get(i + 1) else {
            return Err(Failure::die(
                ["option --", key, " requires an argument"].concat(),
            ));
        };
        out.insert(key.to_string(), v.clone());
        i += 2;
    }
    Ok(out)
}

/// The checks the API schema makes before any code runs.
fn verify(st: &State, o: &BTreeMap<String, String>) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for k in ["url", "content", "filename"] {
        if !o.contains_key(k) {
            errors.push((
                k.to_string(),
                "property is missing and it is not optional".to_string(),
            ));
        }
    }
    if let Some(u) = o.get("url") {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            errors.push((
                "url".into(),
                "value does not match the regex pattern".into(),
            ));
        }
    }
    // `import` joined the enumeration in pve-storage 8.2.8 (PVE 8.3).
    let contents: &[&str] = if st.at_least(8, 3) {
        &["iso", "vztmpl", "import"]
    } else {
        &["iso", "vztmpl"]
    };
    if let Some(c) = o.get("content") {
        if !contents.contains(&c.as_str()) {
            errors.push(("content".into(), crate::schema::not_in_enum(c, contents)));
        }
    }
    if o.get("filename").is_some_and(|f| f.len() > 255) {
        errors.push((
            "filename".into(),
            "value may only be 255 characters long".into(),
        ));
    }
    let algos = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];
    if let Some(a) = o.get("checksum-algorithm") {
        if !algos.contains(&a.as_str()) {
            errors.push((
                "checksum-algorithm".into(),
                crate::schema::not_in_enum(a, &algos),
            ));
        }
    }
    for (k, req) in [
        ("checksum", "checksum-algorithm"),
        ("checksum-algorithm", "checksum"),
    ] {
        if o.contains_key(k) && !o.contains_key(req) {
            errors.push((
                req.to_string(),
                ["missing property required by '", k, "'"].concat(),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(param_error(&errors))
    }
}

/// `PVE::Storage::normalize_content_filename`.
fn normalize(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The volume name for `filename` as `content`, or the real refusal.
fn volname(st: &State, content: &str, filename: &str) -> Result<(String, String), Failure> {
    let lower = filename.to_ascii_lowercase();
    match content {
        "iso" => {
            let base_ok =
                filename.len() > 4 && (lower.ends_with(".iso") || lower.ends_with(".img"));
            if !base_ok {
                return Err(param_error(&[(
                    "filename".into(),
                    "wrong file extension".into(),
                )]));
            }
            Ok((["iso/", filename].concat(), "iso".into()))
        }
        "import" => {
            // `.ova` only before pve-storage 8.3.6 (PVE 8.4).
            let exts: &[&str] = if st.at_least(8, 4) {
                &["ova", "qcow2", "raw", "vmdk"]
            } else {
                &["ova"]
            };
            let safe = filename
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.+=_".contains(c));
            let ext = filename.rsplit_once('.');
            match ext {
                Some((b, e)) if safe && !b.is_empty() && exts.contains(&e) => {
                    Ok((["import/", filename].concat(), e.to_string()))
                }
                _ => Err(param_error(&[(
                    "filename".into(),
                    "invalid filename or wrong extension".into(),
                )])),
            }
        }
        _ => Err(Failure::die(
            "pve-sim: only iso and import downloads are emulated",
        )),
    }
}

/// The content behind `url`: its SHA-256 and size, when the host can reach it.
fn fetch(cx: &Ctx, url: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(cx.root.0.join("urls.json")).ok()?;
    let map: BTreeMap<String, Value> = serde_json::from_str(&text).ok()?;
    let e = map.get(url)?;
    if let Some(file) = e.get("file").and_then(Value::as_str) {
        let bytes = std::fs::read(cx.root.0.join(file)).ok()?;
        let hex: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        return Some((hex, bytes.len() as u64));
    }
    let sha = e.get("sha256")?.as_str()?.to_ascii_lowercase();
    Some((sha, e.get("size")?.as_u64()?))
}

/// `pvesh create /nodes/NODE/storage/STORAGE/download-url ARGS`.
pub fn download_url(
    cx: &mut Ctx,
    node: &str,
    storage: &str,
    args: &[String],
) -> Result<(), Failure> {
    let o = options(args)?;
    let st = cx.root.read()?;
    if st.node(node).is_none() {
        return Err(Failure::die(format!(
            "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
        )));
    }
    verify(&st, &o)?;
    let def = st
        .storage(storage)
        .cloned()
        .ok_or_else(|| Failure::die(["storage '", storage, "' does not exist"].concat()))?;
    if !def.is_dir() {
        return Err(Failure::die(
            [
                "can't upload to storage type '",
                &def.kind,
                "', not a file based storage!",
            ]
            .concat(),
        ));
    }
    let content = o.get("content").cloned().unwrap_or_default();
    if !def.content.contains(&content) {
        return Err(Failure::die(
            [
                "storage '",
                storage,
                "' is not configured for content-type '",
                &content,
                "'",
            ]
            .concat(),
        ));
    }
    let filename = normalize(o.get("filename").map(String::as_str).unwrap_or(""));
    let (volname, format) = volname(&st, &content, &filename)?;
    let url = o.get("url").cloned().unwrap_or_default();
    let vol = Volume {
        storage: storage.to_string(),
        node: node.to_string(),
        volname,
        size: 0,
        content: content.clone(),
        format,
        vmid: None,
        ctime: now_ms() / 1000,
    };
    let dest = cx.root.volume_path(&st, &vol).display().to_string();
    let pid = std::process::id();
    // pstart: the worker's start in clock ticks; unique per task here.
    static TASKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = TASKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pstart = (now_ms() / 10).wrapping_add(n) & 0xffff_ffff;
    let upid = format!(
        "UPID:{node}:{pid:08X}:{pstart:08X}:{:08X}:download:{filename}:root@pam:",
        now_ms() / 1000
    );
    let existing = st.find_volume(node, &vol.volid()).is_some();
    drop(st);
    let mut log = vec![format!("downloading {url} to {dest}")];
    let expect = o.get("checksum").map(|c| c.to_ascii_lowercase());
    let result = match (fetch(cx, &url), existing) {
        (Some((sha, _)), true) => match &expect {
            Some(e) if *e == sha => {
                log.push("calculating checksum of existing file...OK, got correct file already, no need to download".into());
                Ok(None)
            }
            Some(e) => Err(format!("checksum mismatch: got '{sha}' != expect '{e}', aborting")),
            None => Err(format!("refusing to override existing file '{dest}'")),
        },
        (None, _) => Err(format!("download failed: command 'wget --progress=dot:giga -O {dest}.tmp_dwnl.{pid} {url}' failed: exit code 4")),
        (Some((sha, size)), false) => match &expect {
            Some(e) if *e != sha => {
                log.push("calculating checksum...".into());
                Err(format!("checksum mismatch: got '{sha}' != expect '{e}'"))
            }
            _ => {
                if expect.is_some() {
                    log.push("calculating checksum...OK, checksum verified".into());
                }
                log.push(format!("download of '{url}' to '{dest}' finished"));
                Ok(Some(size))
            }
        },
    };
    if let Ok(Some(size)) = result {
        let vol = Volume { size, ..vol };
        let path = std::path::PathBuf::from(&dest);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(size))
            .map_err(|e| {
                Failure::die(["unable to rename temporary file: ", &e.to_string()].concat())
            })?;
        cx.root.update(|st| {
            st.volumes
                .retain(|v| v.volid() != vol.volid() || v.node != vol.node);
            st.volumes.push(vol);
            Ok(())
        })?;
    }
    for l in &log {
        cx.out(l);
    }
    match &result {
        Ok(_) => log.push("TASK OK".into()),
        Err(e) => {
            cx.err(e);
            log.push(["TASK ERROR: ", e].concat());
        }
    }
    let dir = cx.root.0.join("tasks").join(node);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(upid.replace(':', "_")), log.join("\n") + "\n");
    // The UPID last; a failed task still exits 0 (CONTRACT §12.1).
    match o.get("output-format").map(String::as_str) {
        Some("json" | "json-pretty") => cx.out(&["\"", &upid, "\""].concat()),
        _ => cx.out(&upid),
    }
    Ok(())
}
