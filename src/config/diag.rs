//! Diagnostics: one problem in a config file, at `file:line:col`.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// Whether a problem stops the config from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config is refused.
    Error,
    /// The config loads, but probably not as meant.
    Warning,
    /// Worth knowing, nothing wrong (a `${VAR:-default}` that used its
    /// default).
    Info,
}

/// One problem, positioned in the file (1-based line and column; column
/// counts characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file as named to the user.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and, where obvious, how to fix it.
    pub message: String,
}

impl Diagnostic {
    /// A problem with the file as a whole (unreadable, missing).
    pub(crate) fn file_level(file: &str, message: String) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            line: 1,
            column: 1,
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, sev, self.message
        )
    }
}

/// Collects diagnostics for one source text, turning byte offsets into
/// line and column.
pub(crate) struct Sink<'a> {
    src: &'a str,
    file: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Everything reported so far.
    pub(crate) items: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    /// A sink for `src`, named `file`.
    pub(crate) fn new(src: &'a str, file: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Sink {
            src,
            file,
            line_starts,
            items: Vec::new(),
        }
    }

    /// The source text.
    pub(crate) fn src(&self) -> &'a str {
        self.src
    }

    /// 1-based line and character column of byte `offset`.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let col = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }

    /// Reports an error at the start of `span`.
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Severity::Error, span.start, message.into());
    }

    /// Reports a warning at the start of `span`.
    pub(crate) fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Severity::Warning, span.start, message.into());
    }

    /// Reports a note at the start of `span`.
    pub(crate) fn info(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(Severity::Info, span.start, message.into());
    }

    /// Reports at a byte offset.
    pub(crate) fn push(&mut self, severity: Severity, offset: usize, message: String) {
        let (line, column) = self.position(offset);
        self.items.push(Diagnostic {
            severity,
            file: self.file.to_owned(),
            line,
            column,
            message,
        });
    }

    /// True when an error has been reported.
    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The diagnostics sorted by position (stable for equal positions).
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.line, d.column));
        self.items.dedup();
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let s = Sink::new("ab\ncdé f\n", "f.toml");
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(3), (2, 1));
        assert_eq!(s.position(7), (2, 4)); // after the two-byte é
        assert_eq!(s.position(100), (3, 1));
    }

    #[test]
    fn display_is_file_line_col_severity_message() {
        let d = Diagnostic {
            severity: Severity::Warning,
            file: "g.toml".into(),
            line: 3,
            column: 7,
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "g.toml:3:7: warning: m");
    }
}
