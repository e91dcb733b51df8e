//! Jupyter notebooks to Markdown, for the knowledge base and transfer packages.
//!
//! Policy:
//!
//! - markdown cells are copied verbatim, except inline `data:` URIs of more
//!   than [`INLINE_DATA_URI_MIN`] base64 characters, which become a one-line
//!   summary (they are pasted images, and megabytes of base64 help neither a
//!   reader nor the index);
//! - code cells become fenced blocks in the notebook's language
//!   (`metadata.kernelspec.language`, then `metadata.language_info.name`,
//!   then nbformat 3's `language`, then [`NotebookOptions::default_language`]);
//! - text outputs (streams, `text/plain` or `text/markdown` of results and
//!   displays, `ename: evalue` of errors) become fenced `text` blocks with
//!   ANSI escapes removed, carriage-return progress bars collapsed to their
//!   last state, and at most [`NotebookOptions::max_output_lines`] lines of at
//!   most [`NotebookOptions::max_line_chars`] characters, the rest counted in
//!   a `[… N more lines]` marker;
//! - every other output type (images, HTML, JSON, widgets, …) is summarised
//!   on one line: `[image/png output, 34 KB]`.
//!
//! nbformat 4 is the target; nbformat 3 (`worksheets`, `input`, `pyout`,
//! `pyerr`, flat mime keys) is read too, and missing fields are treated as
//! empty. Input that is not a notebook is refused with
//! [`Error::NotANotebook`] naming what is wrong, never with its contents.
//!
//! The [`SourceMap`] records, for each range of Markdown lines, which cell
//! (index in the notebook, kind, source or outputs) it came from, so a
//! citation span in the Markdown can point back to a cell. Redaction
//! ([`Markdown::redacted`]) keeps the line structure, so the map stays valid.

use crate::error::{Error, Result};
use crate::redact::{redact, RedactionReport};
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// Inline `data:` URIs in markdown cells with at least this many base64
/// characters are replaced by a summary.
pub const INLINE_DATA_URI_MIN: usize = 512;

/// How a notebook is rendered.
#[derive(Clone, Debug)]
pub struct NotebookOptions {
    /// Most lines kept of one text output; the rest is counted in a marker.
    pub max_output_lines: usize,
    /// Longest line kept of a text output, in characters; longer lines are cut and end in `…`.
    pub max_line_chars: usize,
    /// Language of code cells when the notebook does not say.
    pub default_language: String,
    /// An optional `# title` line written before the first cell.
    pub title: Option<String>,
}

impl Default for NotebookOptions {
    fn default() -> Self {
        NotebookOptions {
            max_output_lines: 40,
            max_line_chars: 400,
            default_language: "python".to_string(),
            title: None,
        }
    }
}

/// The kind of a notebook cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// A markdown cell (nbformat 3 heading cells too).
    Markdown,
    /// A code cell.
    Code,
    /// A raw cell.
    Raw,
}

/// Which part of a cell a range of Markdown lines shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellPart {
    /// The cell's source.
    Source,
    /// The outputs of a code cell.
    Outputs,
}

/// One range of Markdown lines and the cell it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceSpan {
    /// First line of the range, 1-based.
    pub first_line: usize,
    /// Last line of the range, 1-based, inclusive.
    pub last_line: usize,
    /// Index of the cell in the notebook (0-based; nbformat 3 worksheets are concatenated).
    pub cell_index: usize,
    /// The cell's kind.
    pub kind: CellKind,
    /// Source or outputs.
    pub part: CellPart,
}

/// For each range of lines of a converted notebook, the cell it came from.
/// Lines outside every range are separators and the optional title.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceMap {
    spans: Vec<SourceSpan>,
}

impl SourceMap {
    /// All ranges, in line order.
    pub fn spans(&self) -> &[SourceSpan] {
        &self.spans
    }

    /// The range containing a 1-based line number.
    pub fn at_line(&self, line: usize) -> Option<&SourceSpan> {
        let i = self.spans.partition_point(|s| s.last_line < line);
        self.spans.get(i).filter(|s| s.first_line <= line)
    }

    /// The range containing a byte offset of `text`, the Markdown this map
    /// belongs to (redacted or not: redaction keeps lines).
    pub fn at_byte(&self, text: &str, offset: usize) -> Option<&SourceSpan> {
        let offset = offset.min(text.len());
        let line = text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        self.at_line(line)
    }

