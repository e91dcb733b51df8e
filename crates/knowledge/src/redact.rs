//! Detection and redaction of personal data and secrets, before anything
//! enters the knowledge store or a transfer package.
//!
//! What is found is replaced by `[REDACTED:kind]`; the [`RedactionReport`]
//! says what kind was found where (line, column, length in the input) and
//! never the value.
//!
//! Policy:
//!
//! - **Secrets** by shape: private key blocks, AWS access key ids
//!   (`AKIA…`/`ASIA…`), AWS secret keys assigned to an `aws_secret…key`
//!   name, GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`),
//!   Slack (`xox?-`) and OpenAI-style (`sk-…`) tokens, JWTs, bearer tokens,
//!   the `user:password` of connection strings, secrets in URL query strings
//!   (`?token=…`, Jupyter's login links among them).
//! - **Secrets by name**: a quoted literal assigned to a name ending in
//!   `password`, `passwd`, `secret`, `token`, `api_key`, `access_key`,
//!   `secret_key`, `private_key` or `client_secret` (`=`, `:`, `:=`, `=>`,
//!   dict keys, `os.environ[…] =`), and `NAME=value` lines in `.env` style or
//!   `%env`. Not literals (`token = None`, `password = getpass()`), templates
//!   (`f"{pw}"`, `"$PASSWORD"`, `"<your token>"`), and the special tokens of
//!   tokenizers (`pad_token = "[PAD]"`) are left alone.
//! - **Personal data**: e-mail addresses (but not the `git@host` user of a
//!   URL, nor `logo@2x.png`), phone numbers in international form (`+` and
//!   8–15 digits) and common national forms (North American `(555) 123-4567`,
//!   European trunk-prefixed `020 7946 0958`, `030/1234567`). Digits without
//!   separators (ids), dates, timestamps, version numbers and IP addresses are
//!   not phone numbers.
//!
//! Redaction keeps the line structure: a multi-line match (a private key
//! block) is replaced by the marker followed by as many newlines as it
//! spanned, so line-based maps ([`crate::SourceMap`]) stay valid. Redacting
//! twice changes nothing the second time.
//!
//! When two findings overlap, the more specific rule wins (a GitHub token in
//! a `password = "…"` assignment is reported as a GitHub token).

use regex::{Captures, Regex};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// What was redacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKeyId,
    /// An AWS secret access key.
    AwsSecretAccessKey,
    /// A GitHub token.
    GithubToken,
    /// A Slack token.
    SlackToken,
    /// An OpenAI-style `sk-…` API key.
    OpenaiKey,
    /// A PEM or PGP private key block.
    PrivateKey,
    /// A bearer token (HTTP `Authorization` header).
    BearerToken,
    /// A JSON Web Token.
    Jwt,
    /// The `user:password` part of a connection string or URL.
    ConnectionString,
    /// A secret in a URL query string (`?token=…`).
    UrlSecret,
    /// A literal assigned to a password-like name.
    Password,
    /// A literal assigned to a token-like name.
    Token,
    /// A literal assigned to an API-key-like name.
    ApiKey,
    /// A literal assigned to another secret-like name.
    Secret,
    /// The whole text, because the detector could not run (fail closed).
    Unscannable,
}

impl RedactionKind {
    /// The name used in the `[REDACTED:kind]` marker and in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            RedactionKind::Email => "email",
            RedactionKind::Phone => "phone",
            RedactionKind::AwsAccessKeyId => "aws_access_key_id",
            RedactionKind::AwsSecretAccessKey => "aws_secret_access_key",
            RedactionKind::GithubToken => "github_token",
            RedactionKind::SlackToken => "slack_token",
            RedactionKind::OpenaiKey => "openai_key",
            RedactionKind::PrivateKey => "private_key",
            RedactionKind::BearerToken => "bearer_token",
            RedactionKind::Jwt => "jwt",
            RedactionKind::ConnectionString => "connection_string",
            RedactionKind::UrlSecret => "url_secret",
            RedactionKind::Password => "password",
            RedactionKind::Token => "token",
            RedactionKind::ApiKey => "api_key",
            RedactionKind::Secret => "secret",
            RedactionKind::Unscannable => "unscannable",
        }
    }

    /// Whether this is personal data (as opposed to a secret).
    pub fn is_personal_data(&self) -> bool {
        matches!(self, RedactionKind::Email | RedactionKind::Phone)
    }
}

