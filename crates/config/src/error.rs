//! Configuration errors with their place in the file.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

pub use crate::span::Span;

/// What sort of problem a [`ConfigError`] is.
///
/// The set is stable: tools may rely on [`ErrorKind::code`], which never
/// changes for a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not valid YAML (including a key repeated in one mapping).
    Syntax,
    /// A key the language does not know; the hint names a close one.
    UnknownKey,
    /// A known key where it may not stand, such as `vmid` in `defaults:`.
    Misplaced,
    /// A value of the wrong YAML type, such as a list where a string belongs.
    Type,
    /// A number, size or length outside what Proxmox accepts, or an address
    /// it cannot use (a multicast MAC, a subnet's broadcast address).
    Range,
    /// Text without the required shape: a name, id, address, key or path.
    Format,
    /// A value that is not one of the choices: a `state`, a `disk_from`, a
    /// `node` that is not configured.
    UnknownValue,
    /// Something required is absent: a connection, `host`, a VM's `name`,
    /// its disk source, or what another key needs (`gateway` needs `ip`).
    Missing,
    /// Keys or values that exclude each other (`image` and `clone`, a
    /// gateway outside the VM's subnet).
    Conflict,
    /// A value two VMs share that must differ (vmid, name, static IP, MAC).
    Duplicate,
    /// A file the configuration names cannot be read or holds something
    /// that is not what it should (`ssh_keys_file`).
    File,
}

impl ErrorKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Syntax,
        ErrorKind::UnknownKey,
        ErrorKind::Misplaced,
        ErrorKind::Type,
        ErrorKind::Range,
        ErrorKind::Format,
        ErrorKind::UnknownValue,
        ErrorKind::Missing,
        ErrorKind::Conflict,
        ErrorKind::Duplicate,
        ErrorKind::File,
    ];

    /// A stable snake_case name for JSON output, e.g. `unknown_key`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::Misplaced => "misplaced",
            ErrorKind::Type => "type",
            ErrorKind::Range => "range",
            ErrorKind::Format => "format",
            ErrorKind::UnknownValue => "unknown_value",
            ErrorKind::Missing => "missing",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::File => "file",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// What sort of problem it is.
    pub kind: ErrorKind,
    /// What is wrong, lower-case, no trailing period.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// What to do about it.
    pub help: Option<String>,
}

impl ConfigError {
    /// An error of `kind` at `span`.
    pub fn at(kind: ErrorKind, span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            span,
            help: None,
        }
    }

    /// Adds a hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every error found in one file, with the text needed to show snippets.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {} error(s) in the configuration", errors.len())]
pub struct ConfigReport {
    /// The file name as the user gave it.
    pub path: String,
    /// The file's text.
    pub text: String,
    /// The errors, in file order.
    pub errors: Vec<ConfigError>,
}

/// One error as miette renders it: message, snippet, label and hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Rendered {
    message: String,
    src: NamedSource<String>,
    label: Option<LabeledSpan>,
    help: Option<String>,
}

impl Diagnostic for Rendered {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.label
            .as_ref()
            .map(|l| Box::new(std::iter::once(l.clone())) as Box<dyn Iterator<Item = _>>)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

impl ConfigReport {
    /// Renders every error as `FILE:LINE:COL: error: MESSAGE`, followed by
    /// the YAML snippet and the hint.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let mut out = String::new();
        for e in &self.errors {
            let at = e
                .span
                .map(|s| format!(":{}:{}", s.line, s.col))
                .unwrap_or_default();
            out.push_str(&format!("{}{at}: error: {}\n", self.path, e.message));
            let rendered = Rendered {
                message: e.message.clone(),
                src: NamedSource::new(&self.path, self.text.clone()),
                label: e.span.map(|s| {
                    LabeledSpan::new_with_span(Some("here".into()), (s.offset, s.len.max(1)))
                }),
                help: e.help.clone(),
            };
            let mut snippet = String::new();
            if handler.render_report(&mut snippet, &rendered).is_ok() {
                out.push_str(&snippet);
            }
            out.push('\n');
        }
        out
    }
}