    /// The ranges overlapping a byte span `[start, end)` of `text`, e.g. all
    /// cells a citation touches.
    pub fn in_byte_span(&self, text: &str, start: usize, end: usize) -> Vec<&SourceSpan> {
        let line_of = |offset: usize| {
            let offset = offset.min(text.len());
            text.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        };
        let first = line_of(start);
        let last = line_of(end.saturating_sub(1).max(start));
        self.spans
            .iter()
            .filter(|s| s.last_line >= first && s.first_line <= last)
            .collect()
    }
}

/// A notebook rendered as Markdown.
#[derive(Clone, Debug)]
pub struct Markdown {
    /// The Markdown text.
    pub text: String,
    /// Where each range of lines came from.
    pub source_map: SourceMap,
    /// Language of the code cells (as used in their fences).
    pub language: String,
    /// The notebook's `nbformat` (inferred when missing).
    pub nbformat: u64,
    /// Number of cells in the notebook (empty cells included).
    pub cell_count: usize,
}

impl Markdown {
    /// The same Markdown with e-mail addresses, phone numbers and secrets
    /// redacted (see [`crate::redact`]); the source map stays valid because
    /// redaction never adds or removes lines.
    pub fn redacted(self) -> (Markdown, RedactionReport) {
        let (text, report) = redact(&self.text);
        (Markdown { text, ..self }, report)
    }
}

/// Converts the bytes of an `.ipynb` file to Markdown.
///
/// # Errors
/// [`Error::NotANotebook`] when the bytes are not UTF-8 JSON, or the JSON has
/// neither a `cells` list (nbformat 4) nor `worksheets` (nbformat 3).
pub fn notebook_to_markdown(ipynb: &[u8], opts: &NotebookOptions) -> Result<Markdown> {
    let bytes = ipynb.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(ipynb);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::NotANotebook("the file is empty".into()));
    }
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::NotANotebook(format!("not valid JSON ({e})")))?;
    let Value::Object(root) = root else {
        return Err(Error::NotANotebook(
            "the top level is not a JSON object".into(),
        ));
    };
    let metadata = root.get("metadata").and_then(Value::as_object);
    let (cells, nbformat) = collect_cells(&root)?;
    let language = notebook_language(metadata, &cells, opts);

    let mut out = Writer::default();
    if let Some(title) = &opts.title {
        out.block(&format!("# {}", one_line(title)));
    }
    for (index, cell) in cells.iter().enumerate() {
        let Some(cell) = cell.as_object() else {
            continue;
        };
        let cell_type = cell.get("cell_type").and_then(Value::as_str).unwrap_or("");
        match cell_type {
            "code" => {
                let source = text_of(cell.get("source").or_else(|| cell.get("input")));
                let source = source.trim_end_matches(['\n', '\r']);
                if !source.trim().is_empty() {
                    let block = fenced(&language, source);
                    out.cell_block(&block, index, CellKind::Code, CellPart::Source);
                }
                let outputs = render_outputs(cell.get("outputs"), opts);
                if !outputs.is_empty() {
                    out.cell_block(&outputs, index, CellKind::Code, CellPart::Outputs);
                }
            }
            "raw" => {
                let source = text_of(cell.get("source"));
                let source = source.trim_end_matches(['\n', '\r']);
                if !source.trim().is_empty() {
                    let block = fenced("", source);
                    out.cell_block(&block, index, CellKind::Raw, CellPart::Source);
                }
            }
            "heading" => {
                // nbformat 3: a heading cell with a level.
                let level = cell
                    .get("level")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .clamp(1, 6);
                let source = text_of(cell.get("source"));
                let line = format!(
                    "{} {}",
                    "#".repeat(usize::try_from(level).unwrap_or(1)),
                    one_line(&source)
                );
                out.cell_block(&line, index, CellKind::Markdown, CellPart::Source);
            }
            // "markdown", and unknown cell types whose text is still worth keeping.
            _ => {
                let source = text_of(cell.get("source"));
                let source = summarise_data_uris(source.trim_end_matches(['\n', '\r']));
                if !source.trim().is_empty() {
                    out.cell_block(&source, index, CellKind::Markdown, CellPart::Source);
                }
            }
        }
    }
    Ok(Markdown {
        text: out.text,
        source_map: SourceMap { spans: out.spans },
        language,
        nbformat,
        cell_count: cells.len(),
    })
}

