//! How pvefleet talks: JSON or text, colour or not, how much, and the one
//! way errors leave the program.
//!
//! Decided once from the global flags ([`init`]); every writer asks here.
//! Messages on stderr go through `tracing` (filter: `PVEFLEET_LOG`, else
//! -q/-v), through the live progress display when one is drawn, so lines
//! never tear it. Errors are written directly: a filter never hides them.

use crate::args::{ColorWhen, Global, Output};
use crate::ExitStatus;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How much is said on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Only the summary and errors (`-q`).
    Quiet,
    /// Progress, notes and warnings.
    Normal,
    /// Also each command sent (`-v`, `PVEFLEET_VERBOSE`).
    Verbose,
}

/// The decisions every writer follows.
#[derive(Clone, Debug)]
pub struct Ui {
    /// `--output json`: stdout holds one JSON document, errors included.
    pub json: bool,
    /// Colour on stdout.
    pub color_out: bool,
    /// Colour on stderr.
    pub color_err: bool,
    /// stderr is a terminal.
    pub err_tty: bool,
    /// A live progress display may be drawn on stderr (a terminal that
    /// takes escape sequences, human output, not quiet).
    pub live: bool,
    /// How much is said.
    pub verbosity: Verbosity,
}

impl Default for Ui {
    fn default() -> Self {
        Self {
            json: false,
            color_out: false,
            color_err: false,
            err_tty: false,
            live: false,
            verbosity: Verbosity::Normal,
        }
    }
}

static UI: OnceLock<Ui> = OnceLock::new();

/// The decisions (plain text, no colour, until [`init`]).
pub fn ui() -> &'static Ui {
    UI.get_or_init(Ui::default)
}

/// True when `NO_COLOR` is set to something.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// True when the terminal cannot take escape sequences.
fn dumb_term() -> bool {
    std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

/// Whether a stream gets colour: `always` wins over everything (as the
/// NO_COLOR convention lets a flag do), `never` and NO_COLOR turn it off,
/// `auto` colours terminals only.
fn colour(when: ColorWhen, tty: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => tty && !no_color() && !dumb_term(),
    }
}

/// Decides everything from the flags and the environment, and sets up the
/// log. Called once, first thing.
pub fn init(g: &Global) {
    let err_tty = std::io::stderr().is_terminal();
    let out_tty = std::io::stdout().is_terminal();
    let verbosity = if g.quiet {
        Verbosity::Quiet
    } else if g.verbose > 0 || std::env::var_os("PVEFLEET_VERBOSE").is_some() {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let json = g.output == Output::Json;
    let escapes = err_tty && g.color != ColorWhen::Never && !no_color() && !dumb_term();
    let ui = Ui {
        json,
        color_out: !json && colour(g.color, out_tty),
        color_err: colour(g.color, err_tty),
        err_tty,
        live: escapes && !json && verbosity > Verbosity::Quiet,
        verbosity,
    };
    let _ = UI.set(ui);
    init_log(verbosity, g.verbose);
}

fn init_log(verbosity: Verbosity, count: u8) {
    let default = match (verbosity, count) {
        (Verbosity::Quiet, _) => "error",
        (Verbosity::Normal, _) => "info",
        (Verbosity::Verbose, 0 | 1) => "debug",
        (Verbosity::Verbose, _) => "trace",
    };
    let filter = std::env::var("PVEFLEET_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(Lines)
        .with_writer(StderrLines)
        .try_init();
}

/// Log events as pvefleet's own lines: `warning: ...`, `error: ...`, plain
/// text for the rest. With `--output json` too: stderr then carries the
/// run's JSON Lines events and these text lines, told apart by their first
/// character (docs/json.md).
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        let ui = ui();
        let color = ui.color_err && !ui.json;
        let prefix = match *event.metadata().level() {
            tracing::Level::ERROR => paint("error:", Style::Error, color) + " ",
            tracing::Level::WARN => paint("warning:", Style::Warn, color) + " ",
            _ => String::new(),
        };
        writeln!(writer, "{prefix}{}", message.0)
    }
}

