//! Rewriting string values inside a JSON document without re-serialising
//! it: every byte outside a changed string literal stays as it was (key
//! order, indentation, escapes), so a `kernel.json` differs from the
//! original only in the paths.
//!
//! A changed literal is re-encoded the way the original was: raw UTF-8 if
//! it had raw non-ASCII bytes, otherwise ASCII with `\uXXXX` escapes —
//! Python's `json.dump` default, which is how jupyter_client writes
//! `kernel.json`.

/// Apply `map` to every string literal of `doc` (keys too — a path is never
/// a key in the files this is used on, and a key that is not a path is left
/// alone by any path map). `None` when nothing changed or `doc` is not JSON.
pub(crate) fn rewrite_strings(doc: &[u8], map: impl Fn(&str) -> Option<String>) -> Option<Vec<u8>> {
    serde_json::from_slice::<serde::de::IgnoredAny>(doc).ok()?;
    let mut out = Vec::with_capacity(doc.len() + 64);
    let mut copied = 0;
    let mut i = 0;
    let mut changed = false;
    while i < doc.len() {
        if doc[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < doc.len() && doc[i] != b'"' {
            i += if doc[i] == b'\\' { 2 } else { 1 };
        }
        let end = (i + 1).min(doc.len());
        let literal = &doc[start..end];
        i = end;
        let Ok(value) = serde_json::from_slice::<String>(literal) else {
            continue;
        };
        let Some(new) = map(&value) else {
            continue;
        };
        if new == value {
            continue;
        }
        let ascii = literal.is_ascii();
        out.extend_from_slice(&doc[copied..start]);
        out.extend_from_slice(encode(&new, ascii).as_bytes());
        copied = end;
        changed = true;
    }
    if !changed {
        return None;
    }
    out.extend_from_slice(&doc[copied..]);
    Some(out)
}

/// A JSON string literal; with `ascii`, non-ASCII characters as lower-case
/// `\uXXXX` (surrogate pairs beyond the BMP), as Python writes them.
pub(crate) fn encode(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper_path(s: &str) -> Option<String> {
        s.strip_prefix("/old").map(|rest| format!("/nëw dir{rest}"))
    }

    #[test]
    fn only_the_changed_strings_differ_and_formatting_is_kept() {
        let doc = b"{\n \"argv\": [\n  \"/old/venv/bin/python\",\n  \"-m\"\n ],\n \"display_name\": \"Py\"\n}";
        let out = rewrite_strings(doc, upper_path).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n \"argv\": [\n  \"/n\\u00ebw dir/venv/bin/python\",\n  \"-m\"\n ],\n \"display_name\": \"Py\"\n}"
        );
    }

    #[test]
    fn raw_utf8_documents_stay_raw() {
        let doc = "{\"a\": \"/old/x\", \"b\": \"é\"}".as_bytes();
        let out = rewrite_strings(doc, upper_path).unwrap();
        // The literal changed was ASCII, so it is written ASCII-escaped; the
        // untouched one keeps its raw bytes.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\": \"/n\\u00ebw dir/x\", \"b\": \"é\"}"
        );
        let doc = "{\"a\": \"/old/é\"}".as_bytes();
        let out = rewrite_strings(doc, upper_path).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\": \"/nëw dir/é\"}");
    }

    #[test]
    fn escaped_input_is_decoded_before_matching() {
        let doc = br#"{"a": "\/old\/x"}"#;
        let out = rewrite_strings(doc, upper_path).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a"], "/nëw dir/x");
    }

    #[test]
    fn nothing_to_change_or_not_json_is_none() {
        assert!(rewrite_strings(br#"{"a": "/other"}"#, upper_path).is_none());
        assert!(rewrite_strings(b"{\"a\": \"/old", upper_path).is_none());
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        assert_eq!(encode("😀", true), "\"\\ud83d\\ude00\"");
        assert_eq!(encode("a\"b\\", true), "\"a\\\"b\\\\\"");
    }
}