/// The cells of a v4 notebook, or of all worksheets of a v3 one, and the nbformat.
fn collect_cells(root: &Map<String, Value>) -> Result<(Vec<&Value>, u64)> {
    let declared = root.get("nbformat").and_then(Value::as_u64);
    if let Some(cells) = root.get("cells") {
        let Value::Array(cells) = cells else {
            return Err(Error::NotANotebook("`cells` is not a list".into()));
        };
        return Ok((cells.iter().collect(), declared.unwrap_or(4)));
    }
    if let Some(worksheets) = root.get("worksheets") {
        let Value::Array(worksheets) = worksheets else {
            return Err(Error::NotANotebook("`worksheets` is not a list".into()));
        };
        let cells = worksheets
            .iter()
            .filter_map(|w| w.get("cells").and_then(Value::as_array))
            .flatten()
            .collect();
        return Ok((cells, declared.unwrap_or(3)));
    }
    Err(Error::NotANotebook(
        "no `cells` list (nbformat 4) or `worksheets` (nbformat 3)".into(),
    ))
}

fn notebook_language(
    metadata: Option<&Map<String, Value>>,
    cells: &[&Value],
    opts: &NotebookOptions,
) -> String {
    let from_meta = metadata.and_then(|m| {
        let kernelspec = m
            .get("kernelspec")
            .and_then(|k| k.get("language"))
            .and_then(Value::as_str);
        let language_info = m
            .get("language_info")
            .and_then(|l| l.get("name"))
            .and_then(Value::as_str);
        let v3 = m.get("language").and_then(Value::as_str);
        kernelspec.or(language_info).or(v3)
    });
    let from_cells = || {
        cells
            .iter()
            .find_map(|c| c.get("language").and_then(Value::as_str))
    };
    let candidate = from_meta.or_else(from_cells).unwrap_or("");
    let candidate = candidate.trim().to_ascii_lowercase();
    let valid = !candidate.is_empty()
        && candidate.len() <= 32
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '.' | '_' | '-'));
    if valid {
        candidate
    } else {
        opts.default_language.clone()
    }
}

/// nbformat stores multi-line strings either as one string or as a list of lines.
fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.replace("\r\n", "\n"),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<String>()
            .replace("\r\n", "\n"),
        _ => String::new(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A fenced block whose fence is longer than any backtick run inside, so the
/// content can never close it early.
fn fenced(info: &str, content: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{info}\n{content}\n{fence}")
}

/// Accumulates the Markdown and the source map; blocks are separated by one blank line.
#[derive(Default)]
struct Writer {
    text: String,
    spans: Vec<SourceSpan>,
    /// Lines written so far.
    lines: usize,
}

impl Writer {
    /// Appends a block (no trailing newline) and returns its 1-based line range.
    fn block(&mut self, block: &str) -> (usize, usize) {
        if !self.text.is_empty() {
            self.text.push('\n');
            self.lines += 1;
        }
        let first = self.lines + 1;
        let count = block.split('\n').count();
        self.text.push_str(block);
        self.text.push('\n');
        self.lines += count;
        (first, self.lines)
    }

    fn cell_block(&mut self, block: &str, cell_index: usize, kind: CellKind, part: CellPart) {
        let (first_line, last_line) = self.block(block);
        self.spans.push(SourceSpan {
            first_line,
            last_line,
            cell_index,
            kind,
            part,
        });
    }
}

/// One rendered output: a text block or a one-line summary.
enum Piece {
    Text(String),
    Summary(String),
}

fn render_outputs(outputs: Option<&Value>, opts: &NotebookOptions) -> String {
    let Some(outputs) = outputs.and_then(Value::as_array) else {
        return String::new();
    };
    let mut pieces: Vec<Piece> = Vec::new();
    // Jupyter splits one print loop into many stream outputs; merge runs of the
    // same stream so truncation counts the lines of the whole run.
    let mut stream: Option<(String, String)> = None;
    let flush = |stream: &mut Option<(String, String)>, pieces: &mut Vec<Piece>| {
        if let Some((_, text)) = stream.take() {
            pieces.push(Piece::Text(text));
        }
    };
    for output in outputs {
        let Some(output) = output.as_object() else {
            continue;
        };
        let output_type = output
            .get("output_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        if output_type == "stream" {
            let name = output
                .get("name")
                .or_else(|| output.get("stream"))
                .and_then(Value::as_str)
                .unwrap_or("stdout")
                .to_string();
            let text = text_of(output.get("text"));
            match &mut stream {
                Some((current, buffer)) if *current == name => buffer.push_str(&text),
                _ => {
                    flush(&mut stream, &mut pieces);
                    stream = Some((name, text));
                }
            }
            continue;
        }
        flush(&mut stream, &mut pieces);
        match output_type {
            "execute_result" | "display_data" | "pyout" | "update_display_data" => {
                render_bundle(output, &mut pieces);
            }
            "error" | "pyerr" => {
                let name = output
                    .get("ename")
                    .and_then(Value::as_str)
                    .unwrap_or("Error");
                let value = output.get("evalue").and_then(Value::as_str).unwrap_or("");
                let line = if value.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}: {value}")
                };
                pieces.push(Piece::Text(line));
            }
            "" => pieces.push(Piece::Summary("[output of unknown type]".into())),
            other => pieces.push(Piece::Summary(format!("[{} output]", one_line(other)))),
        }
    }
    flush(&mut stream, &mut pieces);

    let mut rendered: Vec<String> = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                let text = clean_text_output(&text, opts);
                if !text.is_empty() {
                    rendered.push(fenced("text", &text));
                }
            }
            Piece::Summary(summary) => rendered.push(summary),
        }
    }
    rendered.join("\n\n")
}

