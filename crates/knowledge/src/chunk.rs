//! Hierarchical chunking, as the seed's Knowledge Base does it: a document is
//! cut into parent chunks of about [`ChunkConfig::parent_tokens`] tokens and
//! each parent into child chunks of about [`ChunkConfig::child_tokens`].
//! Children are what the index matches; the parent is the context returned
//! with a hit.
//!
//! **Token approximation.** There is no model tokenizer here. A token is a
//! run of letters, digits and `_` (one token per started 8 characters, so a
//! 40-character hash counts 5), or a single other non-space character
//! (`=`, `.`, `#`, …); whitespace separates and counts nothing. On English
//! prose this is within about 20% of BPE tokenizers (words are one token,
//! punctuation one each); on code and numbers it overcounts slightly, which
//! only makes chunks a little smaller than the target.
//!
//! **Boundaries.** A chunk ends at the best boundary in the second half of
//! its budget: before a Markdown heading (outside code fences), else at a
//! blank line, else at a line end, else after a sentence, else between
//! words; a single word longer than the budget is cut inside. Spans are
//! byte offsets into the document, trimmed of surrounding whitespace and on
//! character boundaries, so `&document[start..end]` is always the chunk's
//! text. Children never overlap and never cross their parent's bounds.

use serde::Serialize;

/// Characters of one word counted as one token.
const CHARS_PER_WORD_TOKEN: usize = 8;

/// Chunk sizes, in approximate tokens (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkConfig {
    /// Target size of a parent chunk (the seed: 1500).
    pub parent_tokens: usize,
    /// Target size of a child chunk (the seed: 300).
    pub child_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            parent_tokens: 1500,
            child_tokens: 300,
        }
    }
}

/// A parent chunk: the context of its children.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParentChunk {
    /// Position among the document's parents, from 0.
    pub index: usize,
    /// Byte offset of the first byte in the document.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Approximate tokens.
    pub tokens: usize,
    /// The children, in document order, covering the parent's text.
    pub children: Vec<ChildChunk>,
}

/// A child chunk: the unit the index matches and cites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChildChunk {
    /// Byte offset of the first byte in the document.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Approximate tokens.
    pub tokens: usize,
    /// The nearest Markdown heading at or before the chunk's start, if any.
    pub section: Option<String>,
}

/// A chunked document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Chunks {
    /// The first level-1 heading, if the document is Markdown and has one.
    pub title: Option<String>,
    /// The parents in document order.
    pub parents: Vec<ParentChunk>,
}

/// Approximate token count of `text` (see the module docs).
pub fn approx_tokens(text: &str) -> usize {
    tokens(text).len()
}

/// Cuts `text` into parents and children. `markdown` turns on heading
/// detection (section names and preferred boundaries); for other formats
/// (pip freeze, JSON lines) lines are the natural boundaries.
pub fn chunk_document(text: &str, config: &ChunkConfig, markdown: bool) -> Chunks {
    let toks = tokens(text);
    let headings = if markdown { headings(text) } else { Vec::new() };
    let title = headings
        .iter()
        .find(|h| h.level == 1)
        .map(|h| h.text.clone());
    let parent_budget = config.parent_tokens.max(1);
    let child_budget = config.child_tokens.clamp(1, parent_budget);

    let mut parents = Vec::new();
    for (index, (lo, hi)) in split(text, &toks, &headings, 0, toks.len(), parent_budget)
        .into_iter()
        .enumerate()
    {
        let children = split(text, &toks, &headings, lo, hi, child_budget)
            .into_iter()
            .map(|(clo, chi)| {
                let start = toks[clo].start;
                ChildChunk {
                    start,
                    end: toks[chi - 1].end,
                    tokens: chi - clo,
                    section: section_at(&headings, start),
                }
            })
            .collect();
        parents.push(ParentChunk {
            index,
            start: toks[lo].start,
            end: toks[hi - 1].end,
            tokens: hi - lo,
            children,
        });
    }
    Chunks { title, parents }
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    start: usize,
    end: usize,
}

