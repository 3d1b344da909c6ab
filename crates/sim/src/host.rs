//! The commands a root shell on a node runs on the parts of its file system
//! pve-sim emulates ([`Root::emulated_path`]): `mkdir`, `rmdir` and `touch`
//! as GNU coreutils does them (in the C locale), `flock` as util-linux does.
//!
//! On `/etc/pve/priv/lock/ID` they are pmxcfs's cluster-wide locks
//! (CONTRACT §19, [`crate::cfs`]): `mkdir` takes one, `rmdir` releases it,
//! `touch -d @0` is an unlock request and `touch` renews it. On
//! `/var/lock/qemu-server/lock-ID.conf`, `flock` meets the per-VM lock a
//! running `qm` holds (CONTRACT §11.1), so `flock -n FILE true` fails
//! while a create runs and succeeds on what an interrupted one left.
//!
//! The binary hands any other use of these commands to the real tool
//! ([`passes_through`]); other paths under `/etc/pve` are refused, so a
//! test never touches the machine's own.

use crate::schema::Failure;
use crate::Ctx;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The programs this module answers as.
pub const PROGRAMS: &[&str] = &["mkdir", "rmdir", "touch", "flock"];

/// True for a path pve-sim keeps under ROOT, or refuses (the rest of
/// `/etc/pve`). Which ROOT and node does not matter for the answer.
fn is_emulated(p: &str) -> bool {
    let any = crate::state::Root(PathBuf::new());
    p == "/etc/pve" || p.starts_with("/etc/pve/") || any.emulated_path("", p).is_some()
}

/// The options of `program` that take a value.
fn value_options(program: &str) -> &'static [&'static str] {
    match program {
        "mkdir" => &["-m", "--mode"],
        "touch" => &["-d", "--date", "-t", "-r", "--reference"],
        _ => &[],
    }
}

/// The path operands of a command line, options and their values left out.
fn operands(program: &str, args: &[String]) -> Vec<String> {
    match program {
        "flock" => flock_parts(args)
            .map(|(_, f, _)| vec![f.to_string()])
            .unwrap_or_default(),
        _ => flags_and_operands(args, value_options(program)).1,
    }
}

/// True when the real tool should run instead: no operand is a path pve-sim
/// emulates.
pub fn passes_through(program: &str, args: &[String]) -> bool {
    !operands(program, args).iter().any(|p| is_emulated(p))
}

/// The real `program` on PATH, skipping links to this binary.
pub fn real_tool(program: &str) -> Option<PathBuf> {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|c| c.is_file() && c.canonicalize().ok() != me)
}

/// `strerror` of an error kind, as coreutils prints it.
fn strerror(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::AlreadyExists => "File exists",
        ErrorKind::NotFound => "No such file or directory",
        ErrorKind::PermissionDenied => "Permission denied",
        ErrorKind::DirectoryNotEmpty => "Directory not empty",
        ErrorKind::NotADirectory => "Not a directory",
        _ => "Input/output error",
    }
}

/// Runs `program ARGS` on emulated paths.
pub fn run(cx: &mut Ctx, program: &str, args: &[String]) -> Result<(), Failure> {
    match program {
        "mkdir" => mkdir(cx, args),
        "rmdir" => rmdir(cx, args),
        "touch" => touch(cx, args),
        "flock" => flock(cx, args),
        other => Err(Failure::die(
            ["pve-sim: '", other, "' is not emulated"].concat(),
        )),
    }
}

/// Maps an operand, or says why pve-sim will not act on it.
/// True when this process acts as the emulated host's root: it runs as
/// the user who owns the state folder (`pve-sim init` made it), so that a
/// test bed's other users are refused as a real host refuses non-root.
fn is_host_root(cx: &Ctx) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata("/proc/self"),
        std::fs::metadata(cx.root.join("state.json")),
    ) {
        (Ok(me), Ok(state)) => me.uid() == state.uid(),
        _ => true,
    }
}

/// What a host refuses to anyone but root: `qm`, `pvesh` and `pvesm` die
/// with `please run as root` (CONTRACT §1.2), and `/etc/pve/priv` is
/// root-only (CONTRACT §19).
pub fn needs_root(cx: &Ctx, program: &str, args: &[String]) -> Result<(), Failure> {
    if is_host_root(cx) {
        return Ok(());
    }
    if matches!(program, "qm" | "pvesh" | "pvesm") {
        return Err(Failure::die("please run as root"));
    }
    if PROGRAMS.contains(&program) && program != "flock" {
        if let Some(p) = args.iter().find(|a| a.starts_with("/etc/pve/priv")) {
            let what = match program {
                "mkdir" => "cannot create directory",
                "rmdir" => "failed to remove",
                _ => "cannot touch",
            };
            return Err(Failure {
                stderr: [program, ": ", what, " '", p, "': Permission denied\n"].concat(),
                exit: 1,
            });
        }
    }
    Ok(())
}