/// nbformat 3 kept the mime bundle flat on the output, under short names.
const V3_MIME_KEYS: &[(&str, &str)] = &[
    ("text", "text/plain"),
    ("html", "text/html"),
    ("markdown", "text/markdown"),
    ("latex", "text/latex"),
    ("png", "image/png"),
    ("jpeg", "image/jpeg"),
    ("svg", "image/svg+xml"),
    ("json", "application/json"),
    ("javascript", "application/javascript"),
    ("pdf", "application/pdf"),
];

fn render_bundle(output: &Map<String, Value>, pieces: &mut Vec<Piece>) {
    let mut bundle: Vec<(String, &Value)> = Vec::new();
    if let Some(data) = output.get("data").and_then(Value::as_object) {
        bundle.extend(data.iter().map(|(k, v)| (k.clone(), v)));
    } else {
        for (short, mime) in V3_MIME_KEYS {
            if let Some(v) = output.get(*short) {
                bundle.push(((*mime).to_string(), v));
            }
        }
    }
    // The text shown: Markdown displays have a useless text/plain repr
    // (`<IPython.core.display.Markdown object>`), so prefer text/markdown.
    let text_mime = ["text/markdown", "text/plain"]
        .into_iter()
        .find(|m| bundle.iter().any(|(k, _)| k == m));
    let mut summaries: Vec<&(String, &Value)> = bundle
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != text_mime)
        .collect();
    // Images first: "a figure was drawn" is what a reader looks for.
    summaries.sort_by_key(|(k, _)| (!k.starts_with("image/"), k.clone()));
    for (mime, value) in summaries {
        pieces.push(Piece::Summary(format!(
            "[{} output, {}]",
            one_line(mime),
            human_size(payload_size(mime, value))
        )));
    }
    if let Some(mime) = text_mime {
        if let Some((_, v)) = bundle.iter().find(|(k, _)| k == mime) {
            pieces.push(Piece::Text(text_of(Some(v))));
        }
    }
}

/// The size of an output's payload in bytes; base64-encoded binary types are
/// measured decoded.
fn payload_size(mime: &str, value: &Value) -> usize {
    let text = match value {
        Value::String(_) | Value::Array(_) => text_of(Some(value)),
        other => other.to_string(),
    };
    let binary =
        (mime.starts_with("image/") && mime != "image/svg+xml") || mime == "application/pdf";
    if binary {
        let chars = text
            .bytes()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
            .count();
        chars * 3 / 4
    } else {
        text.len()
    }
}

fn human_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes < KIB {
        format!("{bytes} bytes")
    } else if bytes < MIB {
        format!("{} KB", (bytes + KIB / 2) / KIB)
    } else {
        let tenths = (bytes * 10 + MIB / 2) / MIB;
        format!("{}.{} MB", tenths / 10, tenths % 10)
    }
}

static ANSI: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // CSI sequences (colours, cursor moves), OSC sequences (titles, links), and
    // two-byte escapes.
    Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]").ok()
});

