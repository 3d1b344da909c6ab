//! What a host checks in a drive option before it touches storage: the
//! rules `parse_drive` keeps between keys (qemu-server Drive.pm), the
//! `import-from` syntax and `cleanup_drive_path` (API2/Qemu.pm
//! `check_drive_param`), and `--cdrom` as `ide2` (`resolve_cdrom_alias`).

use super::*;

/// Perl truth of an optional value: absent, `""` and `"0"` are false, and
/// a boolean word is read as `parse_boolean` reads it (`off` is false).
fn truthy(d: &BTreeMap<String, String>, k: &str) -> bool {
    d.get(k)
        .is_some_and(|v| schema::parse_bool(v).unwrap_or(schema::perl_true(v)))
}

/// `parse_drive`'s checks between keys. On failure the host warns (for
/// some of them) and reports `unable to parse drive options`; the error
/// holds the warning line, possibly empty.
pub(super) fn rules(key: &str, d: &BTreeMap<String, String>) -> Result<(), String> {
    // A `bpsX` becomes `mbpsX`, so both at once is a conflict.
    for o in ["bps", "bps_rd", "bps_wr"] {
        if d.contains_key(o) && d.contains_key(&["m", o].concat()) {
            return Err(["both ", o, " and m", o, " specified"].concat());
        }
    }
    let mbps = |o: &str| truthy(d, o) || d.contains_key(&o[1..]);
    for (o, r) in [
        ("mbps_max", "mbps"),
        ("mbps_rd_max", "mbps_rd"),
        ("mbps_wr_max", "mbps_wr"),
    ] {
        if truthy(d, o) && !mbps(r) {
            return Err([o, " requires ", r].concat());
        }
    }
    for (o, r) in [
        ("bps_max_length", "mbps_max"),
        ("bps_rd_max_length", "mbps_rd_max"),
        ("bps_wr_max_length", "mbps_wr_max"),
        ("iops_max_length", "iops_max"),
        ("iops_rd_max_length", "iops_rd_max"),
        ("iops_wr_max_length", "iops_wr_max"),
    ] {
        if truthy(d, o) && !truthy(d, r) {
            return Err([o, " requires ", r].concat());
        }
    }
    let bad = ((mbps("mbps_rd") || mbps("mbps_wr")) && mbps("mbps"))
        || ((truthy(d, "iops_rd") || truthy(d, "iops_wr")) && truthy(d, "iops"))
        || (d.get("media").map(String::as_str) == Some("cdrom")
            && (truthy(d, "snapshot") || truthy(d, "format") || key.starts_with("virtio")));
    if bad {
        return Err(String::new());
    }
    Ok(())
}

/// The failure of a drive [`rules`] refuses.
pub(super) fn unparsable(key: &str, warning: &str, cmd: &str) -> Failure {
    let mut f = param_fail(key, "unable to parse drive options", cmd);
    if !warning.is_empty() {
        f.stderr = [warning, "\n", &f.stderr].concat();
    }
    f
}

/// `import-from` needs `STORAGE:0` (any spelling of zero), and an EFI disk
/// or TPM state its layout keys.
pub(super) fn import_syntax(key: &str, d: &BTreeMap<String, String>, cmd: &str) -> R {
    if !truthy(d, "import-from") {
        return Ok(());
    }
    let file = d.get("file").map(String::as_str).unwrap_or("");
    let zero = schema::new_disk_re()
        .and_then(|r| r.captures(file))
        .and_then(|c| {
            c.get(3)
                .map(|m| m.as_str().parse::<f64>().ok() == Some(0.0))
        });
    if zero != Some(true) {
        return Err(param_fail(
            key,
            "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>",
            cmd,
        ));
    }
    let needed: &[&str] = match key {
        "efidisk0" => &["efitype", "pre-enrolled-keys"],
        "tpmstate0" => &["version"],
        _ => &[],
    };
    for k in needed {
        if !d.contains_key(*k) {
            return Err(param_fail(
                key,
                &["need to specify '", k, "' when using 'import-from'"].concat(),
                cmd,
            ));
        }
    }
    Ok(())
}

/// `cleanup_drive_path`: a path outside `/dev` becomes the volume of the
/// storage holding it (pve-sim knows `local` at `/var/lib/vz`), an ISO a
/// CD-ROM unless `media` says otherwise; `none` and `cdrom` are CD-ROMs.
pub(super) fn cleanup_path(key: &str, d: &mut BTreeMap<String, String>, cmd: &str) -> R {
    let file = d.get("file").cloned().unwrap_or_default();
    if file.starts_with('/') && !file.starts_with("/dev/") {
        let mapped = [
            ("/var/lib/vz/template/iso/", "local:iso/", "iso"),
            ("/var/lib/vz/images/", "local:", "images"),
            ("/var/lib/vz/import/", "local:import/", "import"),
            ("/var/lib/vz/snippets/", "local:snippets/", "snippets"),
        ]
        .iter()
        .find_map(|(dir, prefix, vtype)| {
            file.strip_prefix(dir)
                .filter(|rest| !rest.is_empty())
                .map(|rest| ([*prefix, rest].concat(), *vtype))
        });
        let Some((volid, vtype)) = mapped else {
            return Err(param_fail(
                key,
                &["unable to associate path '", &file, "' to any storage"].concat(),
                cmd,
            ));
        };
        if vtype == "iso" && !d.contains_key("media") {
            d.insert("media".into(), "cdrom".into());
        }
        let expected = match d.get("media").map(String::as_str) {
            Some("disk") => Some("images"),
            Some("cdrom") => Some("iso"),
            _ => None,
        };
        if let Some(e) = expected.filter(|e| *e != vtype) {
            return Err(param_fail(
                key,
                &["unexpected media type (", vtype, " != ", e, ")"].concat(),
                cmd,
            ));
        }
        d.insert("file".into(), volid);
    }
    if (file == "none" || file == "cdrom") && !d.contains_key("media") {
        d.insert("media".into(), "cdrom".into());
    }
    Ok(())
}

/// `--cdrom X` is `--ide2 X,media=cdrom` (no `media` added when X has one).
pub(super) fn cdrom_alias(params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut p = params.clone();
    if let Some(c) = p.remove("cdrom").filter(|c| schema::perl_true(c)) {
        let v = if c.contains("media=") {
            c
        } else {
            [c.as_str(), ",media=cdrom"].concat()
        };
        p.insert("ide2".into(), v);
    }
    p
}

/// Renders a drive as `print_property_string` does: the volume first,
/// then the other keys sorted.
pub(super) fn print(d: &BTreeMap<String, String>) -> String {
    let mut s = d.get("file").cloned().unwrap_or_default();
    for (k, v) in d.iter().filter(|(k, _)| *k != "file") {
        s.push(',');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// The VNC clipboard only works with the std, cirrus, vmware, virtio and
/// qxl adapters (`assert_clipboard_config`).
pub(super) fn vga_clipboard(vga: &str) -> R {
    let Some(fdef) = schema::format_of("set", "vga") else {
        return Ok(());
    };
    let v = parse_property_string(fdef, vga).unwrap_or_default();
    let ty = v.get("type").filter(|t| schema::perl_true(t));
    let ok_type = |t: &str| {
        ["std", "cirrus", "vmware", "virtio", "qxl"]
            .iter()
            .any(|p| t.starts_with(p))
    };
    match (v.get("clipboard").map(String::as_str), ty) {
        (Some("vnc"), Some(t)) if !ok_type(t) => Err(Failure::die(
            ["vga type ", t, " is not compatible with VNC clipboard"].concat(),
        )),
        _ => Ok(()),
    }
}
