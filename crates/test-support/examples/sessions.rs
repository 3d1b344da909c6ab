//! Timing probe: how fast one multiplexed connection opens sessions.
//! `cargo run --release -p pvefleet-test-support --example sessions -- PATH_TO_PVEFLEET`
use std::process::Command;
use std::time::Instant;

fn main() {
    let sim = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("path of pvefleet or pve-sim"),
    );
    let bed = pvefleet_test_support::TestBed::start(&sim, &["pve"], &[]).expect("bed");
    let ctl = bed.dir.path().join("cm");
    let ssh = |extra: &[&str]| {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(&bed.ssh_config)
            .arg("-o")
            .arg(format!("ControlPath={}", ctl.display()))
            .args(extra);
        c
    };
    assert!(ssh(&["-M", "-N", "-f", "pve"])
        .status()
        .expect("master")
        .success());
    for cmd in ["true", "sleep 0.5"] {
        let t = Instant::now();
        let hs: Vec<_> = (0..8)
            .map(|_| ssh(&["pve", cmd]).spawn().expect("spawn"))
            .collect();
        for mut h in hs {
            h.wait().expect("wait");
        }
        println!(
            "8 concurrent `{cmd}` over one master: {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    let cpu = || -> u64 {
        let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<u64> = s
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        f.iter().take(3).sum::<u64>()
            + f.get(5).copied().unwrap_or(0)
            + f.get(6).copied().unwrap_or(0)
    };
    let (c0, t) = (cpu(), Instant::now());
    for _ in 0..20 {
        ssh(&["pve", "true"]).status().expect("run");
    }
    let busy = (cpu() - c0) as f64 / 100.0;
    println!(
        "20 sequential `true`: {:.2} s wall, {busy:.2} s CPU (all processes)",
        t.elapsed().as_secs_f64()
    );
    // Eight masters, one session each.
    let masters: Vec<_> = (0..8)
        .map(|i| bed.dir.path().join(format!("cm{i}")))
        .collect();
    for m in &masters {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(&bed.ssh_config)
            .arg("-o")
            .arg(format!("ControlPath={}", m.display()))
            .args(["-M", "-N", "-f", "pve"]);
        assert!(c.status().expect("master").success());
    }
    let t = Instant::now();
    let hs: Vec<_> = masters
        .iter()
        .map(|m| {
            let mut c = Command::new("ssh");
            c.arg("-F")
                .arg(&bed.ssh_config)
                .arg("-o")
                .arg(format!("ControlPath={}", m.display()))
                .args(["pve", "true"]);
            c.spawn().expect("spawn")
        })
        .collect();
    for mut h in hs {
        h.wait().expect("wait");
    }
    println!(
        "8 concurrent `true` over 8 masters: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // The same session with sh as the remote command, no login shell rc.
    let t = Instant::now();
    for _ in 0..8 {
        ssh(&["pve", "exec /bin/true"]).status().expect("run");
    }
    println!(
        "8 sequential `exec /bin/true`: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let _ = ssh(&["-O", "exit", "pve"]).status();
    for m in &masters {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(&bed.ssh_config)
            .arg("-o")
            .arg(format!("ControlPath={}", m.display()))
            .args(["-O", "exit", "pve"]);
        let _ = c.status();
    }
}
