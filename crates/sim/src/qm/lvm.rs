//! What lvm2 prints when Proxmox allocates or grows a logical volume:
//! `lvcreate`'s and `lvextend`'s lines on stdout and, on an over-provisioned
//! thin pool (the `thin_overprovisioned` setting), the WARNING lines
//! CONTRACT §2 quotes on stderr before them. Where those land for qm's
//! caller follows the execution model ([`Ctx::tool_err`]).
//!
//! Sizes are printed as lvm2's `display_size` does, with the decimal comma
//! of the host §2 quotes (lvm2 follows the locale of the session).

use super::*;

/// lvm2's default extent size.
const EXTENT: u64 = 4 << 20;

/// The installer's volume group `pve` (thin pool `data`), just under
/// 100 GiB.
const VG_BYTES: u64 = (100 << 30) - EXTENT;

/// `display_size`: two decimals in the largest binary unit the size
/// reaches, `<` in front when the shown value rounds the size up.
pub(super) fn size(bytes: u64) -> String {
    let units = [
        ("PiB", 1u64 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    let (unit, factor) = units
        .iter()
        .copied()
        .find(|(_, f)| bytes >= *f)
        .unwrap_or(("B", 1));
    let hundredths = (bytes as u128 * 100 + factor as u128 / 2) / factor as u128;
    let exact = hundredths * factor as u128 == bytes as u128 * 100;
    let rounded_up = hundredths * factor as u128 > bytes as u128 * 100;
    let number = format!("{},{:02}", hundredths / 100, hundredths % 100);
    let prefix = if !exact && rounded_up { "<" } else { "" };
    [prefix, &number, " ", unit].concat()
}

fn kind<'a>(st: &'a State, storage: &str) -> &'a str {
    st.storage(storage).map(|s| s.kind.as_str()).unwrap_or("")
}

/// The over-provisioning warnings of `lvcreate`/`lvextend` on a thin pool
/// whose volumes (those pve-sim models plus the setting's) exceed it.
fn overprovisioned(cx: &mut Ctx, st: &State, storage: &str, node: &str) {
    let Some(others) = st.settings.thin_overprovisioned else {
        return;
    };
    if kind(st, storage) != "lvmthin" {
        return;
    }
    let modelled: u64 = st.volumes_on(node, storage).map(|v| v.size).sum();
    let sum = others + modelled;
    if sum <= VG_BYTES {
        return;
    }
    cx.tool_err(
        &[
            "  WARNING: Sum of all thin volume sizes (",
            &size(sum),
            ") exceeds the size of thin pool pve/data and the size of whole volume group (",
            &size(VG_BYTES),
            ").",
        ]
        .concat(),
    );
    cx.tool_err(
        "  WARNING: You have not turned on protection against thin pools running out of space.",
    );
    cx.tool_err("  WARNING: Set activation/thin_pool_autoextend_threshold below 100 to trigger automatic extension of thin pools before they get full.");
}

/// The name lvm2 knows a volume by (`vm-100-disk-0`).
fn lv_name(vol: &Volume) -> &str {
    vol.volname.rsplit('/').next().unwrap_or(&vol.volname)
}

/// What `lvcreate` prints for a new volume (nothing off LVM).
pub(super) fn created(cx: &mut Ctx, st: &State, vol: &Volume) {
    if !matches!(kind(st, &vol.storage), "lvm" | "lvmthin") {
        return;
    }
    overprovisioned(cx, st, &vol.storage, &vol.node);
    cx.out(&["  Logical volume \"", lv_name(vol), "\" created."].concat());
}

/// What growing a volume prints: `lvextend`'s lines on LVM, qemu-img's
/// on a file storage.
pub(super) fn resized(cx: &mut Ctx, st: &State, vol: &Volume, from: u64) {
    match kind(st, &vol.storage) {
        "lvm" | "lvmthin" => {
            overprovisioned(cx, st, &vol.storage, &vol.node);
            let lv = ["pve/", lv_name(vol)].concat();
            let extents = |b: u64| b.div_ceil(EXTENT).to_string();
            cx.out(
                &[
                    "  Size of logical volume ",
                    &lv,
                    " changed from ",
                    &size(from),
                    " (",
                    &extents(from),
                    " extents) to ",
                    &size(vol.size),
                    " (",
                    &extents(vol.size),
                    " extents).",
                ]
                .concat(),
            );
            cx.out(&["  Logical volume ", &lv, " successfully resized."].concat());
        }
        _ if st
            .storage(&vol.storage)
            .is_some_and(crate::state::StorageDef::is_dir) =>
        {
            cx.out("Image resized.");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_as_lvm2_prints_them() {
        assert_eq!(size(181 << 30), "181,00 GiB");
        assert_eq!(size((100 << 30) - (4 << 20)), "<100,00 GiB");
        assert_eq!(size(4 << 20), "4,00 MiB");
        assert_eq!(size(1536 << 20), "1,50 GiB");
        assert_eq!(size(2 << 40), "2,00 TiB");
    }
}