impl std::fmt::Display for RedactionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One redacted value: what kind and where it was in the input. Never the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// What was found.
    pub kind: RedactionKind,
    /// 1-based line of the input where it started.
    pub line: usize,
    /// 1-based column (in characters) of that line where it started.
    pub column: usize,
    /// Its length in characters.
    pub length: usize,
}

/// What [`redact`] removed, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RedactionReport {
    redactions: Vec<Redaction>,
}

impl RedactionReport {
    /// Every redaction, in input order.
    pub fn redactions(&self) -> &[Redaction] {
        &self.redactions
    }

    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.redactions.is_empty()
    }

    /// How many of each kind.
    pub fn counts(&self) -> BTreeMap<RedactionKind, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.redactions {
            *counts.entry(r.kind).or_insert(0) += 1;
        }
        counts
    }
}

/// Redacts e-mail addresses, phone numbers and secrets from `text`.
///
/// Returns the redacted text and the report. Never fails: if the detector
/// could not be built (a bug caught by the tests), the whole text is replaced
/// (lines kept) and reported as [`RedactionKind::Unscannable`].
pub fn redact(text: &str) -> (String, RedactionReport) {
    let rules = match RULES.as_ref() {
        Ok(rules) => rules,
        Err(_) => return redact_everything(text),
    };

    let mut candidates: Vec<Finding> = Vec::new();
    for (priority, rule) in rules.iter().enumerate() {
        for caps in rule.re.captures_iter(text) {
            let Some(m) = rule.groups.iter().find_map(|&i| caps.get(i)) else {
                continue;
            };
            if m.as_str().is_empty() {
                continue;
            }
            if let Some(kind) = (rule.accept)(text, &caps, m.start(), m.end()) {
                candidates.push(Finding {
                    start: m.start(),
                    end: m.end(),
                    kind,
                    priority,
                });
            }
        }
    }
    // The most specific rule wins an overlap; among equals, the earlier finding.
    candidates.sort_by_key(|f| (f.priority, f.start));
    let mut accepted: Vec<Finding> = Vec::new();
    for f in candidates {
        let overlaps = accepted.iter().any(|a| f.start < a.end && a.start < f.end);
        if !overlaps {
            accepted.push(f);
        }
    }
    accepted.sort_by_key(|f| f.start);

    let lines = LineIndex::new(text);
    let mut out = String::with_capacity(text.len());
    let mut report = RedactionReport::default();
    let mut cursor = 0;
    for f in &accepted {
        out.push_str(&text[cursor..f.start]);
        let value = &text[f.start..f.end];
        out.push_str("[REDACTED:");
        out.push_str(f.kind.as_str());
        out.push(']');
        for _ in 0..value.matches('\n').count() {
            out.push('\n');
        }
        cursor = f.end;
        let (line, column) = lines.position(text, f.start);
        report.redactions.push(Redaction {
            kind: f.kind,
            line,
            column,
            length: value.chars().count(),
        });
    }
    out.push_str(&text[cursor..]);
    (out, report)
}

fn redact_everything(text: &str) -> (String, RedactionReport) {
    let mut out = String::from("[REDACTED:unscannable]");
    for _ in 0..text.matches('\n').count() {
        out.push('\n');
    }
    let report = RedactionReport {
        redactions: vec![Redaction {
            kind: RedactionKind::Unscannable,
            line: 1,
            column: 1,
            length: text.chars().count(),
        }],
    };
    (out, report)
}

struct Finding {
    start: usize,
    end: usize,
    kind: RedactionKind,
    priority: usize,
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }
}

