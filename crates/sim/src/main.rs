//! The `pve-sim` binary; see the library documentation.

fn main() {
    std::process::exit(pve_sim::main_with(std::env::args().collect()));
}
