//! Reading a `.ipynb` file: cell counts, kernel, and what its code cells
//! import. nbformat 4 (`cells`) and 3 (`worksheets[].cells`, code in
//! `input`) are understood; outputs are skipped without being kept.

use serde::Deserialize;

use crate::imports::{scan_source, SourceScan};
use crate::model::CellCounts;

/// What a notebook holds, besides its bytes.
#[derive(Debug, Default)]
pub(crate) struct ParsedNotebook {
    pub cells: CellCounts,
    pub scan: SourceScan,
    pub kernel_name: Option<String>,
    pub language: Option<String>,
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    cells: Vec<Cell>,
    #[serde(default)]
    worksheets: Vec<Worksheet>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Worksheet {
    #[serde(default)]
    cells: Vec<Cell>,
}

#[derive(Deserialize)]
struct Cell {
    #[serde(default)]
    cell_type: String,
    #[serde(default)]
    source: Option<Source>,
    /// nbformat 3 code cells.
    #[serde(default)]
    input: Option<Source>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Source {
    One(String),
    Lines(Vec<String>),
}

impl Source {
    fn text(&self) -> String {
        match self {
            Source::One(s) => s.clone(),
            Source::Lines(lines) => lines.concat(),
        }
    }
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    kernelspec: Option<KernelMeta>,
    #[serde(default)]
    language_info: Option<LanguageInfo>,
}

#[derive(Deserialize)]
struct KernelMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Deserialize)]
struct LanguageInfo {
    #[serde(default)]
    name: Option<String>,
}

/// Parse a notebook's bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<ParsedNotebook, String> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| format!("not a notebook: {e}"))?;
    let kernel_name = doc
        .metadata
        .kernelspec
        .as_ref()
        .and_then(|k| k.name.clone());
    let language = doc
        .metadata
        .kernelspec
        .as_ref()
        .and_then(|k| k.language.clone())
        .or_else(|| {
            doc.metadata
                .language_info
                .as_ref()
                .and_then(|l| l.name.clone())
        });
    let is_python = language
        .as_deref()
        .is_none_or(|l| l.eq_ignore_ascii_case("python"));
    let mut out = ParsedNotebook {
        kernel_name,
        language,
        ..ParsedNotebook::default()
    };
    let cells = doc
        .cells
        .iter()
        .chain(doc.worksheets.iter().flat_map(|w| w.cells.iter()));
    for cell in cells {
        match cell.cell_type.as_str() {
            "code" => {
                out.cells.code += 1;
                if is_python {
                    if let Some(src) = cell.source.as_ref().or(cell.input.as_ref()) {
                        out.scan.merge(scan_source(&src.text()));
                    }
                }
            }
            "markdown" | "heading" => out.cells.markdown += 1,
            "raw" => out.cells.raw += 1,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_kernel_and_imports_are_read_from_nbformat_4() {
        let nb = br##"{
          "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# import nothing\n"]},
            {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "text": ["import fake\n"]}],
             "source": ["import numpy as np\n", "from yaml import safe_load\n"]},
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": "!pip install x\nfrom . import rel"},
            {"cell_type": "raw", "metadata": {}, "source": "import raw_is_not_code"}
          ],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5
        }"##;
        let p = parse(nb).unwrap();
        assert_eq!(
            p.cells,
            CellCounts {
                code: 2,
                markdown: 1,
                raw: 1
            }
        );
        assert_eq!(
            p.scan.imports.iter().collect::<Vec<_>>(),
            vec!["numpy", "yaml"]
        );
        assert_eq!(p.kernel_name.as_deref(), Some("python3"));
        assert_eq!(p.language.as_deref(), Some("python"));
    }

    #[test]
    fn nbformat_3_worksheets_are_read() {
        let nb =
            br#"{"worksheets": [{"cells": [{"cell_type": "code", "input": ["import pandas\n"]},
            {"cell_type": "heading", "source": "T"}]}], "metadata": {}, "nbformat": 3}"#;
        let p = parse(nb).unwrap();
        assert_eq!(p.cells.code, 1);
        assert_eq!(p.cells.markdown, 1);
        assert!(p.scan.imports.contains("pandas"));
    }

    #[test]
    fn code_of_another_language_is_not_scanned_for_python_imports() {
        let nb = br#"{"cells": [{"cell_type": "code", "source": "import Base.show"}],
            "metadata": {"kernelspec": {"name": "julia-1.9", "language": "julia"}}}"#;
        let p = parse(nb).unwrap();
        assert_eq!(p.cells.code, 1);
        assert!(p.scan.imports.is_empty());
    }

    #[test]
    fn a_file_that_is_not_json_is_an_error() {
        assert!(parse(b"not json").is_err());
    }
}
