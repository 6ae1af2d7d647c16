//! One bounded reader for every untrusted byte string Warrant parses.
//!
//! Modelled on rustls' `msgs/codec.rs`: every length taken from the input is checked against what
//! remains *before* anything is allocated or sliced, every error carries the absolute offset at
//! which it happened, and callers that expect to consume a whole buffer call [`Reader::finish`] so
//! trailing bytes are rejected instead of silently ignored.

use thiserror::Error;

/// A failure to read a field from untrusted bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended before a field of `needed` bytes; `remaining` were left.
    #[error("truncated at offset {offset}: {what} needs {needed} bytes, {remaining} remain")]
    Truncated {
        offset: usize,
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    /// Bytes were left after a structure that must fill its buffer exactly.
    #[error("{count} trailing bytes at offset {offset} after {what}")]
    Trailing {
        offset: usize,
        what: &'static str,
        count: usize,
    },
}

/// A cursor over a byte slice that never reads past its end.
///
/// `base` is the absolute offset of `buf[0]` in the outermost input, so errors from nested readers
/// (see [`Reader::sub`]) still point at the right byte of the original file.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::at(buf, 0)
    }

    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub fn at(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte to be read.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Number of bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Takes exactly `n` bytes, or fails without consuming anything.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(CodecError::Truncated {
                offset: self.offset(),
                what,
                needed: n,
                remaining: self.remaining(),
            })?;
        let out = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    /// Takes every remaining byte.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.peek_rest();
        self.pos = self.buf.len();
        out
    }

    /// Takes `n` bytes and returns a reader over them that keeps absolute offsets.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, CodecError> {
        let base = self.offset();
        Ok(Reader::at(self.take(n, what)?, base))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16_le(&mut self, what: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn u16_be(&mut self, what: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    pub fn u32_be(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    pub fn u64_be(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    /// A 16-byte GUID in its on-disk (mixed-endian) form.
    pub fn guid(&mut self, what: &'static str) -> Result<crate::efi::Guid, CodecError> {
        Ok(crate::efi::Guid(self.array(what)?))
    }

    /// A `u32` little-endian length followed by that many bytes, with the length checked against
    /// the remaining input before anything is taken.
    pub fn u32_le_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], CodecError> {
        let len = self.u32_le(what)?;
        let len = usize::try_from(len).map_err(|_| CodecError::Truncated {
            offset: self.offset(),
            what,
            needed: usize::MAX,
            remaining: self.remaining(),
        })?;
        self.take(len, what)
    }

    /// Fails if any byte is left unread.
    pub fn finish(&self, what: &'static str) -> Result<(), CodecError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Trailing {
                offset: self.offset(),
                what,
                count: self.remaining(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_atomic() {
        let mut r = Reader::at(&[1, 0, 0, 0, 9], 100);
        assert_eq!(r.u32_le("x"), Ok(1));
        assert_eq!(r.offset(), 104);
        let err = r.u32_le("y").unwrap_err();
        assert_eq!(
            err,
            CodecError::Truncated {
                offset: 104,
                what: "y",
                needed: 4,
                remaining: 1
            }
        );
        // A failed read consumes nothing.
        assert_eq!(r.u8("z"), Ok(9));
        assert!(r.finish("all").is_ok());
    }

    #[test]
    fn huge_prefixed_length_is_rejected_before_allocation() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert!(matches!(
            r.u32_le_prefixed("blob"),
            Err(CodecError::Truncated {
                needed: 0xffff_ffff,
                remaining: 2,
                ..
            })
        ));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("a").unwrap();
        assert_eq!(
            r.finish("s"),
            Err(CodecError::Trailing {
                offset: 1,
                what: "s",
                count: 2
            })
        );
    }

    #[test]
    fn sub_readers_keep_absolute_offsets() {
        let mut r = Reader::at(&[0, 1, 2, 3, 4], 10);
        r.u8("a").unwrap();
        let mut s = r.sub(2, "s").unwrap();
        assert_eq!(s.offset(), 11);
        s.u16_le("v").unwrap();
        assert!(matches!(
            s.u8("w"),
            Err(CodecError::Truncated { offset: 13, .. })
        ));
        assert_eq!(r.offset(), 13);
    }
}