/// The `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

/// The live progress display, while one is drawn: lines go above it.
static LIVE: Mutex<Option<indicatif::MultiProgress>> = Mutex::new(None);

/// Makes `mp` the display lines are written above (`None`: none).
pub fn set_live(mp: Option<indicatif::MultiProgress>) {
    if let Ok(mut g) = LIVE.lock() {
        *g = mp;
    }
}

/// Writes `text` (whole lines) on stderr, above the live display if any.
pub fn eprint_lines(text: &str) {
    let live = LIVE.lock().ok().and_then(|g| g.clone());
    match live {
        Some(mp) => {
            for line in text.trim_end_matches('\n').split('\n') {
                let _ = mp.println(line);
            }
        }
        None => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

/// The log's writer: whole lines through [`eprint_lines`].
struct StderrLines;

/// One event's text, written when the formatter is done with it.
struct LineBuf(Vec<u8>);

impl Write for LineBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuf {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            eprint_lines(&String::from_utf8_lossy(&self.0));
        }
    }
}

impl<'a> MakeWriter<'a> for StderrLines {
    type Writer = LineBuf;
    fn make_writer(&'a self) -> LineBuf {
        LineBuf(Vec::new())
    }
}

/// What a piece of text means, for colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Errors and failures: bold red.
    Error,
    /// Warnings and things to look at: yellow.
    Warn,
    /// Success: green.
    Good,
    /// Headers: bold.
    Header,
    /// Less important: dim.
    Dim,
}

/// `text` in `style` when `color`, else as it is.
pub fn paint(text: &str, style: Style, color: bool) -> String {
    if !color || text.is_empty() {
        return text.to_string();
    }
    let code = match style {
        Style::Error => "1;31",
        Style::Warn => "33",
        Style::Good => "32",
        Style::Header => "1",
        Style::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// An error that ends a command: what, a stable code, where, what to do.
#[derive(Clone, Debug)]
pub struct Failure(Box<FailureParts>);

/// What a [`Failure`] holds.
#[derive(Clone, Debug)]
struct FailureParts {
    /// The message, lower-case, no trailing period.
    message: String,
    /// A stable snake_case code (docs/json.md lists them).
    code: &'static str,
    /// Where: `{"file": ..}`, `{"node": ..}`, or nothing.
    location: Option<Value>,
    /// What to do about it.
    hints: Vec<String>,
    /// The exit status.
    status: ExitStatus,
}

impl Failure {
    /// An error with `code` and `message` ending with `status`.
    pub fn new(status: ExitStatus, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(FailureParts {
            message: message.into(),
            code,
            location: None,
            hints: Vec::new(),
            status,
        }))
    }

    /// Adds where it happened.
    pub fn at(mut self, location: Value) -> Self {
        self.0.location = Some(location);
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hints.push(hint.into());
        self
    }

    /// Prints it (one JSON object on stdout with `--output json`, else
    /// `error:` and `hint:` lines on stderr) and returns its status.
    pub fn report(self) -> ExitStatus {
        let f = *self.0;
        let ui = ui();
        if ui.json {
            let mut v = json!({
                "error": f.message,
                "code": f.code,
                "location": f.location,
            });
            if !f.hints.is_empty() {
                v["hints"] = json!(f.hints);
            }
            print_json(&v);
        } else {
            let mut text = format!(
                "{} {}\n",
                paint("error:", Style::Error, ui.color_err),
                f.message
            );
            for h in &f.hints {
                text.push_str(&format!(
                    "{} {h}\n",
                    paint("hint:", Style::Dim, ui.color_err)
                ));
            }
            eprint_lines(&text);
        }
        f.status
    }
}

/// Prints a JSON document on stdout, on one line.
pub fn print_json(v: &Value) {
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}

/// An I/O error in our words: `no such file`, `permission denied`, ...
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "no such file".into(),
        K::PermissionDenied => "permission denied".into(),
        K::IsADirectory => "it is a folder, not a file".into(),
        K::InvalidData => "it is not UTF-8 text".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// `N things` with the right plural.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
