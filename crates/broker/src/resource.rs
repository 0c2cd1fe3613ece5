//! Names of things the broker keeps: resource paths `REPO/TYPE/TAG` and policy digests.

use std::fmt;

/// Longest segment of a resource path, in bytes.
pub const MAX_SEGMENT_LEN: usize = 128;

/// A resource path or policy digest was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The path does not have exactly three `/`-separated segments.
    #[error("resource path must be REPO/TYPE/TAG")]
    SegmentCount,
    /// A segment is empty, too long, starts with `.` or holds a character outside
    /// `[A-Za-z0-9_.-]`.
    #[error(
        "resource path segment `{segment}` must match [A-Za-z0-9_-][A-Za-z0-9_.-]* and be at most 128 bytes"
    )]
    BadSegment {
        /// `repo`, `type` or `tag`.
        segment: &'static str,
    },
    /// A policy digest is not `sha384:` followed by 96 lowercase hex digits.
    #[error("policy digest must be sha384:<96 lowercase hex digits>")]
    BadPolicyDigest,
}

/// A validated resource path `REPO/TYPE/TAG` (API.md: each segment
/// `[A-Za-z0-9_\-]+[A-Za-z0-9_\-.]*`, at most 128 bytes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourcePath {
    repo: String,
    kind: String,
    tag: String,
}

fn check_segment(s: &str, segment: &'static str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(NameError::BadSegment { segment })
    }
}

/// Checks a repository name on its own (the first segment of a resource path).
///
/// # Errors
/// [`NameError::BadSegment`].
pub fn check_repo(repo: &str) -> Result<(), NameError> {
    check_segment(repo, "repo")
}

impl ResourcePath {
    /// Builds a path from its three segments.
    ///
    /// # Errors
    /// [`NameError::BadSegment`] naming the first bad segment.
    pub fn new(repo: &str, kind: &str, tag: &str) -> Result<Self, NameError> {
        check_segment(repo, "repo")?;
        check_segment(kind, "type")?;
        check_segment(tag, "tag")?;
        Ok(Self {
            repo: repo.to_owned(),
            kind: kind.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// Parses `REPO/TYPE/TAG`.
    ///
    /// # Errors
    /// [`NameError::SegmentCount`] or [`NameError::BadSegment`].
    pub fn parse(path: &str) -> Result<Self, NameError> {
        let mut it = path.split('/');
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(r), Some(k), Some(t), None) => Self::new(r, k, t),
            _ => Err(NameError::SegmentCount),
        }
    }

    /// The repository (tenant) segment.
    #[must_use]
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The type segment.
    #[must_use]
    pub fn resource_type(&self) -> &str {
        &self.kind
    }

    /// The tag segment.
    #[must_use]
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.repo, self.kind, self.tag)
    }
}

/// The digest of a policy's text, `sha384:<hex>`: how a sealed secret names its policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PolicyDigest(String);

/// Whether `s` is a SHA-384 written as 96 lowercase hex digits (a policy digest's hex, an
/// audit entry's hash).
#[must_use]
pub(crate) fn is_sha384_hex(s: &str) -> bool {
    s.len() == 96 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl PolicyDigest {
    /// The digest of a policy text (its exact bytes).
    #[must_use]
    pub fn of(policy_text: &[u8]) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, policy_text);
        Self(format!("sha384:{}", tessera::pki::to_hex(d.as_ref())))
    }

    /// Parses `sha384:<96 lowercase hex digits>`.
    ///
    /// # Errors
    /// [`NameError::BadPolicyDigest`].
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let hex = s
            .strip_prefix("sha384:")
            .ok_or(NameError::BadPolicyDigest)?;
        if is_sha384_hex(hex) {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::BadPolicyDigest)
        }
    }

    /// The digest as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths() {
        let p = ResourcePath::parse("tenant-1/key/v1.2").unwrap();
        assert_eq!(
            (p.repo(), p.resource_type(), p.tag()),
            ("tenant-1", "key", "v1.2")
        );
        assert_eq!(p.to_string(), "tenant-1/key/v1.2");
        assert_eq!(ResourcePath::parse("a/b"), Err(NameError::SegmentCount));
        assert_eq!(ResourcePath::parse("a/b/c/d"), Err(NameError::SegmentCount));
        assert_eq!(
            ResourcePath::parse("a//c"),
            Err(NameError::BadSegment { segment: "type" })
        );
        assert_eq!(
            ResourcePath::parse(".a/b/c"),
            Err(NameError::BadSegment { segment: "repo" })
        );
        assert_eq!(
            ResourcePath::parse("a/b/c d"),
            Err(NameError::BadSegment { segment: "tag" })
        );
        assert_eq!(
            ResourcePath::parse("a/b/c?x"),
            Err(NameError::BadSegment { segment: "tag" })
        );
        let long = "x".repeat(MAX_SEGMENT_LEN + 1);
        assert!(ResourcePath::new(&long, "b", "c").is_err());
        assert!(ResourcePath::new(&long[1..], "b", "c").is_ok());
    }

    #[test]
    fn policy_digests() {
        let d = PolicyDigest::of(b"policy");
        assert_eq!(PolicyDigest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.as_str().len(), 7 + 96);
        assert!(PolicyDigest::parse("sha256:00").is_err());
        assert!(PolicyDigest::parse(&d.as_str().to_uppercase()).is_err());
        assert!(PolicyDigest::parse(&d.as_str()[..100]).is_err());
    }

    proptest! {
        #[test]
        fn parse_display_round_trip(s in "[A-Za-z0-9_./-]{0,40}") {
            if let Ok(p) = ResourcePath::parse(&s) {
                prop_assert_eq!(p.to_string(), s);
            }
        }
    }
}