/// Decides whether a match is a finding, and of which kind. Gets the whole
/// text, the captures and the span of the value (the first capture group that
/// participated).
type Accept = fn(&str, &Captures<'_>, usize, usize) -> Option<RedactionKind>;

struct Rule {
    re: Regex,
    /// The capture groups holding the value; the first that participated is redacted.
    groups: &'static [usize],
    accept: Accept,
}

/// The rules in priority order (most specific first).
static RULES: LazyLock<Result<Vec<Rule>, regex::Error>> = LazyLock::new(build_rules);

fn rule_in(pattern: &str, groups: &'static [usize], accept: Accept) -> Result<Rule, regex::Error> {
    Ok(Rule {
        re: Regex::new(pattern)?,
        groups,
        accept,
    })
}

fn build_rules() -> Result<Vec<Rule>, regex::Error> {
    let rule = |pattern: &str, accept: Accept| rule_in(pattern, &[1], accept);
    Ok(vec![
        // A complete block, or (a truncated output) everything key-like after BEGIN.
        rule(
            r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,-]|\\n)*)",
            |_, _, _, _| Some(RedactionKind::PrivateKey),
        )?,
        rule(
            r"(?-u:\b)((?:AKIA|ASIA)[A-Z0-9]{16})(?-u:\b)",
            |_, _, _, _| Some(RedactionKind::AwsAccessKeyId),
        )?,
        rule(
            r#"(?i)aws_?secret_?(?:access_?)?key["']?\]?\s*(?::|=|:=|=>)\s*["']?([A-Za-z0-9/+]{40})"#,
            |text, _, _, end| {
                let next = text.as_bytes().get(end).copied();
                let continues =
                    next.is_some_and(|b| b.is_ascii_alphanumeric() || b"/+=".contains(&b));
                (!continues).then_some(RedactionKind::AwsSecretAccessKey)
            },
        )?,
        rule(
            r"(?-u:\b)((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?-u:\b)",
            |_, _, _, _| Some(RedactionKind::GithubToken),
        )?,
        rule(
            r"(?-u:\b)(xox[abposr]-[A-Za-z0-9-]{10,})",
            |text, _, start, end| has_digit(&text[start..end]).then_some(RedactionKind::SlackToken),
        )?,
        rule(
            r"(?-u:\b)(sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,})",
            |text, _, start, end| {
                let value = &text[start..end];
                (has_digit(value) && value.bytes().any(|b| b.is_ascii_alphabetic()))
                    .then_some(RedactionKind::OpenaiKey)
            },
        )?,
        rule(
            r"(?-u:\b)(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
            |_, _, _, _| Some(RedactionKind::Jwt),
        )?,
        rule(
            r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]{1,20}://([^\s:/@'"?#\[\]{}]+:[^\s/@'"?#]+)@"#,
            |text, _, start, end| {
                let value = &text[start..end];
                let password = value.split_once(':').map_or("", |(_, p)| p);
                (!is_placeholder(password)).then_some(RedactionKind::ConnectionString)
            },
        )?,
        rule(
            r##"(?i)[?&](?:token|access_token|auth|api_?key|key|sig|signature|password|secret)=([^&\s'"#<>]{8,})"##,
            |text, _, start, end| {
                let value = &text[start..end];
                (has_digit(value) && !is_placeholder(value)).then_some(RedactionKind::UrlSecret)
            },
        )?,
        rule(
            r"(?i)(?-u:\b)bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)",
            |text, _, start, end| {
                let value = &text[start..end];
                let token_like = has_digit(value) || value.bytes().any(|b| b"-._~+/".contains(&b));
                (token_like && !is_placeholder(value)).then_some(RedactionKind::BearerToken)
            },
        )?,
        // A quoted literal assigned to a secret-like name.
        rule_in(
            r#"(?i)(?-u:\b)([a-z0-9_]*?(?:passwd|password|secret|token|api_?key|access_?key|secret_?key|private_?key|auth_?key))["']?\]?\s*(?::\s*str\s*)?(?:=|:|:=|=>)\s*[rbuf]{0,2}(?:"([^"\n]{1,512})"|'([^'\n]{1,512})')"#,
            &[2, 3],
            |text, caps, start, end| {
                let name = caps.get(1).map_or("", |m| m.as_str());
                assignment_kind(name, &text[start..end])
            },
        )?,
        // `.env` lines, `export NAME=value`, `%env NAME=value`: upper-case names, no spaces.
        rule_in(
            r#"(?m)^[ \t]*(?:export[ \t]+|%env[ \t]+|%set_env[ \t]+|!export[ \t]+)?([A-Z0-9_]*(?:PASSWD|PASSWORD|SECRET|TOKEN|API_KEY|APIKEY|ACCESS_KEY|SECRET_KEY|PRIVATE_KEY))=([^\s"'#]{1,512})[ \t]*$"#,
            &[2],
            |text, caps, start, end| {
                let name = caps.get(1).map_or("", |m| m.as_str());
                assignment_kind(name, &text[start..end])
            },
        )?,
        rule(
            r"(?i)(?-u:\b)([a-z0-9][a-z0-9_.%+\-]{0,63}@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?-u:\b)",
            |text, _, start, end| {
                // `ssh://git@github.com/…`: the user of a URL, not an address.
                if text[..start].ends_with("//") {
                    return None;
                }
                let value = &text[start..end];
                let tld = value.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
                (!FILE_EXTENSIONS.contains(&tld.as_str())).then_some(RedactionKind::Email)
            },
        )?,
        // International: `+`, country code, groups.
        rule(
            r"(\+[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,5}\)?){1,6})",
            |text, _, start, end| {
                let before = text[..start].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || "+.-_/".contains(c)) {
                    return None;
                }
                let value = &text[start..end];
                let digits = count_digits(value);
                ((8..=15).contains(&digits)
                    && !float_like(value)
                    && clean_end(text, end)
                    && !text[end..].starts_with('+'))
                .then_some(RedactionKind::Phone)
            },
        )?,
        // North American: (555) 123-4567, 555-123-4567, 555.123.4567.
        rule(
            r"(\(?(?-u:\b)[2-9][0-9]{2}\)?[ .\-]?[0-9]{3}[ .\-][0-9]{4})(?-u:\b)",
            |text, _, start, end| {
                let value = &text[start..end];
                let open = value.starts_with('(');
                let close = value.contains(')');
                let seps: Vec<char> = value
                    .chars()
                    .filter(|c| matches!(c, ' ' | '.' | '-'))
                    .collect();
                // `(555) 123-4567`, or two equal separators: `555-123-4567`.
                let consistent = match (open, close) {
                    (true, true) => true,
                    (false, false) => seps.len() == 2 && seps[0] == seps[1],
                    _ => false,
                };
                (consistent
                    && clean_start(text, start)
                    && !in_digit_sequence(text, start, end)
                    && clean_end(text, end))
                .then_some(RedactionKind::Phone)
            },
        )?,
        // European national with a trunk 0: 020 7946 0958, 030/1234567, 01 23 45 67 89.
        rule(
            r"(\(?(?-u:\b)0[1-9][0-9]{0,3}\)?[ \-/.][0-9]{2,8}(?:[ \-/.][0-9]{2,8}){0,3})(?-u:\b)",
            |text, _, start, end| {
                let value = &text[start..end];
                let groups: Vec<&str> = value
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|g| !g.is_empty())
                    .collect();
                let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
                let digits: usize = lengths.iter().sum();
                // Dates (01.02.2024), US ZIP+4 (02111-1301), hex dumps and
                // time stamps (`01 00 00 00`).
                let date_like = matches!(
                    lengths.as_slice(),
                    [1 | 2, 1 | 2, 2 | 4] | [4, 1 | 2, 1 | 2]
                );
                let zip_like = lengths == [5, 4] && value.contains('-');
                let zero_groups = groups
                    .iter()
                    .filter(|g| g.bytes().all(|b| b == b'0'))
                    .count();
                ((10..=12).contains(&digits)
                    && !date_like
                    && !zip_like
                    && zero_groups < 2
                    && !float_like(value)
                    && clean_start(text, start)
                    && !in_digit_sequence(text, start, end)
                    && clean_end(text, end))
                .then_some(RedactionKind::Phone)
            },
        )?,
    ])
}