/// Removes ANSI escape sequences (and, if the pattern were ever unavailable,
/// every ESC byte, so no escape reaches the Markdown either way).
pub(crate) fn strip_ansi(text: &str) -> String {
    match ANSI.as_ref() {
        Some(re) => re.replace_all(text, "").into_owned(),
        None => text.replace('\x1b', ""),
    }
}

/// ANSI removed, carriage returns collapsed, control characters dropped,
/// trailing blank lines trimmed, then lines limited.
fn clean_text_output(text: &str, opts: &NotebookOptions) -> String {
    let text = strip_ansi(text);
    // Slices only: a 100 MB output costs one scan, and only the kept lines
    // are cleaned and copied.
    let lines: Vec<&str> = text.split('\n').collect();
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let lines = &lines[..end];
    let keep = lines.len().min(opts.max_output_lines.max(1));
    let mut out: Vec<String> = lines[..keep]
        .iter()
        .map(|line| {
            // A progress bar rewrites its line with `\r`: keep the last state.
            let last = line
                .rsplit('\r')
                .find(|part| !part.is_empty())
                .unwrap_or("");
            let visible: String = last
                .chars()
                .filter(|&c| c == '\t' || !c.is_control())
                .collect();
            cut_line(&visible, opts.max_line_chars.max(1))
        })
        .collect();
    if lines.len() > keep {
        out.push(format!("[… {} more lines]", lines.len() - keep));
    }
    out.join("\n")
}

fn cut_line(line: &str, max_chars: usize) -> String {
    match line.char_indices().nth(max_chars) {
        Some((cut, _)) => {
            let rest = line[cut..].chars().count();
            format!("{}… [{rest} more characters]", &line[..cut])
        }
        None => line.to_string(),
    }
}

static DATA_URI: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(&format!(
        r"data:([A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]{{{INLINE_DATA_URI_MIN},}})"
    ))
    .ok()
});

