//! Which modules a code cell imports, without a Python parser.
//!
//! A small tokenizer that knows what matters for imports: string literals
//! (single, triple, prefixed — their content is never code), comments, line
//! continuations, brackets (a newline inside them does not end a statement)
//! and `;`. IPython syntax is handled the way IPython does it: a logical line
//! starting with `%` (line magic, e.g. `%pip install`) or `!` (shell, e.g.
//! `!pip install`) is not Python; a cell starting with a `%%` cell magic is
//! only scanned when the magic runs its body as Python (`%%time`,
//! `%%capture`, …). Imports inside blocks (`try:`/`if`/`def`) count, also after
//! a colon on the same line (`try: import ujson`). Relative imports
//! (`from . import x`) and `from __future__` are left out: they are not
//! dependencies on the environment. `__import__("m")` and
//! `importlib.import_module("m")` with a literal name count.

use std::collections::BTreeSet;

use crate::metadata::is_identifier;

/// What a scan of one code cell found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceScan {
    /// Top-level modules imported (`import a.b` → `a`).
    pub imports: BTreeSet<String>,
    /// String literals that look like file paths (`"data/raw.csv"`).
    pub file_refs: BTreeSet<String>,
}

impl SourceScan {
    /// Add another cell's findings.
    pub fn merge(&mut self, other: SourceScan) {
        self.imports.extend(other.imports);
        self.file_refs.extend(other.file_refs);
    }
}

/// Cell magics whose body IPython runs as Python in this kernel.
const PYTHON_CELL_MAGICS: &[&str] = &[
    "time", "timeit", "capture", "prun", "debug", "python", "python3",
];

/// Keywords after which a simple statement may follow a `:` on the same line.
const COMPOUND: &[&str] = &[
    "if", "elif", "else", "try", "except", "finally", "for", "while", "with", "def", "class",
    "async",
];

/// Scan one code cell: the modules it imports and the file paths it names.
pub fn scan_source(cell: &str) -> SourceScan {
    let mut out = SourceScan::default();
    let body = match strip_cell_magic(cell) {
        Some(body) => body,
        None => return out,
    };
    for statement in tokenize(body) {
        analyse(&statement, &mut out);
    }
    out
}

/// The top-level modules one code cell imports, sorted.
pub fn imports_in_source(cell: &str) -> Vec<String> {
    scan_source(cell).imports.into_iter().collect()
}

