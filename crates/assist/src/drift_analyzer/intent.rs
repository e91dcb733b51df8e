//! What a question asks, by keyword rules, and which package it is about.
//!
//! Rules are checked in a fixed order (the first that matches wins), so the
//! same question always gets the same kind of answer:
//! changelog → rollback → why/explain → notebooks → breakage and risk
//! words → what changed → what to do → general drift words → (a package
//! named alone: explain it) → help. (Comparing two snapshots is recognised by their ids, before these
//! rules, by the engine.)

use westtek_inventory::normalize_name;

/// What the researcher wants to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Why the environment drifted, what it means, what to do.
    Explain,
    /// Just the list of changes.
    WhatChanged,
    /// Which notebooks use a package or are at risk.
    Notebooks,
    /// Whether to roll back.
    Rollback,
    /// What to do about the drift.
    Recommend,
    /// What a package's metadata says about its change.
    Changelog,
    /// Nothing recognised: say what can be asked.
    Help,
}

/// A question, lower-cased and split two ways.
pub(crate) struct Question {
    /// Words: runs of letters, digits and apostrophes, lower case.
    words: Vec<String>,
    /// ` word word … `, for phrase matching on word boundaries.
    padded: String,
    /// Package-like tokens (letters, digits, `.`, `_`, `-`), PEP 503
    /// normalised.
    tokens: Vec<String>,
    /// The raw text, lower case.
    lower: String,
}

impl Question {
    pub(crate) fn new(text: &str) -> Self {
        let lower = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
        let words: Vec<String> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .map(|w| w.trim_matches('\''))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let padded = format!(" {} ", words.join(" "));
        let tokens = lower
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|t| t.trim_matches(['.', '_', '-']))
            .filter(|t| !t.is_empty())
            .map(normalize_name)
            .collect();
        Question {
            words,
            padded,
            tokens,
            lower,
        }
    }

    fn has_word(&self, w: &str) -> bool {
        self.words.iter().any(|x| x == w)
    }

    fn has_any_word(&self, ws: &[&str]) -> bool {
        ws.iter().any(|w| self.has_word(w))
    }

    fn has_phrase(&self, ps: &[&str]) -> bool {
        ps.iter().any(|p| self.padded.contains(&format!(" {p} ")))
    }

    fn has_prefix(&self, ps: &[&str]) -> bool {
        self.words
            .iter()
            .any(|w| ps.iter().any(|p| w.starts_with(p)))
    }

    /// The text, lower case.
    pub(crate) fn lower(&self) -> &str {
        &self.lower
    }

    /// The intent by the module's rules; `names_package` says whether some
    /// known package is named (a bare package name asks about it).
    pub(crate) fn intent(&self, names_package: bool) -> Intent {
        if self.has_phrase(&[
            "changelog",
            "change log",
            "changelogs",
            "release notes",
            "what's new in",
            "whats new in",
            "what is new in",
        ]) {
            Intent::Changelog
        } else if self.has_phrase(&[
            "roll back",
            "rollback",
            "roll it back",
            "revert",
            "restore",
            "undo",
            "go back",
        ]) {
            Intent::Rollback
        } else if self.has_any_word(&["why", "explain", "explanation"]) {
            Intent::Explain
        } else if self.has_prefix(&["notebook"]) {
            Intent::Notebooks
        } else if self.has_any_word(&[
            "broke", "broken", "break", "breaks", "failing", "fails", "failed", "fail", "error",
            "errors", "wrong", "risk", "risky", "safe",
        ]) {
            Intent::Explain
        } else if self.has_phrase(&[
            "what changed",
            "what has changed",
            "what's changed",
            "what did change",
            "what happened",
            "changes",
            "changed",
            "diff",
            "difference",
            "differences",
        ]) {
            Intent::WhatChanged
        } else if self.has_phrase(&[
            "should i",
            "what should",
            "what do i do",
            "what can i do",
            "recommend",
            "recommendation",
            "fix",
            "snapshot",
        ]) {
            Intent::Recommend
        } else if names_package
            || self.has_prefix(&["drift", "analy", "summar", "status", "stable", "health"])
        {
            Intent::Explain
        } else {
            Intent::Help
        }
    }

    /// Whether the question points back at what was discussed ("it",
    /// "that package").
    pub(crate) fn refers_back(&self) -> bool {
        const NOUNS: [&str; 6] = ["package", "library", "lib", "module", "one", "dependency"];
        // "this" and "that" only when they stand for a package ("that
        // package", "what about that?"), not in "this environment".
        let demonstrative = self.words.iter().enumerate().any(|(i, w)| {
            matches!(w.as_str(), "this" | "that" | "these" | "those")
                && self
                    .words
                    .get(i + 1)
                    .is_none_or(|next| NOUNS.iter().any(|n| next.starts_with(n)))
        });
        demonstrative || self.has_any_word(&["it", "its", "it's", "them", "they", "same"])
    }

    /// The first of `candidates` (normalised package names) the question
    /// names, directly or by a well-known import name (`sklearn`).
    pub(crate) fn mentioned<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let candidates: Vec<&str> = candidates.into_iter().collect();
        self.tokens.iter().find_map(|t| {
            candidates
                .iter()
                .find(|c| **c == t.as_str() || import_name_matches(t, c))
                .map(|c| c.to_string())
        })
    }

    /// A package named after a keyword ("changelog numpy", "which notebooks
    /// use pandas"), when it is not among the known candidates.
    pub(crate) fn named_after_keyword(&self) -> Option<String> {
        const KEYWORDS: [&str; 12] = [
            "changelog",
            "notes",
            "use",
            "uses",
            "using",
            "import",
            "imports",
            "importing",
            "for",
            "of",
            "in",
            "about",
        ];
        const NOT_PACKAGES: [&str; 17] = [
            "it",
            "its",
            "that",
            "this",
            "them",
            "they",
            "those",
            "these",
            "the",
            "a",
            "an",
            "my",
            "our",
            "package",
            "packages",
            "notebook",
            "notebooks",
        ];
        self.tokens.windows(2).find_map(|w| {
            let [keyword, name] = w else { return None };
            (KEYWORDS.contains(&keyword.as_str())
                && !NOT_PACKAGES.contains(&name.as_str())
                && !KEYWORDS.contains(&name.as_str())
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric()))
            .then(|| name.clone())
        })
    }
}

