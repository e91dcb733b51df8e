//! Replacing whole path prefixes inside text.
//!
//! `/envs/a` must match in `/envs/a/venv/bin/python` and `'/envs/a'`, but not
//! in `/envs/ab`, `/envs/a.bak` or `/x/envs/a`: an occurrence counts only
//! when the byte before it cannot continue a path (not a name character and
//! not `/`) and the byte after it cannot continue the last component.

/// A set of `old prefix → new prefix` replacements; the longest prefix wins
/// where several match.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathMap {
    pairs: Vec<(String, String)>,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~' | b'+' | b'@') || b >= 0x80
}

impl PathMap {
    /// Pairs whose two sides are equal, or whose old side is empty or `/`,
    /// are dropped.
    pub(crate) fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(a, b)| (trim_slash(&a), trim_slash(&b)))
            .filter(|(a, b)| a != b && !a.is_empty() && a != "/")
            .collect();
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        pairs.dedup_by(|a, b| a.0 == b.0);
        Self { pairs }
    }

    pub(crate) fn single(from: &str, to: &str) -> Self {
        Self::new([(from.to_string(), to.to_string())])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The same map with both sides passed through `escape` (how the path is
    /// written inside a quoted context).
    pub(crate) fn escaped(&self, escape: impl Fn(&str) -> String) -> Self {
        Self {
            pairs: self
                .pairs
                .iter()
                .map(|(a, b)| (escape(a), escape(b)))
                .collect(),
        }
    }

    /// The new prefixes.
    pub(crate) fn news(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(_, b)| b.as_str())
    }

    /// Replace every whole-prefix occurrence; `None` when there is none.
    pub(crate) fn replace(&self, hay: &[u8]) -> Option<Vec<u8>> {
        if self.pairs.is_empty() {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        let mut copied = 0;
        let mut i = 0;
        let mut changed = false;
        while i < hay.len() {
            if let Some((from, to)) = self.match_at(hay, i) {
                out.extend_from_slice(&hay[copied..i]);
                out.extend_from_slice(to.as_bytes());
                i += from.len();
                copied = i;
                changed = true;
            } else {
                i += 1;
            }
        }
        if !changed {
            return None;
        }
        out.extend_from_slice(&hay[copied..]);
        Some(out)
    }

    /// [`Self::replace`] on a string.
    pub(crate) fn replace_str(&self, s: &str) -> Option<String> {
        self.replace(s.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Whether `hay` holds a whole-prefix occurrence of an old prefix.
    pub(crate) fn occurs_in(&self, hay: &[u8]) -> bool {
        (0..hay.len()).any(|i| self.match_at(hay, i).is_some())
    }

    /// Map a `file://` URL whose path is an old prefix or lies below one;
    /// the result is percent-encoded again.
    pub(crate) fn map_file_url(&self, url: &str) -> Option<String> {
        let path = percent_decode(url.strip_prefix("file://")?)?;
        let mapped = self.map_path(&path)?;
        Some(format!("file://{}", percent_encode_path(&mapped)))
    }

    /// Map a path that *is* an old prefix or lies below one.
    pub(crate) fn map_path(&self, path: &str) -> Option<String> {
        self.pairs.iter().find_map(|(from, to)| {
            let rest = path.strip_prefix(from.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{to}{rest}"))
        })
    }

    fn match_at(&self, hay: &[u8], i: usize) -> Option<(&str, &str)> {
        if i > 0 && (is_name_byte(hay[i - 1]) || hay[i - 1] == b'/') {
            return None;
        }
        self.pairs.iter().find_map(|(from, to)| {
            let f = from.as_bytes();
            if !hay[i..].starts_with(f) {
                return None;
            }
            let end = i + f.len();
            if end < hay.len() && is_name_byte(hay[end]) {
                return None;
            }
            Some((from.as_str(), to.as_str()))
        })
    }
}

/// Percent-encode a file path for a `file://` URL (RFC 3986 path
/// characters stay, everything else is `%XX` of its UTF-8 bytes).
pub(crate) fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes; `None` if the result is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn trim_slash(s: &str) -> String {
    if s.len() > 1 {
        s.trim_end_matches('/').to_string()
    } else {
        s.to_string()
    }
}

/// POSIX single-quote escaping as uv writes it in activate scripts and
/// shebang trampolines: `'` becomes `'"'"'`.
pub(crate) fn escape_single_quoted(s: &str) -> String {
    s.replace('\'', r#"'"'"'"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PathMap {
        PathMap::single("/envs/a", "/new root/é")
    }

    #[test]
    fn a_prefix_is_replaced_where_it_stands_as_a_whole_path() {
        let out = map()
            .replace(b"VIRTUAL_ENV='/envs/a/venv'\n#!/envs/a/venv/bin/python\n/envs/a")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "VIRTUAL_ENV='/new root/é/venv'\n#!/new root/é/venv/bin/python\n/new root/é"
        );
    }

    #[test]
    fn longer_names_and_deeper_paths_are_not_matches() {
        for s in [
            "/envs/ab/x",
            "/envs/a.bak",
            "/x/envs/a/venv",
            "/envs/a-2",
            "/envs/aé",
        ] {
            assert!(map().replace(s.as_bytes()).is_none(), "{s}");
        }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let m = PathMap::new([
            ("/r".to_string(), "/n".to_string()),
            ("/r/base".to_string(), "/b".to_string()),
        ]);
        assert_eq!(
            m.replace_str("/r/base/bin:/r/venv").unwrap(),
            "/b/bin:/n/venv"
        );
        assert_eq!(m.map_path("/r/base/lib").unwrap(), "/b/lib");
        assert_eq!(m.map_path("/rr"), None);
    }

    #[test]
    fn trailing_slashes_and_identities_are_ignored() {
        assert!(PathMap::single("/a/", "/a").is_empty());
        assert!(PathMap::single("/", "/x").is_empty());
        assert_eq!(
            PathMap::single("/a/", "/b/").replace_str("/a/x").unwrap(),
            "/b/x"
        );
    }

    #[test]
    fn single_quotes_are_escaped_like_uv() {
        assert_eq!(escape_single_quoted("/q'x"), r#"/q'"'"'x"#);
    }

    #[test]
    fn file_url_paths_round_trip_through_percent_encoding() {
        let p = "/new root/é/src";
        let enc = percent_encode_path(p);
        assert_eq!(enc, "/new%20root/%C3%A9/src");
        assert_eq!(percent_decode(&enc).unwrap(), p);
        assert_eq!(percent_decode("100%").unwrap(), "100%");
    }

    #[test]
    fn file_urls_are_mapped_by_their_decoded_path() {
        let m = PathMap::single("/old root", "/new é");
        assert_eq!(
            m.map_file_url("file:///old%20root/src").unwrap(),
            "file:///new%20%C3%A9/src"
        );
        assert_eq!(m.map_file_url("file:///elsewhere"), None);
        assert_eq!(m.map_file_url("https://x"), None);
    }
}
