//! Configuration errors with their place in the file.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// Where a value stands in the YAML text (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes (at least 1 when rendered).
    pub len: usize,
}

/// One problem in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// What is wrong, lower-case, no trailing period.
    pub message: String,
    /// Where, when known.
    pub span: Option<Span>,
    /// What to do about it.
    pub help: Option<String>,
}

impl ConfigError {
    /// An error at `span`.
    pub fn at(span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
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
            out.push_str(&self.path);
            if let Some(s) = e.span {
                out.push(':');
                out.push_str(&s.line.to_string());
                out.push(':');
                out.push_str(&s.col.to_string());
            }
            out.push_str(": error: ");
            out.push_str(&e.message);
            out.push('\n');
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
