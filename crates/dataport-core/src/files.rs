//! Stored files: what a file name may be, how the compat FileSrv header turns
//! into one, and the sha256 digest every stored file carries.
//!
//! A name is checked here once, before anything touches a disk or a bucket:
//! a name that passes is exactly one path component, so joining it to a
//! directory can never leave that directory.

use std::fmt;
use std::str::FromStr;

/// The longest file name, in bytes (what Linux file systems allow for one
/// path component).
pub const MAX_NAME_LEN: usize = 255;

/// How much of a refused name an error shows, in characters.
const SHOWN_CHARS: usize = 64;

/// Why a file name was refused. Every message names the problem and the
/// name, escaped (control characters as `\n`, `\u{1b}`, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("file name must not be empty")]
    Empty,
    #[error("file name {name} is {len} bytes; the limit is {MAX_NAME_LEN}")]
    TooLong { name: Shown, len: usize },
    #[error("file name {name} is not allowed: it names a directory, not a file")]
    Dots { name: Shown },
    #[error("file name {name} contains {sep:?}, a path separator; a name is one path component")]
    Separator { name: Shown, sep: char },
    #[error("file name {name} contains a NUL byte")]
    Nul { name: Shown },
    #[error("file name {name} contains the control character {ch:?}")]
    Control { name: Shown, ch: char },
}

/// A refused name as an error shows it: quoted and escaped, cut to its first
/// 64 characters (with `...`) when longer.
#[derive(Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    fn new(name: &str) -> Self {
        let mut shown = String::new();
        let mut chars = name.chars();
        let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
        shown.push_str(&format!("{head:?}"));
        if chars.next().is_some() {
            shown.push_str("...");
        }
        Shown(shown)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a file name: 1 to [`MAX_NAME_LEN`] bytes, not `.` or `..`, and no
/// `/`, `\`, NUL or other control character (C0, DEL or C1). Anything else,
/// spaces, leading dots and any Unicode included, is a valid name.
///
/// `\` is refused although Linux allows it, so that a name means the same
/// on every system a file may be downloaded to.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { name: Shown::new(name), len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots { name: Shown::new(name) });
    }
    for ch in name.chars() {
        match ch {
            '/' | '\\' => return Err(NameError::Separator { name: Shown::new(name), sep: ch }),
            '\0' => return Err(NameError::Nul { name: Shown::new(name) }),
            c if c.is_control() => return Err(NameError::Control { name: Shown::new(name), ch: c }),
            _ => {}
        }
    }
    Ok(())
}

/// The name the compat `FileSrv` stores a file under: `filename` and
/// `extension` joined exactly as they are, then checked with
/// [`validate_name`].
///
/// No dot is added: the seed service stored `filename + extension`, so its
/// clients send the dot themselves (`"report"`, `".pdf"` gives
/// `report.pdf`), and one that sent `"pdf"` got `reportpdf`, which is what
/// it will ask DownloadFile for again with the same header. Guessing a dot
/// would make `("report", "pdf")` and `("report", ".pdf")` the same file for
/// us but not for the seed. An empty extension leaves the file name alone.
pub fn stored_name(filename: &str, extension: &str) -> Result<String, NameError> {
    let name = format!("{filename}{extension}");
    validate_name(&name)?;
    Ok(name)
}

/// A sha256 digest; shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

/// Why a text is not a sha256 digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("a sha256 digest is 64 hex digits, got {len} characters")]
    Length { len: usize },
    #[error("a sha256 digest is 64 hex digits, got {found:?} at position {at}")]
    NotHex { found: char, at: usize },
    #[error("a sha256 digest is 32 bytes, got {len}")]
    Bytes { len: usize },
}