/// Top-level domains that are really file extensions (`logo@2x.png`).
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "py", "ipynb", "csv", "json", "txt", "md", "pdf",
    "html", "js", "ts", "tar", "gz", "zip", "whl", "parquet", "h5", "pkl",
];

/// Shortest literal redacted for its name alone.
const MIN_SECRET_CHARS: usize = 4;

/// Special tokens of tokenizers are configuration, not secrets.
const TOKENIZER_TOKENS: &[&str] = &[
    "pad_token",
    "eos_token",
    "bos_token",
    "unk_token",
    "sep_token",
    "cls_token",
    "mask_token",
    "special_token",
    "start_token",
    "end_token",
    "padding_token",
];

fn assignment_kind(name: &str, value: &str) -> Option<RedactionKind> {
    let name = name.to_ascii_lowercase();
    // Shorter literals are separators, flags and test fixtures, not secrets.
    let too_short = value.chars().count() < MIN_SECRET_CHARS;
    if too_short || TOKENIZER_TOKENS.iter().any(|t| name.ends_with(t)) || is_placeholder(value) {
        return None;
    }
    // The name of an environment variable (`ACCESS_KEY = 'AWS_ACCESS_KEY_ID'`)
    // or a %-format template is where a secret comes from, not the secret.
    let env_name = value.contains('_')
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if env_name || value.contains("%s") {
        return None;
    }
    if matches!(
        value.to_ascii_lowercase().as_str(),
        "none" | "null" | "true" | "false"
    ) {
        return None;
    }
    Some(if name.contains("pass") {
        RedactionKind::Password
    } else if name.contains("token") {
        RedactionKind::Token
    } else if name.contains("api")
        || name.contains("access_key")
        || name.contains("accesskey")
        || name.contains("auth")
    {
        RedactionKind::ApiKey
    } else {
        RedactionKind::Secret
    })
}

