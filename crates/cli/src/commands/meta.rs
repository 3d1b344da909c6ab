//! `completions` and `man`: what shells and `man` need, generated from the
//! same argument definitions as `--help`.

use crate::args::Cli;
use crate::ui::{self, Failure};
use crate::ExitStatus;
use clap::CommandFactory;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Prints the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell) -> ExitStatus {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "pvefleet", &mut out);
    let _ = out.flush();
    ExitStatus::Ok
}

/// The man page of `cmd` (roff).
fn page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    Ok(buf)
}

/// Prints pvefleet(1), or writes it and a page per subcommand into `dir`.
pub fn man(dir: Option<&Path>) -> ExitStatus {
    let mut cmd = Cli::command();
    cmd.build();
    let Some(dir) = dir else {
        return match page(cmd) {
            Ok(buf) => {
                let _ = std::io::stdout().lock().write_all(&buf);
                ExitStatus::Ok
            }
            Err(e) => Failure::new(
                ExitStatus::Failed,
                "io",
                format!("cannot write the manual page: {}", ui::io_reason(&e)),
            )
            .report(),
        };
    };
    let mut pages = vec![("pvefleet.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("pvefleet-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    let mut written = Vec::new();
    for (file, c) in pages {
        let path = dir.join(&file);
        if let Err(e) = std::fs::create_dir_all(dir)
            .and_then(|_| page(c))
            .and_then(|buf| std::fs::write(&path, buf))
        {
            return Failure::new(
                ExitStatus::Failed,
                "io",
                format!("cannot write {}: {}", path.display(), ui::io_reason(&e)),
            )
            .at(json!({"file": path}))
            .report();
        }
        written.push(path);
    }
    if ui::ui().json {
        ui::print_json(&json!({ "written": written }));
    } else {
        for p in written {
            println!("{}", p.display());
        }
    }
    ExitStatus::Ok
}
