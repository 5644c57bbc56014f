//! Content digests. Only sha256 is produced; it is parsed once into a newtype
//! so that nothing downstream handles digests as loose strings.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

pub mod fused;

/// A sha256 content digest: what names every blob, manifest and config.
/// It prints and parses as `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 hex digits alone, as blob file names use them.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest a descriptor read from a source names. A descriptor may
    /// name any algorithm; gantry stores sha256 only, so any other is an
    /// error of the document `what` names, never a stand-in value.
    pub fn from_oci(d: &oci_spec::image::Digest, what: &str) -> Result<Digest, Error> {
        Digest::from_str(d.as_ref()).map_err(|_| {
            Error::format(
                what,
                format!("digest {d} is not supported (only sha256 is)"),
            )
        })
    }

    /// Parses `sha256:<64 lowercase hex digits>`, telling a digest of
    /// another algorithm from text that is not a digest at all, so each
    /// caller can say which in its own words.
    pub fn parse(s: &str) -> Result<Digest, Refusal> {
        let (algorithm, encoded) = s.split_once(':').ok_or(Refusal::Malformed)?;
        if algorithm != "sha256" {
            let well_formed = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b))
                && !encoded.is_empty()
                && encoded.bytes().all(|b| b.is_ascii_hexdigit());
            return Err(if well_formed {
                Refusal::Algorithm(algorithm.to_string())
            } else {
                Refusal::Malformed
            });
        }
        Digest::from_str(s).map_err(|_| Refusal::Malformed)
    }

    /// The form oci-spec's descriptors carry.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        oci_spec::image::Digest::from_str(&self.to_string())
            .expect("a sha256 digest is always a valid OCI digest")
    }
}

/// Why [`Digest::parse`] refused a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A well-formed digest of another algorithm (named here), which names
    /// content but not as gantry stores it.
    Algorithm(String),
    /// Not a digest: no algorithm, or an encoding that is not sha256's.
    Malformed,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Mismatch {
            what: "digest".into(),
            expected: format!("sha256:<64 lowercase hex digits> ({reason})"),
            actual: s.to_string(),
        };
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("only sha256 is supported"))?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("malformed hex"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| bad("malformed hex"))?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_str(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256 that also counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `bytes` and counts them.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes were hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest and length of everything hashed.
    pub fn finish(self) -> (Digest, u64) {
        (Digest(self.inner.finalize().into()), self.len)
    }
}

/// A writer that hashes everything passing through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// How many bytes went through so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// The writer underneath, to write past the hasher.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The writer back, with the digest and length of what went through.
    pub fn finish(self) -> (W, Digest, u64) {
        let (d, n) = self.hasher.finish();
        (self.inner, d, n)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The digest and length of what was read.
    pub fn finish(self) -> (Digest, u64) {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A reader that fails at end of input when the content is not exactly the
/// expected size and digest, so a corrupt blob can never be consumed silently.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected: Digest,
    expected_size: Option<u64>,
    what: String,
}

impl<R: Read> VerifyingReader<R> {
    /// Reads `inner`, which must hold exactly `expected` (and `expected_size`
    /// bytes, when given); `what` names it in the error otherwise.
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>, what: String) -> Self {
        VerifyingReader {
            inner,
            hasher: Hasher::new(),
            expected,
            expected_size,
            what,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            if let Some(size) = self.expected_size {
                if self.hasher.len() > size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: more than the expected {size} bytes of {}",
                            self.what, self.expected
                        ),
                    ));
                }
                // Readers that stop at the declared length (an HTTP body of
                // known size) never ask for EOF: check with the last byte.
                if self.hasher.len() == size {
                    self.check_digest()?;
                }
            }
            return Ok(n);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let len = self.hasher.len();
        if let Some(size) = self.expected_size {
            if len != size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: expected {size} bytes, got {len}", self.what),
                ));
            }
        }
        self.check_digest()?;
        Ok(0)
    }
}

impl<R> VerifyingReader<R> {
    fn check_digest(&self) -> io::Result<()> {
        let (actual, _) = self.hasher.clone().finish();
        if actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: content digest is {actual}, expected {}",
                    self.what, self.expected
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_round_trip() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::from_str(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn another_algorithm_is_told_from_a_malformed_digest() {
        let hex = "ab".repeat(32);
        assert_eq!(
            Digest::parse(&format!("sha512:{hex}")),
            Err(Refusal::Algorithm("sha512".into()))
        );
        for bad in ["sha256", "sha256:short", ":abc", "sha512:xyz", "sha256:AB"] {
            assert_eq!(Digest::parse(bad), Err(Refusal::Malformed), "{bad}");
        }
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(&d.to_string()), Ok(d));
    }

    #[test]
    fn rejects_other_algorithms_and_uppercase() {
        assert!(Digest::from_str("sha512:abcd").is_err());
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(Digest::from_str(&upper).is_err());
    }

    #[test]
    fn verifying_reader_fails_on_wrong_content() {
        let mut r = VerifyingReader::new(&b"abc"[..], Digest::of(b"abd"), Some(3), "blob".into());
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("content digest"), "{err}");
    }

    #[test]
    fn verifying_reader_fails_at_the_last_declared_byte_without_waiting_for_eof() {
        // An HTTP client sending a body of known length stops reading there.
        let mut r = VerifyingReader::new(&b"abc"[..], Digest::of(b"abd"), Some(3), "blob".into());
        let mut buf = [0u8; 3];
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let mut ok = VerifyingReader::new(&b"abc"[..], Digest::of(b"abc"), Some(3), "blob".into());
        assert_eq!(ok.read(&mut buf).unwrap(), 3);
    }

    #[test]
    fn verifying_reader_fails_on_wrong_size() {
        let mut r = VerifyingReader::new(&b"abc"[..], Digest::of(b"abc"), Some(4), "blob".into());
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
    }
}