fn map(cx: &Ctx, program: &str, p: &str) -> Result<PathBuf, Failure> {
    cx.root.emulated_path(&cx.node, p).ok_or_else(|| {
        Failure::die(
            [
                program,
                ": pve-sim emulates /etc/pve/priv/lock and /var/lock/{qemu-server,pve-manager} only, not '",
                p,
                "'",
            ]
            .concat(),
        )
    })
}

/// The short flags (long ones as their short letter), the operands and the
/// value of the last option that takes one, of a coreutils command line.
fn flags_and_operands(
    args: &[String],
    with_value: &[&str],
) -> (String, Vec<String>, Option<String>) {
    let (mut flags, mut ops, mut value) = (String::new(), Vec::new(), None);
    let mut i = 0;
    let mut only = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only || !a.starts_with('-') || a == "-" {
            ops.push(a.clone());
            continue;
        }
        match a.as_str() {
            "--" => only = true,
            "--parents" => flags.push('p'),
            "--verbose" => flags.push('v'),
            "--no-create" => flags.push('c'),
            "--ignore-fail-on-non-empty" => flags.push('i'),
            o if with_value.contains(&o) => {
                flags.push_str(o.trim_start_matches('-').get(..1).unwrap_or(""));
                value = args.get(i).cloned();
                i += 1;
            }
            long if long.starts_with("--") => {
                if let Some((name, v)) = long.split_once('=') {
                    if with_value.contains(&name) {
                        flags.push_str(&name[2..3]);
                        value = Some(v.to_string());
                    }
                }
            }
            short => flags.push_str(&short[1..]),
        }
    }
    (flags, ops, value)
}

fn mkdir(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (flags, ops, _) = flags_and_operands(args, value_options("mkdir"));
    if ops.is_empty() {
        return Err(Failure {
            stderr: "mkdir: missing operand\nTry 'mkdir --help' for more information.\n".into(),
            exit: 1,
        });
    }
    let parents = flags.contains('p');
    let mut failed = false;
    // `/etc/pve/priv` always exists on a host; `priv/lock` only once made.
    if let Some(private) = cx.root.cfs_lock_dir().parent() {
        let _ = std::fs::create_dir_all(private);
    }
    for p in &ops {
        let path = map(cx, "mkdir", p)?;
        if parents {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let made = match crate::cfs::lock_name(&cx.root, &path) {
            Some(name) => crate::cfs::mkdir(&cx.root, &cx.node, &name),
            None => std::fs::create_dir(&path).map_err(|e| e.kind()),
        };
        match made {
            Ok(()) if flags.contains('v') => {
                cx.out(&["mkdir: created directory '", p, "'"].concat())
            }
            Ok(()) => {}
            // `-p` is content with a directory that is already there.
            Err(ErrorKind::AlreadyExists) if parents && path.is_dir() => {}
            Err(kind) => {
                cx.err(&["mkdir: cannot create directory '", p, "': ", strerror(kind)].concat());
                failed = true;
            }
        }
    }
    exit_status(failed)
}

fn rmdir(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (flags, ops, _) = flags_and_operands(args, value_options("rmdir"));
    let mut failed = false;
    for p in &ops {
        let path = map(cx, "rmdir", p)?;
        let removed = match crate::cfs::lock_name(&cx.root, &path) {
            Some(name) => crate::cfs::rmdir(&cx.root, &name),
            None => std::fs::remove_dir(&path).map_err(|e| e.kind()),
        };
        match removed {
            Ok(()) if flags.contains('v') => {
                cx.out(&["rmdir: removing directory, '", p, "'"].concat())
            }
            Ok(()) => {}
            Err(ErrorKind::DirectoryNotEmpty) if flags.contains('i') => {}
            Err(kind) => {
                cx.err(&["rmdir: failed to remove '", p, "': ", strerror(kind)].concat());
                failed = true;
            }
        }
    }
    exit_status(failed)
}

/// `touch [-c] [-m] [-d @SECONDS] PATH...`: on a lock, `@0` is an unlock
/// request and any later time (or none: now) a renewal.
fn touch(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let (flags, ops, date) = flags_and_operands(args, value_options("touch"));
    let mtime = match date.as_deref() {
        None => crate::state::now_ms() / 1000,
        Some(d) => d
            .strip_prefix('@')
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                Failure::die(["touch: pve-sim takes only -d @SECONDS, not '", d, "'"].concat())
            })?,
    };
    let mut failed = false;
    for p in &ops {
        let path = map(cx, "touch", p)?;
        let done = match crate::cfs::lock_name(&cx.root, &path) {
            Some(name) if path.is_dir() => crate::cfs::utime(&cx.root, &cx.node, &name, mtime),
            _ if path.exists() => set_mtime(&path, mtime),
            _ if flags.contains('c') => Ok(()),
            _ => std::fs::File::create(&path)
                .map(|_| ())
                .map_err(|e| e.kind()),
        };
        if let Err(kind) = done {
            let what = if kind == ErrorKind::NotFound {
                ["touch: cannot touch '", p, "': "].concat()
            } else {
                ["touch: setting times of '", p, "': "].concat()
            };
            cx.err(&[what.as_str(), strerror(kind)].concat());
            failed = true;
        }
    }
    exit_status(failed)
}

