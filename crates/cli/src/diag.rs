//! Configuration errors, each shown exactly once.
//!
//! - On a terminal: a box per error (miette), its header naming
//!   `FILE:LINE:COL`, with the YAML lines around it, a label and the hint;
//!   coloured unless NO_COLOR or `--color never`.
//! - Otherwise (a pipe, a file, CI logs): one `FILE:LINE:COL: error: MESSAGE`
//!   line per error, the line of YAML with a caret under the value, and
//!   `hint:`; plain ASCII, no escape sequences.
//! - With `--output json`: one object on stdout (docs/json.md), nothing on
//!   stderr.
//!
//! A one-line count closes the text forms.

use crate::ui::{self, paint, Failure, Style};
use crate::ExitStatus;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use pvefleet_config::{ConfigError, ConfigReport, Span};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a configuration report was printed.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Forgets that a report was printed.
pub fn reset() {
    REPORTED.store(false, Ordering::Relaxed);
}

/// True when a configuration report was printed since [`reset`].
pub fn reported() -> bool {
    REPORTED.load(Ordering::Relaxed)
}

/// Prints every error of `report` once, as the output mode wants; returns
/// exit status 2.
pub fn config_errors(report: &ConfigReport) -> ExitStatus {
    REPORTED.store(true, Ordering::Relaxed);
    let ui = ui::ui();
    let summary = format!(
        "{} in {}; nothing was contacted",
        ui::count(report.errors.len(), "problem", "problems"),
        report.path
    );
    if ui.json {
        let errors: Vec<_> = report
            .errors
            .iter()
            .take(SHOWN_ERRORS * 10)
            .map(|e| {
                json!({
                    "message": e.message,
                    "code": e.kind.code(),
                    "file": report.path,
                    "line": e.span.map(|s| s.line),
                    "col": e.span.map(|s| s.col),
                    "hint": e.help,
                })
            })
            .collect();
        ui::print_json(&json!({
            "error": summary,
            "code": "invalid_config",
            "location": {"file": report.path},
            "errors": errors,
            "more_errors": report.errors.len().saturating_sub(SHOWN_ERRORS * 10),
        }));
        return ExitStatus::Invalid;
    }
    let mut out = String::new();
    // At most SHOWN_ERRORS errors, then how many more: a file with 100 000
    // unknown keys gets a short report.
    for e in report.errors.iter().take(SHOWN_ERRORS) {
        if ui.err_tty && !long_line(report, e) {
            out.push_str(&boxed(report, e, ui.color_err));
        } else {
            out.push_str(&plain(report, e));
        }
    }
    if report.errors.len() > SHOWN_ERRORS {
        out.push_str(&format!(
            "… and {} more; the first {SHOWN_ERRORS} are shown\n\n",
            report.errors.len() - SHOWN_ERRORS
        ));
    }
    ui::eprint_lines(&out);
    Failure::new(ExitStatus::Invalid, "invalid_config", summary).report()
}

