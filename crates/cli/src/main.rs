//! pvefleet: declarative Proxmox VE fleets over SSH.
//!
//! The binary is also the built-in emulated host: called through a link
//! named `qm`, `pvesh`, `pvesm` or `pveversion` it runs pve-sim, which is how
//! `--simulate` works without a Proxmox node.

mod args;
mod cloud_init;
mod commands;
mod connect;
mod diag;
mod interrupt;
mod output;
mod progress;
mod report;
mod simulate;
mod table;
mod ui;

use clap::Parser;

/// Exit statuses (documented in `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything converged.
    Ok,
    /// A VM failed or is in conflict.
    Failed,
    /// Invalid input, or a refused host key: nothing was changed.
    Invalid,
    /// `--detailed-exitcode`: something would change, or has drifted.
    Changes,
    /// Interrupted by SIGINT or SIGTERM (128 + 2).
    Interrupted,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Invalid | ExitStatus::Changes => 2,
            ExitStatus::Interrupted => 130,
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let prog = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    if prog == "pve-sim" || pve_sim::PROGRAMS.contains(&prog.as_str()) {
        std::process::exit(pve_sim::main_with(argv));
    }
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage_error(&argv, e)),
    };
    ui::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let status = ui::Failure::new(
                ExitStatus::Failed,
                "internal",
                format!("cannot start the runtime: {}", ui::io_reason(&e)),
            )
            .report();
            std::process::exit(status.code());
        }
    };
    let status = runtime.block_on(async {
        interrupt::install();
        commands::run(cli).await
    });
    std::process::exit(status.code());
}

/// Prints a command-line error (clap's text, or with `--output json` a JSON
/// object on stdout) and returns its exit code (2; 0 for --help and
/// --version).
fn usage_error(argv: &[String], e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let json = argv
        .windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || argv.iter().any(|a| a == "--output=json");
    let help = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !json || help {
        let _ = e.print();
        return e.exit_code();
    }
    let text = e.render().to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let hints: Vec<&str> = text
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ui::print_json(&serde_json::json!({
        "error": message,
        "code": "usage",
        "location": null,
        "hints": hints,
    }));
    e.exit_code()
}
