//! Configuration errors with their place in the file.

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

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

/// How many errors are shown with a snippet of the file; the rest get their
/// `FILE:LINE:COL: error:` line only.
const MAX_SNIPPETS: usize = 100;

/// The longest line of a snippet, in bytes; a longer one is cut with `…`.
const MAX_SNIPPET_LINE: usize = 120;

/// The most lines of the file one label covers in a snippet.
const MAX_LABEL_LINES: usize = 6;

/// One error as miette renders it: message, snippet, label and hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Rendered {
    message: String,
    src: Excerpt,
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

/// The few lines of the file around one error, long lines cut, numbered
/// as in the file. Rendering an error costs the size of its excerpt, not of
/// the file, and never prints a huge value whole.
#[derive(Debug)]
struct Excerpt {
    name: String,
    text: String,
    /// The file's line number (0-based) of the excerpt's first line.
    first_line: usize,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// A text with the offset where each of its lines starts.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The 0-based line holding `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|s| *s <= offset)
            .saturating_sub(1)
    }

    /// Line `i` without its line break, and whether it had one.
    fn line(&self, i: usize) -> (&'a str, bool) {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).map_or(self.text.len(), |e| e - 1);
        (&self.text[start..end], end < self.text.len())
    }

    /// The excerpt around `span` (one line before, one after) and the label's
    /// span within it.
    fn excerpt(&self, name: &str, span: Span) -> (Excerpt, SourceSpan) {
        let offset = span.offset.min(self.text.len());
        let last = offset + span.len.max(1) - 1;
        let l0 = self.line_of(offset);
        let l1 = self.line_of(last).min(l0 + MAX_LABEL_LINES - 1);
        let from = l0.saturating_sub(1);
        let to = (l1 + 1).min(self.starts.len() - 1);
        let mut text = String::new();
        let (mut start, mut end) = (0, 0);
        for i in from..=to {
            let (line, newline) = self.line(i);
            let cut = if line.len() > MAX_SNIPPET_LINE {
                let mut at = MAX_SNIPPET_LINE;
                while !line.is_char_boundary(at) {
                    at -= 1;
                }
                at
            } else {
                line.len()
            };
            let base = text.len();
            let column = |o: usize| (o.saturating_sub(self.starts[i])).min(cut);
            if i == l0 {
                start = base + column(offset);
            }
            if i == l1 {
                end = if self.line_of(last) == l1 {
                    base + column(last + 1)
                } else {
                    base + cut
                };
            }
            text.push_str(&line[..cut]);
            if cut < line.len() {
                text.push('…');
            }
            if newline {
                text.push('\n');
            }
        }
        let len = end.saturating_sub(start).max(1);
        let excerpt = Excerpt {
            name: name.to_string(),
            text,
            first_line: from,
        };
        (excerpt, SourceSpan::new(start.into(), len))
    }
}

impl ConfigReport {
    /// Renders every error as `FILE:LINE:COL: error: MESSAGE`, followed by
    /// the YAML snippet and the hint (for the first [`MAX_SNIPPETS`] errors).
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let lines = Lines::new(&self.text);
        let mut out = String::new();
        for (i, e) in self.errors.iter().enumerate() {
            let at = e
                .span
                .map(|s| format!(":{}:{}", s.line, s.col))
                .unwrap_or_default();
            out.push_str(&format!("{}{at}: error: {}\n", self.path, e.message));
            if i >= MAX_SNIPPETS {
                continue;
            }
            let (src, label) = match e.span {
                Some(s) => {
                    let (src, at) = lines.excerpt(&self.path, s);
                    (
                        src,
                        Some(LabeledSpan::new_with_span(Some("here".into()), at)),
                    )
                }
                None => (
                    Excerpt {
                        name: self.path.clone(),
                        text: String::new(),
                        first_line: 0,
                    },
                    None,
                ),
            };
            let rendered = Rendered {
                message: e.message.clone(),
                src,
                label,
                help: e.help.clone(),
            };
            let mut snippet = String::new();
            if handler.render_report(&mut snippet, &rendered).is_ok() {
                out.push_str(&snippet);
            }
            out.push('\n');
        }
        if self.errors.len() > MAX_SNIPPETS {
            out.push_str(&format!(
                "note: the errors after the first {MAX_SNIPPETS} are listed without their snippet\n\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str, errors: Vec<ConfigError>) -> ConfigReport {
        ConfigReport {
            path: "t.yml".into(),
            text: text.into(),
            errors,
        }
    }

    fn at(text: &str, needle: &str, line: u32, col: u32) -> Option<Span> {
        let offset = text.find(needle)?;
        Some(Span {
            line,
            col,
            offset,
            len: needle.len(),
        })
    }

    #[test]
    fn a_snippet_shows_the_lines_around_the_error_numbered_as_in_the_file() {
        let text = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\n";
        let e = ConfigError::at(ErrorKind::Range, at(text, "3", 3, 4), "c: too big");
        let out = report(text, vec![e]).render(false);
        assert!(out.starts_with("t.yml:3:4: error: c: too big\n"), "{out}");
        assert!(out.contains("[t.yml:3:4]"), "{out}");
        for shown in [" 2 │ b: 2", " 3 │ c: 3", " 4 │ d: 4"] {
            assert!(out.contains(shown), "{shown} in {out}");
        }
        assert!(!out.contains("a: 1") && !out.contains("e: 5"), "{out}");
    }

    #[test]
    fn a_long_line_is_cut_in_the_snippet() {
        let long = "x".repeat(200_000);
        let text = format!("a: 1\ndescription: {long}\nb: 2\n");
        let e = ConfigError::at(ErrorKind::Range, at(&text, &long, 2, 14), "too long");
        let out = report(&text, vec![e]).render(false);
        assert!(out.len() < 2_000, "{} bytes", out.len());
        assert!(out.contains("…"), "{out}");
    }

    #[test]
    fn many_errors_render_in_linear_time_and_only_the_first_with_snippets() {
        let n = 20_000;
        let mut text = String::new();
        let mut errors = Vec::new();
        for i in 0..n {
            let key = format!("k{i}");
            let span = Span {
                line: i + 1,
                col: 1,
                offset: text.len(),
                len: key.len(),
            };
            text.push_str(&format!("{key}: 1\n"));
            errors.push(ConfigError::at(
                ErrorKind::UnknownKey,
                Some(span),
                format!("unknown key '{key}'"),
            ));
        }
        let out = report(&text, errors).render(false);
        assert_eq!(out.matches("here").count(), MAX_SNIPPETS);
        assert_eq!(out.matches(": error: ").count(), n as usize);
    }
}
