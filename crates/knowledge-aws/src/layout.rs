//! Where knowledge documents live in the bucket, and what the Knowledge Base
//! is told about each: the one mapping between a document's path, its S3
//! key and URI, and its metadata file.
//!
//! Policy: a document `{path}` (the seed's layout, see
//! [`westtek_knowledge::DocPath`]) is the object `{prefix}{path}`; its
//! Bedrock Knowledge Base metadata file is `{prefix}{path}.metadata.json`
//! beside it (Bedrock's naming rule), so paths ending in `.metadata.json`
//! are reserved. The metadata names the lab (`lab_id`) and environment
//! (`environment_id`) a document belongs to, which the agents filter
//! retrieval on. A key that does not map back onto a valid path (another
//! application's object, a metadata file) is not a document.

use serde::Serialize;
use std::collections::BTreeMap;
use westtek_knowledge::{DocPath, Error, Result};

/// Suffix of Bedrock Knowledge Base metadata files.
pub const METADATA_SUFFIX: &str = ".metadata.json";

/// A bucket and a key prefix: where the documents are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Layout {
    bucket: String,
    /// Empty, or ending with `/`.
    prefix: String,
}

impl S3Layout {
    /// Documents in `bucket` under `prefix` (`""` for the bucket's root,
    /// `knowledge` or `knowledge/` for a folder).
    ///
    /// # Errors
    /// [`Error::Backend`] naming the setting when the bucket name is not a
    /// valid S3 bucket name or the prefix has empty, `.` or `..` parts.
    pub fn new(bucket: &str, prefix: &str) -> Result<Self> {
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid_bucket {
            return Err(Error::Backend(format!(
                "{bucket:?} is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-'); check the knowledge bucket setting"
            )));
        }
        let trimmed = prefix.trim_matches('/');
        if !trimmed.is_empty()
            && trimmed
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(Error::Backend(format!(
                "the knowledge key prefix {prefix:?} has empty, '.' or '..' parts"
            )));
        }
        let prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}/")
        };
        Ok(S3Layout {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix: empty, or ending with `/` (the Knowledge Base data
    /// source's inclusion prefix).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The object key of a document.
    pub fn key(&self, path: &DocPath) -> String {
        format!("{}{}", self.prefix, path.as_str())
    }

    /// The object key of a document's Knowledge Base metadata file.
    pub fn metadata_key(&self, path: &DocPath) -> String {
        format!("{}{}{METADATA_SUFFIX}", self.prefix, path.as_str())
    }

    /// `s3://bucket/key` of a document, as Bedrock cites it.
    pub fn uri(&self, path: &DocPath) -> String {
        format!("s3://{}/{}", self.bucket, self.key(path))
    }

    /// The document an object key holds, if it is one of ours.
    pub fn path_of_key(&self, key: &str) -> Option<DocPath> {
        let rel = key.strip_prefix(&self.prefix)?;
        if rel.ends_with(METADATA_SUFFIX) {
            return None;
        }
        DocPath::parse(rel).ok()
    }

    /// The document a Bedrock citation's `s3://bucket/key` URI points at,
    /// if it is one of ours (this bucket, under this prefix, a valid path).
    pub fn path_of_uri(&self, uri: &str) -> Option<DocPath> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        if bucket != self.bucket {
            return None;
        }
        self.path_of_key(key)
    }
}

/// Refuses paths reserved for metadata files.
pub(crate) fn check_not_reserved(path: &DocPath) -> Result<()> {
    if path.as_str().ends_with(METADATA_SUFFIX) {
        return Err(Error::InvalidPath {
            path: path.as_str().chars().take(200).collect(),
            reason: "ends with `.metadata.json`, reserved for the Knowledge Base's metadata files",
        });
    }
    Ok(())
}

/// Who a document belongs to, as far as its path says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathOwner {
    /// The lab segment (`notebooks/{lab}/…`, `experiment-logs/{lab}/…`).
    pub lab: Option<String>,
    /// The environment segment (`package-manifests/{env}/…`,
    /// `installation-history/{env}/…`, `environment-docs/{env}/…`,
    /// `notebooks/{lab}/{researcher}/{env}/…`).
    pub environment: Option<String>,
    /// The top folder (`notebooks`, `package-manifests`, …).
    pub kind: String,
}

