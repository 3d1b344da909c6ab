//! Tables sized to their content: each column as wide as its widest cell,
//! two spaces between columns, no trailing spaces. A row may carry lines
//! under it (an error, a command), indented and outside the columns.

use crate::ui::{paint, Style};

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// One cell: its text and, for a terminal, its colour.
#[derive(Clone, Debug)]
pub struct Cell {
    text: String,
    style: Option<Style>,
}

impl Cell {
    /// A cell in `style`.
    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style: Some(style),
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Self {
        Self {
            text: text.into(),
            style: None,
        }
    }
}

/// A table being built.
#[derive(Clone, Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<(Vec<Cell>, Vec<String>)>,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            headers: columns.iter().map(|(h, _)| h.to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push((cells, Vec::new()));
    }

    /// Adds a line under the last row.
    pub fn note(&mut self, line: impl Into<String>) {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.push(line.into());
        }
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text; `color` paints headers and styled cells.
    pub fn render(&self, color: bool) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|(cells, _)| cells.get(i))
                .map(|c| c.text.chars().count())
                .chain(std::iter::once(self.headers[i].chars().count()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let line = |cells: Vec<(&str, Option<Style>)>| {
            let mut s = String::new();
            let last = cells.len().saturating_sub(1);
            for (i, (text, style)) in cells.into_iter().enumerate() {
                let pad = widths[i].saturating_sub(text.chars().count());
                let shown = match style {
                    Some(st) => paint(text, st, color),
                    None => text.to_string(),
                };
                if i > 0 {
                    s.push_str("  ");
                }
                match self.align[i] {
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(&shown);
                    }
                    Align::Left => {
                        s.push_str(&shown);
                        if i < last {
                            s.push_str(&" ".repeat(pad));
                        }
                    }
                }
            }
            let mut s = s.trim_end().to_string();
            s.push('\n');
            s
        };
        let mut out = line(
            self.headers
                .iter()
                .map(|h| (h.as_str(), Some(Style::Header)))
                .collect(),
        );
        for (cells, notes) in &self.rows {
            out.push_str(&line(
                cells.iter().map(|c| (c.text.as_str(), c.style)).collect(),
            ));
            for n in notes {
                out.push_str("    ");
                out.push_str(n);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let mut t = Table::new(&[
            ("ID", Align::Right),
            ("NAME", Align::Left),
            ("X", Align::Left),
        ]);
        t.row(vec!["7".into(), "a-long-name".into(), "-".into()]);
        t.row(vec!["1234".into(), "b".into(), "".into()]);
        t.note("under b");
        assert_eq!(
            t.render(false),
            "  ID  NAME         X\n   7  a-long-name  -\n1234  b\n    under b\n"
        );
    }

    #[test]
    fn colour_does_not_change_widths() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        t.row(vec![Cell::styled("ok", Style::Good), "x".into()]);
        let plain = t.render(false);
        let painted = t.render(true);
        assert_eq!(plain, "A   B\nok  x\n");
        assert!(painted.contains("\x1b[32mok\x1b[0m  x"), "{painted:?}");
    }
}