fn set_mtime(path: &Path, secs: u64) -> Result<(), ErrorKind> {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    std::fs::File::open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(|e| e.kind())
}

fn exit_status(failed: bool) -> Result<(), Failure> {
    if failed {
        Err(Failure {
            stderr: String::new(),
            exit: 1,
        })
    } else {
        Ok(())
    }
}

/// `flock`'s options before the file, the file, and the command after it.
fn flock_parts(args: &[String]) -> Option<(Vec<&str>, &str, Vec<&str>)> {
    let mut i = 0;
    let mut opts = Vec::new();
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') || a == "-" {
            break;
        }
        opts.push(a);
        i += 1;
        if matches!(
            a,
            "-w" | "--wait" | "--timeout" | "-E" | "--conflict-exit-code"
        ) {
            opts.push(args.get(i)?.as_str());
            i += 1;
        }
    }
    let file = args.get(i)?.as_str();
    Some((
        opts,
        file,
        args[i + 1..].iter().map(String::as_str).collect(),
    ))
}

/// `flock [-n] [-w SECS] [-E CODE] [-s] FILE COMMAND [ARGS]` (or
/// `-c COMMAND`): takes the lock on the emulated FILE, runs the command
/// holding it, exits with the command's status; a lock it cannot get is
/// exit 1 (or `-E`'s code), silently, as util-linux does.
fn flock(cx: &mut Ctx, args: &[String]) -> Result<(), Failure> {
    let usage = || {
        Failure {
        stderr: "flock: pve-sim takes: flock [-n] [-w SECONDS] [-E CODE] FILE COMMAND [ARGS...] | FILE -c COMMAND\n".into(),
        exit: 64,
    }
    };
    let (opts, file, command) = flock_parts(args).ok_or_else(usage)?;
    if command.is_empty() {
        return Err(usage());
    }
    let mut timeout = Some(Duration::ZERO).filter(|_| {
        opts.iter()
            .any(|o| matches!(*o, "-n" | "--nb" | "--nonblock"))
    });
    let mut conflict = 1;
    for w in opts.windows(2) {
        match w[0] {
            "-w" | "--wait" | "--timeout" => {
                timeout = w[1].parse::<f64>().ok().map(Duration::from_secs_f64);
            }
            "-E" | "--conflict-exit-code" => conflict = w[1].parse().unwrap_or(1),
            _ => {}
        }
    }
    let path = map(cx, "flock", file)?;
    let held = cx
        .root
        .try_lock_path(&path, timeout.unwrap_or(Duration::from_secs(86_400)));
    let Some(_held) = held else {
        return Err(Failure {
            stderr: String::new(),
            exit: conflict,
        });
    };
    let mut cmd = match command.as_slice() {
        ["-c", line] => {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
        [program, rest @ ..] => {
            let mut c = std::process::Command::new(program);
            c.args(rest);
            c
        }
        [] => return Err(usage()),
    };
    let out = cmd.output().map_err(|e| Failure {
        stderr: [
            "flock: failed to execute ",
            command[0],
            ": ",
            &e.to_string(),
            "\n",
        ]
        .concat(),
        exit: 126,
    })?;
    cx.stdout.push_str(&String::from_utf8_lossy(&out.stdout));
    cx.stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Ok(()),
        code => Err(Failure {
            stderr: String::new(),
            exit: code.unwrap_or(1),
        }),
    }
}
