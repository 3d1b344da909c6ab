//! A mistake in `defaults:` is reported once, however many VMs take the
//! value.

use pvefleet_config::parse;

#[test]
fn an_error_of_defaults_is_said_once_for_all_vms() {
    let text = "proxmox: {host: pve}\ndefaults:\n  image: local:iso/x.img\n  disks: [{size: 1G, iothread: true}]\n  user_data: {write_files: [{path: /a, permissions: 0644}]}\nvms:\n  - name: a\n  - name: b\n  - name: c\n";
    let errors = match parse("t.yml", text, &|_| Err("no files".into())) {
        Ok(_) => panic!("accepted"),
        Err(r) => r.errors,
    };
    let at: Vec<(u32, u32)> = errors
        .iter()
        .map(|e| e.span.map_or((0, 0), |s| (s.line, s.col)))
        .collect();
    assert_eq!(at, [(4, 32), (5, 53)], "{errors:#?}");
}