/// The cell without a leading Python-running `%%magic` line; `None` when the
/// cell is in another language (`%%bash`, `%%html`, `%%writefile`, …).
fn strip_cell_magic(cell: &str) -> Option<&str> {
    let trimmed = cell.trim_start_matches(['\n', '\r', ' ', '\t']);
    let Some(magic) = trimmed.strip_prefix("%%") else {
        return Some(cell);
    };
    let name = magic
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default();
    if !PYTHON_CELL_MAGICS.contains(&name) {
        return None;
    }
    Some(match trimmed.find('\n') {
        Some(i) => &trimmed[i + 1..],
        None => "",
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Name(String),
    Str(String),
    Op(char),
}

/// Split a cell into statements of tokens.
fn tokenize(src: &str) -> Vec<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let n = chars.len();
    let mut statements = Vec::new();
    let mut stmt: Vec<Tok> = Vec::new();
    let mut depth: usize = 0;
    let mut line_start = true;
    let mut i = 0;
    let flush = |stmt: &mut Vec<Tok>, statements: &mut Vec<Vec<Tok>>| {
        if !stmt.is_empty() {
            statements.push(std::mem::take(stmt));
        }
    };
    while i < n {
        let c = chars[i];
        if line_start {
            if matches!(c, ' ' | '\t' | '\x0c') {
                i += 1;
                continue;
            }
            line_start = false;
            if c == '%' || c == '!' {
                // IPython line magic or shell escape: not Python.
                i = skip_physical_line(&chars, i);
                continue;
            }
        }
        match c {
            '#' => {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' if matches!(chars.get(i + 1), Some('\n')) => i += 2,
            '\\' if matches!(chars.get(i + 1), Some('\r'))
                && matches!(chars.get(i + 2), Some('\n')) =>
            {
                i += 3
            }
            '\n' => {
                if depth == 0 {
                    flush(&mut stmt, &mut statements);
                    line_start = true;
                }
                i += 1;
            }
            '"' | '\'' => {
                let (content, next) = read_string(&chars, i);
                stmt.push(Tok::Str(content));
                i = next;
            }
            c if c == '_' || c.is_alphabetic() => {
                let start = i;
                while i < n && (chars[i] == '_' || chars[i].is_alphanumeric()) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if i < n && matches!(chars[i], '"' | '\'') && is_string_prefix(&word) {
                    let (content, next) = read_string(&chars, i);
                    stmt.push(Tok::Str(content));
                    i = next;
                } else {
                    stmt.push(Tok::Name(word));
                }
            }
            c if c.is_ascii_digit() => {
                while i < n && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                stmt.push(Tok::Op(c));
                i += 1;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                stmt.push(Tok::Op(c));
                i += 1;
            }
            ';' if depth == 0 => {
                flush(&mut stmt, &mut statements);
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            c => {
                stmt.push(Tok::Op(c));
                i += 1;
            }
        }
    }
    flush(&mut stmt, &mut statements);
    statements
}

fn skip_physical_line(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] != '\n' {
        i += 1;
    }
    i
}

fn is_string_prefix(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "r" | "u" | "b" | "f" | "br" | "rb" | "fr" | "rf" | "t" | "tr" | "rt"
    )
}

/// Read the string literal whose opening quote is at `start`; return its
/// raw content and the index after it. An unterminated single-quoted string
/// ends at the line's end, an unterminated triple-quoted one at the cell's.
fn read_string(chars: &[char], start: usize) -> (String, usize) {
    let q = chars[start];
    let n = chars.len();
    let triple = start + 2 < n && chars[start + 1] == q && chars[start + 2] == q;
    let mut i = start + if triple { 3 } else { 1 };
    let content_start = i;
    while i < n {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if triple {
            if c == q && i + 2 < n && chars[i + 1] == q && chars[i + 2] == q {
                let content = chars[content_start..i].iter().collect();
                return (content, i + 3);
            }
        } else if c == q {
            let content = chars[content_start..i].iter().collect();
            return (content, i + 1);
        } else if c == '\n' {
            let content = chars[content_start..i].iter().collect();
            return (content, i);
        }
        i += 1;
    }
    let content = chars[content_start.min(n)..].iter().collect();
    (content, n)
}

fn analyse(statement: &[Tok], out: &mut SourceScan) {
    for window in statement.windows(3) {
        if let [Tok::Name(f), Tok::Op('('), Tok::Str(module)] = window {
            if f == "__import__" || f == "import_module" {
                add_module(module.split('.').next().unwrap_or_default(), out);
            }
        }
    }
    for tok in statement {
        if let Tok::Str(s) = tok {
            if looks_like_path(s) {
                out.file_refs.insert(s.trim_start_matches("./").to_string());
            }
        }
    }
    let mut s = statement;
    loop {
        match s.first() {
            Some(Tok::Name(k)) if k == "import" => {
                for part in s[1..].split(|t| *t == Tok::Op(',')) {
                    if let Some(Tok::Name(first)) = part.first() {
                        add_module(first, out);
                    }
                }
                return;
            }
            Some(Tok::Name(k)) if k == "from" => {
                if let Some(Tok::Name(first)) = s.get(1) {
                    if first != "__future__" && first != "import" {
                        add_module(first, out);
                    }
                }
                return;
            }
            Some(Tok::Name(k)) if COMPOUND.contains(&k.as_str()) => {
                let Some(colon) = top_level_colon(s) else {
                    return;
                };
                s = &s[colon + 1..];
            }
            _ => return,
        }
    }
}

fn add_module(name: &str, out: &mut SourceScan) {
    if is_identifier(name) {
        out.imports.insert(name.to_string());
    }
}

/// Index of the first `:` outside brackets.
fn top_level_colon(s: &[Tok]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in s.iter().enumerate() {
        match t {
            Tok::Op('(' | '[' | '{') => depth += 1,
            Tok::Op(')' | ']' | '}') => depth = depth.saturating_sub(1),
            Tok::Op(':') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// A string literal that names a file: one line, no URL or format
/// placeholders, and a `/` or a file extension.
fn looks_like_path(s: &str) -> bool {
    if s.is_empty() || s.len() > 260 || s.contains("://") {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || matches!(c, '{' | '}' | '%' | '\\' | '*'))
    {
        return false;
    }
    if s.trim() != s {
        return false;
    }
    let last = s.rsplit('/').next().unwrap_or_default();
    let has_extension = match last.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty()
                && (1..=10).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && !ext.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    };
    has_extension || (s.contains('/') && !s.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(src: &str) -> Vec<String> {
        imports_in_source(src)
    }

    #[test]
    fn plain_and_aliased_imports_give_the_top_level_module() {
        assert_eq!(imports("import numpy as np\n"), vec!["numpy"]);
        assert_eq!(imports("import a.b.c as d, e.f\n"), vec!["a", "e"]);
        assert_eq!(imports("import os, sys"), vec!["os", "sys"]);
    }

    #[test]
    fn from_imports_give_the_top_level_module() {
        assert_eq!(
            imports("from sklearn.linear_model import LinearRegression"),
            vec!["sklearn"]
        );
        assert_eq!(
            imports("from x import (a,\n    b,\n)\nimport y"),
            vec!["x", "y"]
        );
    }

    #[test]
    fn relative_and_future_imports_are_left_out() {
        assert!(imports("from . import sibling\nfrom .pkg import x\nfrom .. import up").is_empty());
        assert!(imports("from __future__ import annotations").is_empty());
    }

    #[test]
    fn comments_and_strings_that_mention_import_are_not_imports() {
        assert!(imports("# import commented\nx = 1  # import trailing").is_empty());
        assert!(imports("s = 'import fake'\nt = \"from fake import x\"").is_empty());
        assert!(imports("'''\nimport in_docstring\n'''\n").is_empty());
        assert!(imports("r\"\"\"\nfrom raw_doc import x\n\"\"\"").is_empty());
        assert_eq!(
            imports("s = '\\'' ; import after_escape"),
            vec!["after_escape"]
        );
    }

    #[test]
    fn shell_and_magic_lines_are_skipped() {
        let cell =
            "!pip install pandas\n%pip install scipy\n  !pip install indented\nimport numpy\n";
        assert_eq!(imports(cell), vec!["numpy"]);
        assert!(imports("files = !ls *.csv").is_empty());
    }

    #[test]
    fn cell_magics_in_other_languages_are_skipped() {
        assert!(imports("%%bash\nimport not_python\n").is_empty());
        assert!(imports("%%writefile mod.py\nimport written_not_run\n").is_empty());
        assert_eq!(imports("%%time\nimport timed\n"), vec!["timed"]);
        assert_eq!(
            imports("\n%%capture out\nimport captured"),
            vec!["captured"]
        );
    }

    #[test]
    fn imports_inside_blocks_and_after_colons_count() {
        let cell = "try: import ujson as json\nexcept ImportError: import json\nif True:\n    import indented\ndef f(x: int): import in_def\n";
        assert_eq!(imports(cell), vec!["in_def", "indented", "json", "ujson"]);
    }

    #[test]
    fn statements_after_semicolons_and_continuations_count() {
        assert_eq!(
            imports("x = 1; import after_semicolon"),
            vec!["after_semicolon"]
        );
        assert_eq!(imports("import a \\\n    , b"), vec!["a", "b"]);
    }

    #[test]
    fn words_containing_import_are_not_imports() {
        assert!(imports("important = 1\nreimport(x)\nfrom_x = 2\nimportlib_x = 3").is_empty());
        assert!(imports("yield from gen()\nraise E from err").is_empty());
    }

    #[test]
    fn literal_dynamic_imports_count() {
        assert_eq!(
            imports("import importlib\nm = importlib.import_module(\"dyn.mod\")\nn = __import__('dunder')"),
            vec!["dunder", "dyn", "importlib"]
        );
    }

    #[test]
    fn unicode_module_names_are_kept() {
        assert_eq!(imports("import données"), vec!["données"]);
    }

    #[test]
    fn an_unterminated_string_does_not_swallow_the_next_line() {
        assert_eq!(imports("x = 'oops\nimport survivor"), vec!["survivor"]);
        assert!(imports("x = \"\"\"never closed\nimport inside").is_empty());
        assert!(imports("'''").is_empty());
    }

    #[test]
    fn file_paths_in_string_literals_are_collected() {
        let scan = scan_source(
            "df = pd.read_csv('data/raw.csv')\nopen(\"./results.json\")\nprint('hello world')\nf'{x}.csv'\n'https://x.org/a.csv'\n'%.2f'",
        );
        let refs: Vec<_> = scan.file_refs.into_iter().collect();
        assert_eq!(refs, vec!["data/raw.csv", "results.json"]);
    }
}