fn tokens(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word: Option<(usize, usize)> = None; // (start, chars so far)
    for (i, c) in text.char_indices() {
        let is_word = c.is_alphanumeric() || c == '_';
        if is_word {
            match &mut word {
                Some((start, chars)) if *chars == CHARS_PER_WORD_TOKEN => {
                    out.push(Tok {
                        start: *start,
                        end: i,
                    });
                    *start = i;
                    *chars = 1;
                }
                Some((_, chars)) => *chars += 1,
                None => word = Some((i, 1)),
            }
            continue;
        }
        if let Some((start, _)) = word.take() {
            out.push(Tok { start, end: i });
        }
        if !c.is_whitespace() {
            out.push(Tok {
                start: i,
                end: i + c.len_utf8(),
            });
        }
    }
    if let Some((start, _)) = word {
        out.push(Tok {
            start,
            end: text.len(),
        });
    }
    out
}

#[derive(Clone, Debug)]
struct Heading {
    /// Byte offset of the `#`.
    offset: usize,
    level: usize,
    text: String,
}

/// ATX headings outside fenced code blocks (a `# comment` in a code cell is
/// not a heading).
fn headings(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let body = trimmed.trim_end();
        if indent <= 3 {
            if let Some(marker) = body.chars().next().filter(|c| *c == '`' || *c == '~') {
                let run = body.chars().take_while(|c| *c == marker).count();
                if run >= 3 {
                    match fence {
                        None => fence = Some((marker, run)),
                        Some((open, len))
                            if open == marker && run >= len && body[run..].trim().is_empty() =>
                        {
                            fence = None;
                        }
                        Some(_) => {}
                    }
                    continue;
                }
            }
        }
        if fence.is_some() || indent > 3 {
            continue;
        }
        let level = body.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) {
            let rest = &body[level..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                let text = rest.trim().trim_end_matches('#').trim().to_string();
                if !text.is_empty() {
                    out.push(Heading {
                        offset: start + indent,
                        level,
                        text,
                    });
                }
            }
        }
    }
    out
}

fn section_at(headings: &[Heading], offset: usize) -> Option<String> {
    let i = headings.partition_point(|h| h.offset <= offset);
    i.checked_sub(1).map(|i| headings[i].text.clone())
}

/// How good a cut before token `i` is.
fn boundary_score(text: &str, toks: &[Tok], headings: &[Heading], i: usize) -> i32 {
    let prev = toks[i - 1];
    let next = toks[i];
    let gap = &text[prev.end..next.start];
    if headings
        .binary_search_by_key(&next.start, |h| h.offset)
        .is_ok()
    {
        return 5;
    }
    let newlines = gap.matches('\n').count();
    if newlines >= 2 {
        return 4;
    }
    if newlines == 1 {
        return 3;
    }
    if gap.is_empty() {
        return 0;
    }
    let sentence_end = matches!(&text[prev.start..prev.end], "." | "!" | "?" | ";" | ":");
    if sentence_end {
        2
    } else {
        1
    }
}

