//! Script headers as pip and uv write them.
//!
//! uv's `format_shebang` (crates/uv-install-wheel/src/wheel.rs) writes
//! `#!<python>` when the line fits (`2 + len + 1 <= 127` bytes) and the path
//! has no space; otherwise a `/bin/sh` trampoline that `sh` runs and Python
//! reads as a string literal:
//!
//! ```text
//! #!/bin/sh
//! '''exec' '/path with space/venv/bin/python' "$0" "$@"
//! ' '''
//! ```
//!
//! with `'` in the path written as `'"'"'`. Both forms are parsed, and the
//! new header is written in the form uv would choose for the new path.

use crate::text::escape_single_quoted;

/// A parsed script header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Shebang {
    /// The interpreter's absolute path.
    pub interpreter: String,
    /// Bytes after the interpreter on a `#!` line (arguments, `\r`), kept verbatim.
    pub rest: Vec<u8>,
    /// Length of the header in bytes, including its final newline.
    pub header_len: usize,
}

const TRAMPOLINE_LINE1: &[u8] = b"#!/bin/sh\n";
const TRAMPOLINE_PREFIX: &str = "'''exec' ";
const TRAMPOLINE_SUFFIX: &str = " \"$0\" \"$@\"";
const TRAMPOLINE_LINE3: &[u8] = b"' '''\n";

/// Parse the header of `content`; `None` if it has no absolute interpreter
/// (no `#!`, `#!/usr/bin/env python`'s interpreter is `/usr/bin/env` and is
/// returned as such, a relocatable trampoline with `$(dirname …)` is `None`).
pub(crate) fn parse(content: &[u8]) -> Option<Shebang> {
    if content.starts_with(TRAMPOLINE_LINE1) {
        if let Some(s) = parse_trampoline(content) {
            return Some(s);
        }
    }
    let line = content.strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n')?;
    let line = &line[..end];
    let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
    let interp_end = line[start..]
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(line.len(), |p| start + p);
    let interpreter = std::str::from_utf8(&line[start..interp_end]).ok()?;
    if !interpreter.starts_with('/') {
        return None;
    }
    Some(Shebang {
        interpreter: interpreter.to_string(),
        rest: line[interp_end..].to_vec(),
        header_len: 2 + end + 1,
    })
}

fn parse_trampoline(content: &[u8]) -> Option<Shebang> {
    let after1 = &content[TRAMPOLINE_LINE1.len()..];
    let end2 = after1.iter().position(|&b| b == b'\n')?;
    let line2 = std::str::from_utf8(&after1[..end2]).ok()?;
    let after2 = &after1[end2 + 1..];
    if !after2.starts_with(TRAMPOLINE_LINE3) {
        return None;
    }
    let word = line2
        .strip_prefix(TRAMPOLINE_PREFIX)?
        .strip_suffix(TRAMPOLINE_SUFFIX)?;
    let interpreter = unquote_shell_word(word)?;
    if !interpreter.starts_with('/') {
        return None;
    }
    Some(Shebang {
        interpreter,
        rest: Vec::new(),
        header_len: TRAMPOLINE_LINE1.len() + end2 + 1 + TRAMPOLINE_LINE3.len(),
    })
}

/// A shell word made of single-quoted parts and `"'"`-style double-quoted
/// parts, with no expansion anywhere; `None` if it has any.
fn unquote_shell_word(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    ch => out.push(ch),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '$' | '`' | '\\' => return None,
                    ch => out.push(ch),
                }
            },
            '$' | '`' | '\\' | ' ' | '\t' => return None,
            ch => out.push(ch),
        }
    }
    Some(out)
}

/// Whether uv would write a trampoline for this interpreter.
fn needs_trampoline(interpreter: &str) -> bool {
    2 + interpreter.len() + 1 > 127 || interpreter.contains(' ')
}

/// The header uv writes for `interpreter`, with its final newline; `None`
/// when `rest` (arguments) cannot be carried into a trampoline.
pub(crate) fn format(interpreter: &str, rest: &[u8]) -> Option<Vec<u8>> {
    if needs_trampoline(interpreter) {
        if rest.iter().any(|b| !matches!(b, b'\r')) {
            return None;
        }
        let header = format!(
            "#!/bin/sh\n{TRAMPOLINE_PREFIX}'{}'{TRAMPOLINE_SUFFIX}\n' '''\n",
            escape_single_quoted(interpreter)
        );
        return Some(header.into_bytes());
    }
    let mut out = Vec::with_capacity(interpreter.len() + rest.len() + 3);
    out.extend_from_slice(b"#!");
    out.extend_from_slice(interpreter.as_bytes());
    out.extend_from_slice(rest);
    out.push(b'\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_shebang_is_parsed_with_its_arguments() {
        let s = parse(b"#!/envs/a/venv/bin/python -E\nimport sys\n").unwrap();
        assert_eq!(s.interpreter, "/envs/a/venv/bin/python");
        assert_eq!(s.rest, b" -E");
        assert_eq!(s.header_len, "#!/envs/a/venv/bin/python -E\n".len());
    }

    #[test]
    fn uvs_trampoline_is_parsed_including_escaped_quotes() {
        let script = b"#!/bin/sh\n'''exec' '/a dir/q'\"'\"'x/venv/bin/python' \"$0\" \"$@\"\n' '''\n# -*- coding: utf-8 -*-\n";
        let s = parse(script).unwrap();
        assert_eq!(s.interpreter, "/a dir/q'x/venv/bin/python");
        assert_eq!(&script[s.header_len..], b"# -*- coding: utf-8 -*-\n");
    }

    #[test]
    fn relocatable_trampolines_and_relative_interpreters_are_not_rewritable() {
        let script = b"#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/'python' \"$0\" \"$@\"\n' '''\n";
        assert!(parse(script).map(|s| s.interpreter) == Some("/bin/sh".to_string()));
        assert!(parse(b"#!python\n").is_none());
        assert!(parse(b"no shebang").is_none());
        assert!(parse(b"#!/no/newline").is_none());
    }

    #[test]
    fn a_path_with_a_space_gets_the_trampoline_and_round_trips() {
        let header = format("/new root/é/venv/bin/python", b"").unwrap();
        assert_eq!(
            String::from_utf8(header.clone()).unwrap(),
            "#!/bin/sh\n'''exec' '/new root/é/venv/bin/python' \"$0\" \"$@\"\n' '''\n"
        );
        let parsed = parse(&header).unwrap();
        assert_eq!(parsed.interpreter, "/new root/é/venv/bin/python");
        assert_eq!(parsed.header_len, header.len());
    }

    #[test]
    fn a_long_path_gets_the_trampoline_and_a_short_one_does_not() {
        let long = format!("/{}/bin/python", "x".repeat(120));
        assert!(format(&long, b"").unwrap().starts_with(b"#!/bin/sh\n"));
        assert_eq!(
            format("/short/bin/python", b"").unwrap(),
            b"#!/short/bin/python\n"
        );
    }

    #[test]
    fn arguments_cannot_be_carried_into_a_trampoline() {
        assert!(format("/a b/python", b" -E").is_none());
        assert_eq!(format("/ab/python", b" -E").unwrap(), b"#!/ab/python -E\n");
    }
}