/// Reads a document's owner off its path (the seed's layout).
pub fn owner_of(path: &DocPath) -> PathOwner {
    let seg: Vec<&str> = path.as_str().split('/').collect();
    // A segment is an id only if something follows it (not the file name).
    let at = |i: usize| (i + 1 < seg.len()).then(|| seg[i].to_string());
    let kind = seg.first().copied().unwrap_or_default().to_string();
    let (lab, environment) = match kind.as_str() {
        "notebooks" => (at(1), at(3)),
        "experiment-logs" => (at(1), None),
        "package-manifests" | "installation-history" | "environment-docs" => (None, at(1)),
        _ => (None, None),
    };
    PathOwner {
        lab,
        environment,
        kind,
    }
}

/// The body of a Bedrock Knowledge Base metadata file:
/// `{"metadataAttributes": {"lab_id": …, "environment_id": …, "kind": …, "path": …}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KbMetadata {
    /// Attributes the Knowledge Base indexes with the document's chunks and
    /// returns with every retrieved reference.
    pub metadata_attributes: BTreeMap<String, String>,
}

impl KbMetadata {
    /// The metadata of `path`, owned by `lab` (from the path, or resolved
    /// from its environment).
    pub fn new(path: &DocPath, lab: Option<&str>) -> Self {
        let owner = owner_of(path);
        let mut a = BTreeMap::new();
        if let Some(lab) = lab {
            a.insert("lab_id".to_string(), lab.to_string());
        }
        if let Some(env) = owner.environment {
            a.insert("environment_id".to_string(), env);
        }
        a.insert("kind".to_string(), owner.kind);
        a.insert("path".to_string(), path.as_str().to_string());
        KbMetadata {
            metadata_attributes: a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DocPath {
        DocPath::parse(s).unwrap()
    }

    #[test]
    fn keys_and_uris_map_back_onto_the_document() {
        let l = S3Layout::new("kb-bucket", "/knowledge/").unwrap();
        let d = p("notebooks/lab/r1/env/analysis.md");
        assert_eq!(l.key(&d), "knowledge/notebooks/lab/r1/env/analysis.md");
        assert_eq!(
            l.uri(&d),
            "s3://kb-bucket/knowledge/notebooks/lab/r1/env/analysis.md"
        );
        assert_eq!(l.path_of_uri(&l.uri(&d)), Some(d.clone()));
        assert_eq!(l.path_of_uri("s3://other/knowledge/notebooks/a.md"), None);
        assert_eq!(l.path_of_uri("s3://kb-bucket/elsewhere/a.md"), None);
        assert_eq!(l.path_of_uri("s3://kb-bucket/knowledge/../etc"), None);
        assert_eq!(
            l.path_of_key("knowledge/notebooks/a.md.metadata.json"),
            None
        );
        let root = S3Layout::new("kb-bucket", "").unwrap();
        assert_eq!(root.key(&d), d.as_str());
    }

    #[test]
    fn bad_buckets_and_prefixes_are_refused_naming_the_setting() {
        assert!(S3Layout::new("Bad_Bucket", "").is_err());
        assert!(S3Layout::new("ok-bucket", "a//b").is_err());
        assert!(S3Layout::new("ok-bucket", "a/../b").is_err());
    }

    #[test]
    fn the_owner_comes_from_the_seed_layout() {
        let o = owner_of(&p("notebooks/L/R/E/x.md"));
        assert_eq!(
            (o.lab.as_deref(), o.environment.as_deref()),
            (Some("L"), Some("E"))
        );
        let o = owner_of(&p("notebooks/L/R/x.md"));
        assert_eq!(
            (o.lab.as_deref(), o.environment.as_deref()),
            (Some("L"), None)
        );
        let o = owner_of(&p("experiment-logs/L/exp.json"));
        assert_eq!((o.lab.as_deref(), o.environment), (Some("L"), None));
        let o = owner_of(&p("package-manifests/E/s.txt"));
        assert_eq!((o.lab, o.environment.as_deref()), (None, Some("E")));
        let o = owner_of(&p("notebooks/x.md"));
        assert_eq!((o.lab, o.environment), (None, None));
    }

    #[test]
    fn metadata_has_bedrocks_shape() {
        let m = KbMetadata::new(&p("package-manifests/E/s.txt"), Some("L"));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"metadataAttributes": {
                "lab_id": "L", "environment_id": "E", "kind": "package-manifests",
                "path": "package-manifests/E/s.txt"}})
        );
    }
}