/// Cuts tokens `lo..hi` into ranges of at most `budget` tokens at the best
/// boundaries (the latest of the best scores in the second half of each budget).
fn split(
    text: &str,
    toks: &[Tok],
    headings: &[Heading],
    lo: usize,
    hi: usize,
    budget: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if lo >= hi {
        return out;
    }
    let mut start = lo;
    while hi - start > budget {
        let limit = start + budget;
        let earliest = start + (budget / 2).max(1);
        let mut best = (i32::MIN, limit);
        for i in earliest..=limit {
            let score = boundary_score(text, toks, headings, i);
            if score >= best.0 {
                best = (score, i);
            }
        }
        out.push((start, best.1));
        start = best.1;
    }
    out.push((start, hi));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_words_and_punctuation() {
        assert_eq!(approx_tokens("Hello, world!"), 4);
        assert_eq!(approx_tokens("pandas==2.2.1"), 8);
        assert_eq!(approx_tokens("   \n\t "), 0);
        assert_eq!(approx_tokens(&"a".repeat(40)), 5);
        assert_eq!(approx_tokens("naïve café"), 2);
    }

    #[test]
    fn a_short_document_is_one_parent_with_one_child() {
        let text = "  # Title\n\nSome text.\n";
        let chunks = chunk_document(text, &ChunkConfig::default(), true);
        assert_eq!(chunks.title.as_deref(), Some("Title"));
        assert_eq!(chunks.parents.len(), 1);
        let p = &chunks.parents[0];
        assert_eq!(&text[p.start..p.end], "# Title\n\nSome text.");
        assert_eq!(p.children.len(), 1);
        assert_eq!(p.children[0].section.as_deref(), Some("Title"));
    }

    #[test]
    fn an_empty_document_has_no_chunks() {
        assert!(chunk_document("", &ChunkConfig::default(), true)
            .parents
            .is_empty());
        assert!(chunk_document(" \n ", &ChunkConfig::default(), true)
            .parents
            .is_empty());
    }

    fn prose(paragraphs: usize, words: usize) -> String {
        (0..paragraphs)
            .map(|p| {
                let body: Vec<String> = (0..words).map(|w| format!("w{p}x{w}")).collect();
                format!("## Part {p}\n\n{}.", body.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    #[test]
    fn sizes_respect_the_budgets_and_spans_cover_the_text() {
        let text = prose(40, 120);
        let config = ChunkConfig::default();
        let chunks = chunk_document(&text, &config, true);
        assert!(chunks.parents.len() > 1);
        let mut covered = String::new();
        for p in &chunks.parents {
            assert!(p.tokens <= config.parent_tokens);
            assert!(p.tokens >= config.parent_tokens / 2 || p.index == chunks.parents.len() - 1);
            assert_eq!(p.children.first().map(|c| c.start), Some(p.start));
            assert_eq!(p.children.last().map(|c| c.end), Some(p.end));
            for pair in p.children.windows(2) {
                assert!(pair[0].end <= pair[1].start);
            }
            for c in &p.children {
                assert!(c.tokens <= config.child_tokens);
                assert_eq!(approx_tokens(&text[c.start..c.end]), c.tokens);
                covered.push_str(&text[c.start..c.end]);
            }
        }
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(squash(&covered), squash(&text));
    }

    #[test]
    fn chunks_prefer_to_start_at_headings() {
        // Sections of ~130 tokens: every child should start at a heading.
        let text = prose(30, 120);
        let chunks = chunk_document(&text, &ChunkConfig::default(), true);
        for p in &chunks.parents {
            for c in &p.children {
                assert!(
                    text[c.start..].starts_with("## Part "),
                    "{:?}",
                    &text[c.start..c.start + 20]
                );
                let expected = text[c.start + 3..].split('\n').next().map(str::to_string);
                assert_eq!(c.section, expected);
            }
        }
    }

    #[test]
    fn comments_in_code_fences_are_not_headings() {
        let text = "# Notebook\n\n```python\n# load data\nx = 1\n```\n\nafter";
        let chunks = chunk_document(
            text,
            &ChunkConfig {
                parent_tokens: 100,
                child_tokens: 3,
            },
            true,
        );
        let sections: Vec<Option<String>> = chunks
            .parents
            .iter()
            .flat_map(|p| p.children.iter().map(|c| c.section.clone()))
            .collect();
        assert!(
            sections.iter().all(|s| s.as_deref() == Some("Notebook")),
            "{sections:?}"
        );
    }

    #[test]
    fn a_word_longer_than_the_budget_is_cut_on_character_boundaries() {
        let text = "é".repeat(1000);
        let chunks = chunk_document(
            &text,
            &ChunkConfig {
                parent_tokens: 20,
                child_tokens: 5,
            },
            false,
        );
        let mut total = 0;
        for p in &chunks.parents {
            for c in &p.children {
                assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
                total += text[c.start..c.end].chars().count();
            }
        }
        assert_eq!(total, 1000);
    }
}