/// Values that stand for a secret rather than being one: templates,
/// environment references, masks and earlier redactions.
fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.starts_with("[REDACTED:")
        || v.starts_with('$')
        || v.starts_with("%(")
        || (v.starts_with('<') && v.ends_with('>'))
        || (v.contains('{') && v.contains('}'))
        || v.chars()
            .all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '•' | '-' | '_' | ' ' | '…'))
}

/// `+1.12345679`, `01234.000000`: one `.` and no other separator is a decimal number.
fn float_like(s: &str) -> bool {
    let separators: Vec<char> = s
        .chars()
        .filter(|c| !c.is_ascii_digit() && *c != '+')
        .collect();
    separators == ['.']
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

fn count_digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// A phone number does not continue a longer token (`v1.555-123-4567`, `id_0201234567`).
fn clean_start(text: &str, start: usize) -> bool {
    let before = text[..start].chars().next_back();
    !before.is_some_and(|c| c.is_alphanumeric() || "+.-_/:,".contains(c))
}

/// A national-looking number inside a longer run of digit groups
/// (`4.359 744 722 2071`, a hex dump) is part of a table, not a phone number.
fn in_digit_sequence(text: &str, start: usize, end: usize) -> bool {
    let mut before = text[..start].chars().rev();
    let mut after = text[end..].chars();
    let sep = |c: Option<char>| matches!(c, Some(' ' | '.' | '-'));
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    (sep(before.next()) && digit(before.next())) || (sep(after.next()) && digit(after.next()))
}

/// …and is not followed by more digits (`555-123-4567.5`, `030 1234567-8`).
fn clean_end(text: &str, end: usize) -> bool {
    let mut after = text[end..].chars();
    match after.next() {
        None => true,
        Some(c) if c.is_alphanumeric() || c == '_' => false,
        Some('.' | '-' | '/' | ':') => !after.next().is_some_and(|c| c.is_ascii_digit()),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<RedactionKind> {
        redact(text).1.redactions().iter().map(|r| r.kind).collect()
    }

    #[track_caller]
    fn assert_untouched(text: &str) {
        let (out, report) = redact(text);
        assert!(report.is_empty(), "{text:?} was redacted: {out:?}");
        assert_eq!(out, text);
    }

    #[track_caller]
    fn assert_redacted(text: &str, kind: RedactionKind, secret: &str) {
        let (out, report) = redact(text);
        assert!(!out.contains(secret), "{secret:?} survived in {out:?}");
        assert!(
            out.contains(&format!("[REDACTED:{kind}]")),
            "no {kind} marker in {out:?}"
        );
        assert!(
            report.redactions().iter().any(|r| r.kind == kind),
            "{kind} not reported for {text:?}: {report:?}"
        );
    }

    #[test]
    fn all_rules_compile() {
        assert!(RULES.is_ok(), "{:?}", RULES.as_ref().err());
    }

    #[test]
    fn email_addresses_are_redacted_but_not_url_users_or_retina_images() {
        assert_redacted(
            "contact ada.lovelace+lab@uni-example.ac.uk today",
            RedactionKind::Email,
            "ada.lovelace",
        );
        assert_eq!(
            redact("mail Ada <ada@example.org>.").0,
            "mail Ada <[REDACTED:email]>."
        );
        assert_untouched("pip install git+ssh://git@github.com/org/repo.git");
        assert_untouched("![logo](img/logo@2x.png)");
        assert_untouched("@property\ndef x(self): return a @ b");
    }

    #[test]
    fn phone_numbers_in_international_and_national_forms_are_redacted() {
        for phone in [
            "+1 (555) 123-4567",
            "+44 20 7946 0958",
            "+49 30 12345678",
            "+33 1 23 45 67 89",
            "+4915112345678",
            "(555) 123-4567",
            "555-123-4567",
            "555.123.4567",
            "020 7946 0958",
            "07700 900123",
            "030/1234567",
            "(030) 12345678",
            "01 23 45 67 89",
        ] {
            let text = format!("Call {phone} after 5.");
            let (out, report) = redact(&text);
            assert_eq!(out, "Call [REDACTED:phone] after 5.", "{phone}");
            assert_eq!(
                report.redactions()[0].length,
                phone.chars().count(),
                "{phone}"
            );
        }
        assert_redacted("tel:+15551234567", RedactionKind::Phone, "5551234567");
    }

    #[test]
    fn dates_versions_timestamps_and_ids_are_not_phone_numbers() {
        for text in [
            "numpy==1.26.4",
            "pandas 2.2.1, python 3.11.8, torch 2.1.0+cu121",
            "run on 2024-01-02 and 02/01/2024 and 01.02.2024 and 01-02-2024",
            "started 2024-01-02T10:11:12+01:00, ended 2024-01-02T10:11:12.123456Z",
            "   sample_id  value\n0  1234567890   3.5\n1  2345678901   4.2",
            "df['id'] = 9876543210",
            "host 192.168.100.200 port 8888",
            "seed = 20240102; lr = 0.0001; n = 1 000 000",
            "uuid 123e4567-e89b-12d3-a456-426614174000",
            "sha 0123456789abcdef0123456789abcdef",
            "version 0.10.2 and 10.0.19045",
            "x = a +12345 * 3",
            "00000010  02 00 3e 00 01 00 00 00  c5 48 40 00 00 00 00 00  |..>......H@.....|",
            "# 51 Franklin Street, Fifth Floor, Boston, MA  02111-1301  USA.",
            "array([+1.        +1.j        , +1.12345679+1.12345679j])",
            "test(1234., '012f', '01234.000000')",
            "hartree-joule relationship    4.359 744 722 2071 e-18  0.000 000 000 0085 e-18  J",
            "#  0x00 03 ff 05 00 01 02 03 04",
        ] {
            assert_untouched(text);
        }
    }

    #[test]
    fn each_secret_kind_is_redacted() {
        let cases: &[(&str, RedactionKind, &str)] = &[
            ("key_id = 'AKIAIOSFODNN7EXAMPLE'", RedactionKind::AwsAccessKeyId, "AKIAIOSFODNN7EXAMPLE"),
            ("ASIAY34FZKBOKMUTVV7A is temporary", RedactionKind::AwsAccessKeyId, "ASIAY34FZKBOKMUTVV7A"),
            (
                "aws_secret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
                RedactionKind::AwsSecretAccessKey,
                "wJalrXUtnFEMI",
            ),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                RedactionKind::AwsSecretAccessKey,
                "wJalrXUtnFEMI",
            ),
            (
                "g = Github('ghp_abcdefghijklmnopqrstuvwxyz0123456789')",
                RedactionKind::GithubToken,
                "ghp_abcdef",
            ),
            (
                "gho_16C7e42F292c6912E7710c838347Ae178B4a in the log",
                RedactionKind::GithubToken,
                "gho_16C7e42F",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                RedactionKind::GithubToken,
                "github_pat_11ABC",
            ),
            (
                "client = WebClient(\"xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp\")",
                RedactionKind::SlackToken,
                "xoxb-1234567890",
            ),
            (
                "openai.api_key = \"sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345\"",
                RedactionKind::OpenaiKey,
                "sk-proj-Ab3d",
            ),
            (
                "curl -H 'Authorization: Bearer abc123.def456.ghi789xyz' https://api",
                RedactionKind::BearerToken,
                "abc123.def456",
            ),
            (
                "headers = {\"Authorization\": \"Bearer 4f9a0c1e2b3d4f5a6b7c\"}",
                RedactionKind::BearerToken,
                "4f9a0c1e2b3d",
            ),
            (
                "engine = create_engine('postgresql://alice:S3cr3t!@db.lab.internal:5432/exp')",
                RedactionKind::ConnectionString,
                "S3cr3t!",
            ),
            (
                "mongodb+srv://svc:hunter2hunter2@cluster0.mongodb.net/db",
                RedactionKind::ConnectionString,
                "hunter2hunter2",
            ),
            (
                "Or copy and paste: http://127.0.0.1:8888/lab?token=3f9a0c1e2b3d4f5a6b7c8d9e",
                RedactionKind::UrlSecret,
                "3f9a0c1e2b3d",
            ),
            ("password = \"correct horse battery\"", RedactionKind::Password, "correct horse"),
            ("db_passwd='p@ss'", RedactionKind::Password, "p@ss"),
            ("config = {\"api_key\": \"live_51HqLyj\"}", RedactionKind::ApiKey, "live_51HqLyj"),
            ("os.environ[\"HF_TOKEN\"] = \"hf_AbCdEfGhIjKlMn\"", RedactionKind::Token, "hf_AbCdEfGhIjKlMn"),
            ("client_secret: str = 'Zm9vYmFy'", RedactionKind::Secret, "Zm9vYmFy"),
            ("connect(user='bob', password=r'pa55')", RedactionKind::Password, "pa55"),
            ("%env WANDB_API_KEY=0123456789abcdef", RedactionKind::ApiKey, "0123456789abcdef"),
            ("export DB_PASSWORD=hunter2", RedactionKind::Password, "hunter2"),
            (
                "jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                RedactionKind::Jwt,
                "dozjgNryP4J3",
            ),
        ];
        for (text, kind, secret) in cases {
            assert_redacted(text, *kind, secret);
        }
    }

    #[test]
    fn private_key_blocks_are_redacted_keeping_their_lines() {
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq4z0Abc=\n-----END RSA PRIVATE KEY-----\nafter\n";
        let (out, report) = redact(text);
        assert_eq!(out, "before\n[REDACTED:private_key]\n\n\n\nafter\n");
        assert_eq!(out.lines().count(), text.lines().count());
        assert_eq!(report.redactions().len(), 1);
        assert_eq!(
            (report.redactions()[0].line, report.redactions()[0].column),
            (2, 1)
        );

        let escaped = "k = \"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaA==\\n-----END OPENSSH PRIVATE KEY-----\\n\"";
        assert_eq!(redact(escaped).0, "k = \"[REDACTED:private_key]\\n\"");

        let truncated =
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n[… 20 more lines]";
        let (out, _) = redact(truncated);
        assert!(!out.contains("MIIEvQ"), "{out}");
        assert!(out.contains("[… 20 more lines]"));
    }

    #[test]
    fn near_misses_in_code_are_left_alone() {
        for text in [
            "token = None",
            "password = getpass()",
            "password = getpass.getpass('Password: ')",
            "token = os.environ[\"GITHUB_TOKEN\"]",
            "api_key = os.getenv('OPENAI_API_KEY')",
            "if password == \"\":\n    raise ValueError",
            "TOKEN = None",
            "pw = f\"{user_password}\"",
            "password = \"<your password>\"",
            "password = '********'",
            "secret_name = \"prod/db\"",
            "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
            "tokenizer.pad_token = '[PAD]'",
            "max_tokens = 512",
            "from sklearn.linear_model import LogisticRegression",
            "scikit-learn==1.4.2",
            "The bearer token is sent in a header.",
            "Bearer authentication uses a header",
            "conn = psycopg2.connect(f\"postgresql://{user}:{password}@{host}/db\")",
            "url = 'https://example.org/path?page=2&sort=asc'",
            "AKIA is the prefix of access key ids",
            "token = \"'\", token[0][1:-1]",
            "EMOJI = {\"secret\": \"㊙\"}",
            "call_url_handler(\"search?key=test_error_package\")",
            "ACCESS_KEY = 'AWS_ACCESS_KEY_ID'",
            "USER_PASSWD = \"%s:%s\" % (USER, PASSWD)",
        ] {
            assert_untouched(text);
        }
    }

    #[test]
    fn the_most_specific_rule_wins_an_overlap() {
        let (out, report) = redact("password = \"ghp_abcdefghijklmnopqrstuvwxyz0123456789\"");
        assert_eq!(out, "password = \"[REDACTED:github_token]\"");
        assert_eq!(report.redactions().len(), 1);

        let (out, report) = redact("postgres://bob:pw1234@db.example.com/x");
        assert_eq!(
            out,
            "postgres://[REDACTED:connection_string]@db.example.com/x"
        );
        assert_eq!(report.counts().get(&RedactionKind::Email), None);
    }

    #[test]
    fn the_report_has_positions_and_never_values() {
        let text =
            "line one\nmail: ada@example.org and bob@example.org\n  key = 'AKIAIOSFODNN7EXAMPLE'\n";
        let (_, report) = redact(text);
        let got: Vec<(RedactionKind, usize, usize, usize)> = report
            .redactions()
            .iter()
            .map(|r| (r.kind, r.line, r.column, r.length))
            .collect();
        assert_eq!(
            got,
            vec![
                (RedactionKind::Email, 2, 7, 15),
                (RedactionKind::Email, 2, 27, 15),
                (RedactionKind::AwsAccessKeyId, 3, 10, 20),
            ]
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains("ada@") && !json.contains("AKIA"), "{json}");
        assert_eq!(report.counts().get(&RedactionKind::Email), Some(&2));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let (_, report) = redact("Grüße — é ada@example.org");
        assert_eq!(report.redactions()[0].column, 11);
    }

    #[test]
    fn redacting_twice_changes_nothing() {
        let text = "password = 'hunter22'\nada@example.org +44 20 7946 0958\n?token=3f9a0c1e2b3d4f5a6b7c8d9e\nexport API_TOKEN=abcdef123\n";
        let (once, _) = redact(text);
        let (twice, report) = redact(&once);
        assert_eq!(once, twice);
        assert!(report.is_empty(), "{report:?}");
    }

    #[test]
    fn kinds_are_reported_in_input_order() {
        assert_eq!(
            kinds("x@example.com then AKIAIOSFODNN7EXAMPLE"),
            vec![RedactionKind::Email, RedactionKind::AwsAccessKeyId]
        );
    }
}