/// `span` with its byte offset agreeing with its line and column: some
/// spans (YAML syntax errors) carry the right line and column but offset 0;
/// the line and column win.
fn located(text: &str, span: Span) -> Span {
    let line_of_offset = text
        .get(..span.offset.min(text.len()))
        .map_or(0, |t| t.matches('\n').count() + 1);
    if line_of_offset == span.line as usize {
        return span;
    }
    let start: usize = text
        .split_inclusive('\n')
        .take(span.line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let line = text[start..].split('\n').next().unwrap_or("");
    let col: usize = line
        .chars()
        .take(span.col.saturating_sub(1) as usize)
        .map(char::len_utf8)
        .sum();
    Span {
        offset: start + col,
        len: span.len.max(1),
        ..span
    }
}

/// `FILE:LINE:COL` of an error (`FILE` when it has no place).
fn place(path: &str, span: Option<Span>) -> String {
    match span {
        Some(s) => format!("{path}:{}:{}", s.line, s.col),
        None => path.to_string(),
    }
}

/// Errors shown with their place and snippet; a longer report ends with
/// their count (JSON lists ten times as many).
const SHOWN_ERRORS: usize = 100;

/// True when the error's source line is too long for a box (miette would
/// print it whole): the plain form cuts it.
fn long_line(report: &ConfigReport, e: &ConfigError) -> bool {
    e.span
        .map(|s| located(&report.text, s))
        .and_then(|span| {
            let offset = span.offset.min(report.text.len());
            let start = report.text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
            let end = report
                .text
                .get(offset..)?
                .find('\n')
                .map_or(report.text.len(), |i| offset + i);
            Some(end - start > SHOWN)
        })
        .unwrap_or(false)
}

/// The plain form: the located line, the YAML line with a caret, the hint.
fn plain(report: &ConfigReport, e: &ConfigError) -> String {
    let mut s = format!("{}: error: {}\n", place(&report.path, e.span), e.message);
    if let Some(span) = e.span.map(|s| located(&report.text, s)) {
        if let Some((text, start, width)) = source_line(&report.text, span) {
            let n = span.line.to_string();
            let pad = " ".repeat(n.len());
            s.push_str(&format!("  {n} | {text}\n"));
            s.push_str(&format!(
                "  {pad} | {}{}\n",
                " ".repeat(start),
                "^".repeat(width)
            ));
        }
    }
    if let Some(h) = &e.help {
        s.push_str(&format!("  hint: {h}\n"));
    }
    s.push('\n');
    s
}

/// The line of `span` (tabs as spaces), the column its value starts at and
/// how wide it is on that line, in characters.
fn source_line(text: &str, span: Span) -> Option<(String, usize, usize)> {
    let offset = span.offset.min(text.len());
    if !text.is_char_boundary(offset) {
        return None;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[start..end];
    let col = text[start..offset].chars().count();
    let stop = (offset + span.len).min(end);
    let width = text
        .get(offset..stop)
        .map(|v| v.trim_end().chars().count())
        .unwrap_or(0)
        .max(1);
    Some(window(&line.replace('\t', " "), col, width))
}

/// Characters of a source line shown at most: a longer line is cut to a
/// window around the value, marked with `…`, so a huge line (a 50 MB value,
/// 100 000 brackets) costs a short report.
const SHOWN: usize = 120;

/// `line` cut to [`SHOWN`] characters around `col`; the column and width
/// of the value within what is shown.
fn window(line: &str, col: usize, width: usize) -> (String, usize, usize) {
    let total = line.chars().count();
    if total <= SHOWN {
        return (line.to_string(), col, width);
    }
    let from = col.saturating_sub(SHOWN / 3);
    let to = (from + SHOWN).min(total);
    let mut shown: String = line.chars().skip(from).take(to - from).collect();
    let mut at = col - from;
    if from > 0 {
        shown.insert(0, '…');
        at += 1;
    }
    if to < total {
        shown.push('…');
    }
    let room = shown.chars().count().saturating_sub(at).max(1);
    (shown, at, width.min(room))
}

/// One error as miette draws it.
#[derive(Debug)]
struct Boxed {
    message: String,
    src: NamedSource<String>,
    label: Option<LabeledSpan>,
    help: Option<String>,
}

impl std::fmt::Display for Boxed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Boxed {}

impl Diagnostic for Boxed {
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

/// The boxed form: the message once, the box's header `[FILE:LINE:COL]`.
fn boxed(report: &ConfigReport, e: &ConfigError, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let d = Boxed {
        message: e.message.clone(),
        src: NamedSource::new(&report.path, report.text.clone()),
        label: e.span.map(|s| {
            let s = located(&report.text, s);
            LabeledSpan::new_with_span(Some("here".into()), (s.offset, s.len.max(1)))
        }),
        help: e.help.clone(),
    };
    let mut out = String::new();
    if handler.render_report(&mut out, &d).is_err() || e.span.is_none() {
        // Without a place there is no box to draw: say where in words.
        out = format!(
            "{} {}: {}\n",
            paint("×", Style::Error, color),
            report.path,
            e.message
        );
        if let Some(h) = &e.help {
            out.push_str(&format!("  help: {h}\n"));
        }
    }
    out.push('\n');
    out
}