/// Distributions whose import name is not their name, for the few common
/// ones researchers type (the drift findings themselves use each package's
/// real import names from its metadata; this only reads questions).
const IMPORT_NAMES: [(&str, &str); 9] = [
    ("scikit-learn", "sklearn"),
    ("pillow", "pil"),
    ("pyyaml", "yaml"),
    ("beautifulsoup4", "bs4"),
    ("opencv-python", "cv2"),
    ("opencv-python-headless", "cv2"),
    ("python-dateutil", "dateutil"),
    ("scikit-image", "skimage"),
    ("attrs", "attr"),
];

/// Whether `module` (any case) is the import name of the distribution
/// `package` (normalised): the same name (`_` and `-` alike), the name
/// without a `python-` prefix, or a well-known alias.
pub(crate) fn import_name_matches(module: &str, package: &str) -> bool {
    let m = normalize_name(module);
    m == package
        || package.strip_prefix("python-") == Some(m.as_str())
        || IMPORT_NAMES
            .iter()
            .any(|(p, i)| *p == package && *i == m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(q: &str) -> Intent {
        Question::new(q).intent(false)
    }

    #[test]
    fn questions_map_to_intents() {
        assert_eq!(intent("Why did my environment drift?"), Intent::Explain);
        assert_eq!(intent("Explain the drift please"), Intent::Explain);
        assert_eq!(intent("What changed?"), Intent::WhatChanged);
        assert_eq!(intent("which notebooks use it?"), Intent::Notebooks);
        assert_eq!(intent("Should I roll back?"), Intent::Rollback);
        assert_eq!(intent("rollback?"), Intent::Rollback);
        assert_eq!(intent("changelog requests"), Intent::Changelog);
        assert_eq!(intent("What should I do?"), Intent::Recommend);
        assert_eq!(intent("why did my notebook break?"), Intent::Explain);
        assert_eq!(intent("which notebooks are at risk?"), Intent::Notebooks);
        assert_eq!(intent("is it safe?"), Intent::Explain);
        assert_eq!(intent("tell me a joke"), Intent::Help);
    }

    #[test]
    fn a_bare_package_name_asks_about_it() {
        assert_eq!(Question::new("requests?").intent(true), Intent::Explain);
    }

    #[test]
    fn pronouns_refer_back_but_words_containing_them_do_not() {
        assert!(Question::new("which notebooks use it?").refers_back());
        assert!(!Question::new("what changed with the kernel?").refers_back());
        assert!(Question::new("is that package safe?").refers_back());
        assert!(Question::new("what about that?").refers_back());
        assert!(!Question::new("what changed in this environment?").refers_back());
    }

    #[test]
    fn packages_are_found_by_name_or_import_name() {
        let q = Question::new("Why did Scikit_Learn change?");
        assert_eq!(
            q.mentioned(["numpy", "scikit-learn"]).as_deref(),
            Some("scikit-learn")
        );
        let q = Question::new("is sklearn ok?");
        assert_eq!(
            q.mentioned(["scikit-learn"]).as_deref(),
            Some("scikit-learn")
        );
        let q = Question::new("what about it?");
        assert_eq!(q.mentioned(["scikit-learn"]), None);
    }

    #[test]
    fn a_package_after_a_keyword_is_picked_up() {
        assert_eq!(
            Question::new("changelog for numpy")
                .named_after_keyword()
                .as_deref(),
            Some("numpy")
        );
        assert_eq!(
            Question::new("which notebooks use pandas?")
                .named_after_keyword()
                .as_deref(),
            Some("pandas")
        );
        assert_eq!(
            Question::new("which notebooks use it?").named_after_keyword(),
            None
        );
    }

    #[test]
    fn import_names_match_their_distribution() {
        assert!(import_name_matches("requests", "requests"));
        assert!(import_name_matches("yaml", "pyyaml"));
        assert!(import_name_matches("dateutil", "python-dateutil"));
        assert!(import_name_matches(
            "typing_extensions",
            "typing-extensions"
        ));
        assert!(!import_name_matches("numpy", "pandas"));
    }
}