impl Sha256Digest {
    /// The digest in `bytes`, which must be exactly 32 (as a protobuf
    /// `bytes` field carries it).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DigestError> {
        <[u8; 32]>::try_from(bytes).map(Sha256Digest).map_err(|_| DigestError::Bytes { len: bytes.len() })
    }

    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl From<[u8; 32]> for Sha256Digest {
    fn from(bytes: [u8; 32]) -> Self {
        Sha256Digest(bytes)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestError;

    /// Parses 64 hex digits, either case.
    fn from_str(text: &str) -> Result<Self, DigestError> {
        let len = text.chars().count();
        if len != 64 {
            return Err(DigestError::Length { len });
        }
        let mut out = [0u8; 32];
        let mut digits = text
            .chars()
            .enumerate()
            .map(|(at, c)| c.to_digit(16).map(|d| d as u8).ok_or(DigestError::NotHex { found: c, at }));
        for byte in &mut out {
            // 64 characters were counted above, so both digits are there.
            if let (Some(hi), Some(lo)) = (digits.next(), digits.next()) {
                *byte = (hi? << 4) | lo?;
            }
        }
        Ok(Sha256Digest(out))
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["report.pdf", "a", "...", ".hidden", "x..y", "a b", "é".repeat(127).as_str(), "日本.txt"]
        {
            assert_eq!(validate_name(name), Ok(()), "{name:?}");
        }
        assert_eq!(validate_name(&"a".repeat(MAX_NAME_LEN)), Ok(()));
    }

    #[test]
    fn an_empty_name_is_refused() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(NameError::Empty.to_string(), "file name must not be empty");
    }

    #[test]
    fn a_name_over_255_bytes_is_refused_with_its_length() {
        let err = validate_name(&"a".repeat(256)).unwrap_err();
        assert!(matches!(err, NameError::TooLong { len: 256, .. }));
        let text = err.to_string();
        assert!(text.starts_with(&format!("file name \"{}\"...", "a".repeat(64))), "{text}");
        assert!(text.ends_with("is 256 bytes; the limit is 255"), "{text}");
        // Bytes count, not characters: 128 two-byte characters are 256 bytes.
        assert!(matches!(validate_name(&"é".repeat(128)), Err(NameError::TooLong { len: 256, .. })));
    }

    #[test]
    fn dot_and_dot_dot_are_refused() {
        for name in [".", ".."] {
            let err = validate_name(name).unwrap_err();
            assert!(matches!(err, NameError::Dots { .. }));
            assert_eq!(
                err.to_string(),
                format!("file name {name:?} is not allowed: it names a directory, not a file")
            );
        }
    }

    #[test]
    fn path_separators_are_refused() {
        for (name, sep) in [("a/b", '/'), ("../etc/passwd", '/'), ("/", '/'), ("a\\b", '\\'), ("..\\x", '\\')]
        {
            let err = validate_name(name).unwrap_err();
            assert!(matches!(err, NameError::Separator { sep: s, .. } if s == sep), "{name:?}: {err}");
        }
        assert_eq!(
            validate_name("a/b").unwrap_err().to_string(),
            "file name \"a/b\" contains '/', a path separator; a name is one path component"
        );
        assert_eq!(
            validate_name("a\\b").unwrap_err().to_string(),
            "file name \"a\\\\b\" contains '\\\\', a path separator; a name is one path component"
        );
    }

    #[test]
    fn nul_is_refused() {
        let err = validate_name("a\0b").unwrap_err();
        assert!(matches!(err, NameError::Nul { .. }));
        assert_eq!(err.to_string(), "file name \"a\\0b\" contains a NUL byte");
    }

    #[test]
    fn control_characters_are_refused_and_shown_escaped() {
        for ch in ['\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
            let name = format!("a{ch}b");
            let err = validate_name(&name).unwrap_err();
            assert_eq!(err, NameError::Control { name: Shown::new(&name), ch }, "{name:?}");
        }
        assert_eq!(
            validate_name("x\ny").unwrap_err().to_string(),
            "file name \"x\\ny\" contains the control character '\\n'"
        );
    }

    #[test]
    fn stored_name_joins_filename_and_extension_as_they_are() {
        assert_eq!(stored_name("report", ".pdf").unwrap(), "report.pdf");
        assert_eq!(stored_name("report", "pdf").unwrap(), "reportpdf");
        assert_eq!(stored_name("report", "").unwrap(), "report");
        assert_eq!(stored_name("", ".bashrc").unwrap(), ".bashrc");
        assert_eq!(stored_name("", ""), Err(NameError::Empty));
        assert_eq!(stored_name(".", "."), Err(NameError::Dots { name: Shown::new("..") }));
        assert!(matches!(stored_name("..", "/x"), Err(NameError::Separator { sep: '/', .. })));
        assert!(matches!(
            stored_name(&"a".repeat(200), &".b".repeat(28)),
            Err(NameError::TooLong { len: 256, .. })
        ));
    }

    #[test]
    fn digests_print_and_parse_as_hex() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let digest = Sha256Digest(bytes);
        let hex = digest.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ab00") && hex.ends_with("0001"), "{hex}");
        assert_eq!(hex.parse::<Sha256Digest>(), Ok(digest));
        assert_eq!(hex.to_uppercase().parse::<Sha256Digest>(), Ok(digest));
        assert_eq!(Sha256Digest::from_slice(&bytes), Ok(digest));
    }

    #[test]
    fn bad_digests_are_refused() {
        assert_eq!("ab".parse::<Sha256Digest>(), Err(DigestError::Length { len: 2 }));
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(bad.parse::<Sha256Digest>(), Err(DigestError::NotHex { found: 'g', at: 63 }));
        assert_eq!("é".repeat(64).parse::<Sha256Digest>(), Err(DigestError::NotHex { found: 'é', at: 0 }));
        assert_eq!(Sha256Digest::from_slice(&[0; 31]), Err(DigestError::Bytes { len: 31 }));
    }

    /// Names built mostly from the characters that matter to paths.
    fn tricky_name() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('.'),
                Just('/'),
                Just('\\'),
                Just('\0'),
                Just('\n'),
                Just('a'),
                Just(' '),
                Just('é'),
                any::<char>()
            ],
            0..8,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn assert_stays_inside(name: &str) {
        let dir = Path::new("/srv/data/files");
        let joined = dir.join(name);
        assert_eq!(joined.parent(), Some(dir), "{name:?}");
        let components: Vec<_> = Path::new(name).components().collect();
        assert_eq!(components, [Component::Normal(name.as_ref())], "{name:?}");
        assert_eq!(joined.components().count(), dir.components().count() + 1, "{name:?}");
    }

    proptest! {
        #[test]
        fn an_accepted_name_is_one_component_inside_the_dir(name in tricky_name()) {
            if validate_name(&name).is_ok() {
                assert_stays_inside(&name);
            } else {
                prop_assert!(
                    name.is_empty() || name == "." || name == ".."
                        || name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
                );
            }
        }

        #[test]
        fn any_accepted_string_stays_inside(name in any::<String>()) {
            if validate_name(&name).is_ok() {
                assert_stays_inside(&name);
            }
        }

        #[test]
        fn a_name_with_a_separator_is_never_accepted(a in any::<String>(), b in any::<String>(), sep in prop::sample::select(vec!['/', '\\'])) {
            let name = format!("{a}{sep}{b}");
            prop_assert!(validate_name(&name).is_err());
        }

        #[test]
        fn digests_round_trip_through_hex(bytes in any::<[u8; 32]>()) {
            let digest = Sha256Digest(bytes);
            prop_assert_eq!(digest.to_hex().parse::<Sha256Digest>(), Ok(digest));
        }
    }
}
