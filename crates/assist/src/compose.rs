//! Writing an answer as chunks: text sentence by sentence, each followed by
//! the citations of its sources, with spans kept right by construction.
//! Shared by every local agent engine.

use futures::channel::mpsc::UnboundedSender;
use serde_json::Value;

use crate::drift_tools::Recommendation;
use crate::port::{AgentChunk, SourceRef};

/// What goes between the previous text and the next sentence.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    Space,
    Paragraph,
    Bullet,
}

/// Sends chunks and keeps the answer so far, to place citations in it.
pub struct Composer {
    tx: UnboundedSender<AgentChunk>,
    answer: String,
    /// Sources cited so far; a source's index is its position + 1.
    sources: Vec<SourceRef>,
    gap: Gap,
}

impl Composer {
    pub fn new(tx: UnboundedSender<AgentChunk>) -> Self {
        Composer {
            tx,
            answer: String::new(),
            sources: Vec::new(),
            gap: Gap::Space,
        }
    }

    fn send(&self, chunk: AgentChunk) {
        // The receiver lives in the same stream as the work; if it is gone,
        // so is this future, so a failed send has nobody to tell.
        let _ = self.tx.unbounded_send(chunk);
    }

    /// The answer so far.
    pub fn answer(&self) -> &str {
        &self.answer
    }

    /// Starts a new paragraph before the next sentence.
    pub fn paragraph(&mut self) {
        self.gap = Gap::Paragraph;
    }

    /// A sentence citing `sources` (none for text that claims nothing).
    pub fn say(&mut self, sentence: &str, sources: &[SourceRef]) {
        let prefix = if self.answer.is_empty() {
            ""
        } else {
            match self.gap {
                Gap::Space => " ",
                Gap::Paragraph => "\n\n",
                Gap::Bullet => "\n- ",
            }
        };
        let prefix = if self.answer.is_empty() && self.gap == Gap::Bullet {
            "- "
        } else {
            prefix
        };
        self.gap = Gap::Space;
        let start = self.answer.len() + prefix.len();
        self.answer.push_str(prefix);
        self.answer.push_str(sentence);
        let end = self.answer.len();
        self.send(AgentChunk::Text {
            text: format!("{prefix}{sentence}"),
        });
        let mut seen: Vec<usize> = Vec::new();
        for source in sources {
            let index = match self
                .sources
                .iter()
                .position(|s| s.kind == source.kind && s.id == source.id)
            {
                Some(i) => i + 1,
                None => {
                    self.sources.push(source.clone());
                    self.sources.len()
                }
            };
            if seen.contains(&index) {
                continue;
            }
            seen.push(index);
            self.send(AgentChunk::Citation {
                index,
                source: source.clone(),
                text_span: (start, end),
            });
        }
    }

    /// A list item citing `sources`.
    pub fn bullet(&mut self, sentence: &str, sources: &[SourceRef]) {
        self.gap = Gap::Bullet;
        self.say(sentence, sources);
        // The item after a list starts a new paragraph unless it is an item.
        self.gap = Gap::Paragraph;
    }

    /// Trace: a tool is called.
    pub fn tool_call(&self, name: &str, input: Value) {
        self.send(AgentChunk::ToolCall {
            name: name.to_string(),
            input,
        });
    }

    /// Trace: what the tool returned.
    pub fn tool_result(&self, name: &str, summary: String) {
        self.send(AgentChunk::ToolResult {
            name: name.to_string(),
            summary,
        });
    }

    /// A recommendation was recorded.
    pub fn recommendation(&self, recommendation: Recommendation) {
        self.send(AgentChunk::Recommendation { recommendation });
    }

    /// The end of a complete answer.
    pub fn done(&self, session_id: &str) {
        self.send(AgentChunk::Done {
            session_id: session_id.to_string(),
        });
    }

    /// The end of a failed answer.
    pub fn error(&self, code: &str, message: &str) {
        self.send(AgentChunk::Error {
            code: code.to_string(),
            message: message.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::SourceKind;
    use futures::StreamExt;

    fn source(id: &str) -> SourceRef {
        SourceRef {
            kind: SourceKind::Notebook,
            id: id.into(),
            span: None,
            title: id.into(),
        }
    }

    #[test]
    fn spans_cover_the_sentence_and_indexes_repeat_per_source() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut c = Composer::new(tx);
        c.say("First — one.", &[source("a")]);
        c.paragraph();
        c.say("Second.", &[source("b"), source("a"), source("b")]);
        c.bullet("Item.", &[]);
        c.say("After.", &[]);
        let answer = c.answer().to_string();
        drop(c);
        let chunks: Vec<AgentChunk> = futures::executor::block_on(rx.collect());
        assert_eq!(AgentChunk::answer_text(&chunks), answer);
        assert_eq!(answer, "First — one.\n\nSecond.\n- Item.\n\nAfter.");
        let citations: Vec<(usize, &str)> = chunks
            .iter()
            .filter_map(|c| match c {
                AgentChunk::Citation {
                    index, text_span, ..
                } => Some((*index, &answer[text_span.0..text_span.1])),
                _ => None,
            })
            .collect();
        assert_eq!(
            citations,
            [(1, "First — one."), (2, "Second."), (1, "Second.")]
        );
    }
}