fn summarise_data_uris(source: &str) -> String {
    let Some(re) = DATA_URI.as_ref() else {
        return source.to_string();
    };
    re.replace_all(source, |caps: &regex::Captures<'_>| {
        let mime = caps.get(1).map_or("", |m| m.as_str());
        let payload = caps.get(2).map_or("", |m| m.as_str());
        // Keep the newlines a multi-line base64 blob had, so line numbers of
        // the rest of the cell do not move.
        let newlines = "\n".repeat(payload.matches('\n').count());
        format!(
            "[inline {mime}, {}]{newlines}",
            human_size(payload_size("image/", &Value::String(payload.to_string())))
        )
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(nb: &Value) -> Markdown {
        notebook_to_markdown(nb.to_string().as_bytes(), &NotebookOptions::default()).unwrap()
    }

    #[test]
    fn markdown_and_code_cells_are_rendered_in_order_with_the_kernel_language() {
        let nb = json!({
            "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}},
            "cells": [
                {"cell_type": "markdown", "source": ["# Growth curves\n", "\n", "We *fit* them."]},
                {"cell_type": "code", "source": "fit <- lm(y ~ x)\nsummary(fit)", "outputs": []}
            ]
        });
        let md = convert(&nb);
        assert_eq!(
            md.text,
            "# Growth curves\n\nWe *fit* them.\n\n```r\nfit <- lm(y ~ x)\nsummary(fit)\n```\n"
        );
        assert_eq!(md.language, "r");
        let spans = md.source_map.spans();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].first_line, spans[0].last_line), (1, 3));
        assert_eq!((spans[1].first_line, spans[1].last_line), (5, 8));
        assert_eq!(spans[1].kind, CellKind::Code);
        assert_eq!(md.source_map.at_line(6).map(|s| s.cell_index), Some(1));
        assert_eq!(md.source_map.at_line(4), None);
    }

    #[test]
    fn the_language_falls_back_to_language_info_then_python() {
        let with_info = json!({"metadata": {"language_info": {"name": "julia"}},
            "cells": [{"cell_type": "code", "source": "1+1"}]});
        assert!(convert(&with_info).text.starts_with("```julia\n"));
        let without = json!({"cells": [{"cell_type": "code", "source": "1+1"}]});
        assert!(convert(&without).text.starts_with("```python\n"));
        let hostile = json!({"metadata": {"kernelspec": {"language": "py\n```\n# injected"}},
            "cells": [{"cell_type": "code", "source": "1+1"}]});
        assert!(convert(&hostile).text.starts_with("```python\n"));
    }

    #[test]
    fn outputs_are_text_blocks_and_summaries() {
        let png = "iVBORw0KGgo".repeat(3200); // ~26 KB decoded
        let nb = json!({"cells": [{
            "cell_type": "code", "execution_count": 3,
            "source": ["import pandas as pd\n", "df.head()"],
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["loading\n"]},
                {"output_type": "stream", "name": "stdout", "text": "done\n"},
                {"output_type": "execute_result", "execution_count": 3, "metadata": {},
                 "data": {"text/plain": ["   a  b\n", "0  1  2"], "text/html": "<table>…</table>"}},
                {"output_type": "display_data", "metadata": {},
                 "data": {"image/png": png, "text/plain": "<Figure size 640x480 with 1 Axes>"}},
                {"output_type": "error", "ename": "KeyError", "evalue": "\u{1b}[0;31m'c'\u{1b}[0m",
                 "traceback": ["\u{1b}[0;31m---------\u{1b}[0m", "KeyError: 'c'"]}
            ]
        }]});
        let md = convert(&nb);
        let expected = "```python\nimport pandas as pd\ndf.head()\n```\n\n\
            ```text\nloading\ndone\n```\n\n\
            [text/html output, 18 bytes]\n\n\
            ```text\n   a  b\n0  1  2\n```\n\n\
            [image/png output, 26 KB]\n\n\
            ```text\n<Figure size 640x480 with 1 Axes>\n```\n\n\
            ```text\nKeyError: 'c'\n```\n";
        assert_eq!(md.text, expected);
        assert!(!md.text.contains('\u{1b}'));
        let spans = md.source_map.spans();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].part, CellPart::Outputs);
        assert_eq!(spans[1].first_line, 6);
        assert_eq!(spans[1].last_line, md.text.lines().count());
    }

    #[test]
    fn long_outputs_are_truncated_with_a_marker() {
        let text: String = (0..1000).map(|i| format!("row {i}\n")).collect();
        let nb = json!({"cells": [{"cell_type": "code", "source": "print(rows)",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]}]});
        let opts = NotebookOptions {
            max_output_lines: 5,
            ..NotebookOptions::default()
        };
        let md = notebook_to_markdown(nb.to_string().as_bytes(), &opts).unwrap();
        assert!(
            md.text.contains("row 4\n[… 995 more lines]\n```"),
            "{}",
            md.text
        );
        assert!(!md.text.contains("row 5\n"));

        let wide = "x".repeat(10_000);
        let nb = json!({"cells": [{"cell_type": "code", "source": "print(x)",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": wide}]}]});
        let md = convert(&nb);
        assert!(md.text.contains("… [9600 more characters]"));
        assert!(md.text.len() < 1000);
    }

    #[test]
    fn progress_bars_collapse_to_their_last_state() {
        let nb = json!({"cells": [{"cell_type": "code", "source": "train()",
            "outputs": [{"output_type": "stream", "name": "stderr",
                "text": "\r  0%|          | 0/10\r 50%|#####     | 5/10\r100%|##########| 10/10\r\nok\n"}]}]});
        let md = convert(&nb);
        assert!(
            md.text.contains("```text\n100%|##########| 10/10\nok\n```"),
            "{}",
            md.text
        );
    }

    #[test]
    fn a_cell_containing_a_fence_gets_a_longer_fence() {
        let nb = json!({"cells": [{"cell_type": "code", "source": "s = '''\n```\n'''"}]});
        let md = convert(&nb);
        assert!(md.text.starts_with("````python\n"));
        assert!(md.text.ends_with("\n````\n"));
    }

    #[test]
    fn nbformat_3_is_read() {
        let nb = json!({
            "nbformat": 3, "nbformat_minor": 0,
            "metadata": {"name": "old"},
            "worksheets": [{"cells": [
                {"cell_type": "heading", "level": 2, "source": ["Results"]},
                {"cell_type": "code", "language": "python", "input": ["x = 41\n", "x + 1"],
                 "outputs": [
                    {"output_type": "pyout", "prompt_number": 1, "text": ["42"]},
                    {"output_type": "display_data", "png": "AAAA"},
                    {"output_type": "stream", "stream": "stdout", "text": ["hi\n"]},
                    {"output_type": "pyerr", "ename": "ValueError", "evalue": "bad"}
                 ]}
            ]}]
        });
        let md = convert(&nb);
        assert_eq!(md.nbformat, 3);
        assert_eq!(
            md.text,
            "## Results\n\n```python\nx = 41\nx + 1\n```\n\n```text\n42\n```\n\n\
             [image/png output, 3 bytes]\n\n```text\nhi\n```\n\n```text\nValueError: bad\n```\n"
        );
    }

    #[test]
    fn missing_fields_are_tolerated() {
        let nb = json!({"cells": [
            {"cell_type": "code"},
            {"source": "no cell type"},
            {"cell_type": "code", "source": "x", "outputs": [{}, 3, {"output_type": "stream"}]},
            "not a cell",
            {"cell_type": "raw", "source": "raw text"}
        ]});
        let md = convert(&nb);
        assert!(md.text.contains("no cell type"));
        assert!(md.text.contains("```python\nx\n```"));
        assert!(md.text.contains("[output of unknown type]"));
        assert!(md.text.contains("```\nraw text\n```"));
        assert_eq!(md.cell_count, 5);
        assert_eq!(md.source_map.spans().last().map(|s| s.cell_index), Some(4));
    }

    #[test]
    fn non_notebooks_are_refused_with_a_clear_error() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"\x89PNG\r\n\x1a\n\0\0", "not valid JSON"),
            (b"{\"cells\": [", "not valid JSON"),
            (b"[1, 2, 3]", "not a JSON object"),
            (b"{\"name\": \"package.json\"}", "no `cells`"),
            (b"{\"cells\": {}}", "`cells` is not a list"),
        ];
        for (bytes, expected) in cases {
            let err = notebook_to_markdown(bytes, &NotebookOptions::default()).unwrap_err();
            assert!(matches!(err, Error::NotANotebook(_)));
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(br#"{"cells": [{"cell_type": "markdown", "source": "hi"}]}"#);
        let md = notebook_to_markdown(&bytes, &NotebookOptions::default()).unwrap();
        assert_eq!(md.text, "hi\n");
    }

    #[test]
    fn pasted_images_in_markdown_cells_are_summarised() {
        let blob = "A".repeat(4000);
        let nb = json!({"cells": [{"cell_type": "markdown",
            "source": format!("Before ![plot](data:image/png;base64,{blob}) after")}]});
        let md = convert(&nb);
        assert_eq!(md.text, "Before ![plot]([inline image/png, 3 KB]) after\n");
    }

    #[test]
    fn a_title_is_written_first_and_maps_to_no_cell() {
        let nb = json!({"cells": [{"cell_type": "markdown", "source": "body"}]});
        let opts = NotebookOptions {
            title: Some("analysis.ipynb".into()),
            ..NotebookOptions::default()
        };
        let md = notebook_to_markdown(nb.to_string().as_bytes(), &opts).unwrap();
        assert_eq!(md.text, "# analysis.ipynb\n\nbody\n");
        assert_eq!(md.source_map.at_byte(&md.text, 0), None);
        let body = md.text.find("body").unwrap();
        assert_eq!(
            md.source_map.at_byte(&md.text, body).map(|s| s.cell_index),
            Some(0)
        );
    }

    #[test]
    fn redaction_keeps_the_source_map_valid() {
        let nb = json!({"cells": [
            {"cell_type": "code", "source": "KEY = \"\"\"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAbCd\n-----END RSA PRIVATE KEY-----\"\"\""},
            {"cell_type": "markdown", "source": "Ask ada@example.org"}
        ]});
        let md = convert(&nb);
        let before = md.source_map.clone();
        let (red, report) = md.redacted();
        assert_eq!(report.redactions().len(), 2);
        assert_eq!(red.source_map, before);
        let ask = red.text.find("Ask").unwrap();
        assert_eq!(
            red.source_map.at_byte(&red.text, ask).map(|s| s.cell_index),
            Some(1)
        );
        assert!(red.text.contains("Ask [REDACTED:email]"));
    }

    #[test]
    fn a_citation_span_maps_to_the_cells_it_covers() {
        let nb = json!({"cells": [
            {"cell_type": "markdown", "source": "one"},
            {"cell_type": "markdown", "source": "two"},
            {"cell_type": "markdown", "source": "three"}
        ]});
        let md = convert(&nb);
        let start = md.text.find("two").unwrap();
        let end = md.text.find("three").unwrap() + 5;
        let cells: Vec<usize> = md
            .source_map
            .in_byte_span(&md.text, start, end)
            .iter()
            .map(|s| s.cell_index)
            .collect();
        assert_eq!(cells, vec![1, 2]);
    }
}
