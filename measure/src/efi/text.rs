//! Bounded string decoding for UEFI structures: UTF-16LE (`CHAR16`, UCS-2 in the spec) and
//! ASCII/UTF-8 (`CHAR8`), plus the heuristic [`Text::detect`] used for event data that *should*
//! be a string but that firmware fills freely.
//!
//! Policy for invalid input: strings that a structure defines as `CHAR16` (variable names, load
//! option descriptions, partition names, file path nodes) are decoded **strictly**: an unpaired
//! surrogate is [`EfiError::BadUtf16`], never replaced. Free-form data that is only *usually* a
//! string ([`Text::detect`]) falls back to hex instead of failing, so nothing is lost or guessed.

use super::EfiError;
use crate::codec::Reader;
use serde::Serialize;

/// Decodes `bytes` (an even number of them) as UTF-16LE, strictly. `offset` is the absolute
/// offset of `bytes[0]`, for the error.
pub fn utf16le(bytes: &[u8], offset: usize, what: &'static str) -> Result<String, EfiError> {
    if bytes.len() % 2 == 1 {
        return Err(EfiError::BadUtf16 {
            offset: offset + bytes.len() - 1,
            what,
        });
    }
    let units: Vec<u16> = le_units(bytes).collect();
    let mut out = String::with_capacity(units.len());
    let mut i = 0;
    while let Some(&u) = units.get(i) {
        let (c, used) = match u {
            0xD800..=0xDBFF => match units.get(i + 1) {
                Some(&lo @ 0xDC00..=0xDFFF) => {
                    let v = 0x10000 + ((u32::from(u) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                    (char::from_u32(v), 2)
                }
                _ => (None, 1),
            },
            _ => (char::from_u32(u32::from(u)), 1),
        };
        match c {
            Some(c) => out.push(c),
            None => {
                return Err(EfiError::BadUtf16 {
                    offset: offset + i * 2,
                    what,
                })
            }
        }
        i += used;
    }
    Ok(out)
}

/// The little-endian `u16` units of `bytes` (a trailing odd byte is ignored).
pub fn le_units(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes.chunks_exact(2).map(|c| match c {
        [a, b] => u16::from_le_bytes([*a, *b]),
        _ => 0,
    })
}

/// Reads `count` UTF-16 code units (the length is checked against the input before anything is
/// allocated) and decodes them strictly; one trailing NUL, if present, is dropped.
pub fn read_utf16_units(
    r: &mut Reader<'_>,
    count: u64,
    what: &'static str,
) -> Result<String, EfiError> {
    let offset = r.offset();
    let len = count
        .checked_mul(2)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(EfiError::CountTooLarge {
            offset,
            what,
            count,
            remaining: r.remaining(),
        })?;
    let bytes = r.take(len, what)?;
    let mut s = utf16le(bytes, offset, what)?;
    if s.ends_with('\0') {
        s.pop();
    }
    Ok(s)
}

/// Reads a NUL-terminated UTF-16LE string (terminator consumed, not returned).
pub fn read_utf16_cstr(r: &mut Reader<'_>, what: &'static str) -> Result<String, EfiError> {
    let offset = r.offset();
    let rest = r.peek_rest();
    let units = rest.len() / 2;
    let end = (0..units)
        .find(|&i| rest.get(2 * i..2 * i + 2) == Some(&[0, 0][..]))
        .ok_or(EfiError::Unterminated { offset, what })?;
    let bytes = r.take(end * 2, what)?;
    r.take(2, what)?;
    utf16le(bytes, offset, what)
}

/// The first NUL-terminated UTF-16 string in `bytes` (a fixed-size field such as a partition
/// name): everything up to the first NUL unit, or the whole field if there is none.
pub fn utf16_fixed(bytes: &[u8], offset: usize, what: &'static str) -> Result<String, EfiError> {
    let units = bytes.len() / 2;
    let end = (0..units)
        .find(|&i| bytes.get(2 * i..2 * i + 2) == Some(&[0, 0][..]))
        .unwrap_or(units);
    utf16le(bytes.get(..end * 2).unwrap_or_default(), offset, what)
}

/// Reads a NUL-terminated ASCII/UTF-8 string (terminator consumed, not returned).
pub fn read_cstr(r: &mut Reader<'_>, what: &'static str) -> Result<String, EfiError> {
    let offset = r.offset();
    let end = r
        .peek_rest()
        .iter()
        .position(|b| *b == 0)
        .ok_or(EfiError::Unterminated { offset, what })?;
    let bytes = r.take(end, what)?;
    r.take(1, what)?;
    utf8(bytes, offset, what)
}

/// `bytes` as UTF-8, strictly.
pub fn utf8(bytes: &[u8], offset: usize, what: &'static str) -> Result<String, EfiError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| EfiError::BadUtf8 {
            offset: offset + e.valid_up_to(),
            what,
        })
}

/// How [`Text::text`] encodes the original bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// ASCII or UTF-8.
    Utf8,
    /// UTF-16LE (UCS-2).
    Utf16le,
    /// Not a string: `text` is the lowercase hex of the bytes.
    Hex,
}

/// Event data that is usually a string. `text` never contains the trailing NUL terminator(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Text {
    pub encoding: TextEncoding,
    pub text: String,
}

impl Text {
    /// The bytes as a string if they plainly are one, else hex. UTF-8 is tried first; with
    /// `prefer_utf16` (for fields the spec defines as UCS-2) UTF-16LE is tried first.
    ///
    /// A candidate is accepted only if, after trailing NULs are removed, it has no control
    /// characters other than tab, CR and LF. UTF-16 is further required to be NUL-terminated or
    /// pure ASCII, so that arbitrary binary of even length (a GUID, say) is not shown as CJK;
    /// a UTF-16 string followed by a single NUL byte (odd length) is accepted.
    pub fn detect(bytes: &[u8], prefer_utf16: bool) -> Text {
        let utf16 = || {
            as_utf16(bytes).map(|t| Text {
                encoding: TextEncoding::Utf16le,
                text: t,
            })
        };
        let utf8 = || {
            as_utf8(bytes).map(|t| Text {
                encoding: TextEncoding::Utf8,
                text: t,
            })
        };
        let found = if prefer_utf16 {
            utf16().or_else(utf8)
        } else {
            utf8().or_else(utf16)
        };
        found.unwrap_or_else(|| Text::hex(bytes))
    }

    /// The bytes as UTF-8 if they are printable text, else hex (no UTF-16 attempt).
    pub fn detect_utf8(bytes: &[u8]) -> Text {
        as_utf8(bytes)
            .map(|t| Text {
                encoding: TextEncoding::Utf8,
                text: t,
            })
            .unwrap_or_else(|| Text::hex(bytes))
    }

    /// Hex of `bytes`.
    pub fn hex(bytes: &[u8]) -> Text {
        Text {
            encoding: TextEncoding::Hex,
            text: hex::encode(bytes),
        }
    }

    /// True when the bytes were recognised as a string.
    pub fn is_string(&self) -> bool {
        self.encoding != TextEncoding::Hex
    }
}

fn printable(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

fn as_utf8(bytes: &[u8]) -> Option<String> {
    let trimmed = trim_end(bytes, 1);
    let s = std::str::from_utf8(trimmed).ok()?;
    printable(s).then(|| s.to_owned())
}

fn as_utf16(bytes: &[u8]) -> Option<String> {
    // An odd length is accepted only for a one-byte NUL after the string (the systemd-boot of
    // arch-linux-workstation.bin ends its UTF-16 command line with a C `char` NUL).
    let bytes = match bytes.len() % 2 {
        0 => bytes,
        _ => bytes.strip_suffix(&[0])?,
    };
    if bytes.is_empty() {
        return None;
    }
    let trimmed = trim_end(bytes, 2);
    let terminated = trimmed.len() < bytes.len();
    let s = utf16le(trimmed, 0, "text").ok()?;
    (printable(&s) && (terminated || s.is_ascii())).then_some(s)
}

/// `bytes` without trailing NUL units of `unit` bytes.
fn trim_end(bytes: &[u8], unit: usize) -> &[u8] {
    let mut end = bytes.len();
    while end >= unit
        && bytes
            .get(end - unit..end)
            .is_some_and(|u| u.iter().all(|b| *b == 0))
    {
        end -= unit;
    }
    bytes.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16s(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn strict_utf16() {
        assert_eq!(utf16le(&u16s("db"), 0, "n").unwrap(), "db");
        // Unpaired high surrogate at unit 1.
        let bad = [0x41, 0, 0x00, 0xD8, 0x41, 0];
        assert_eq!(
            utf16le(&bad, 100, "n"),
            Err(EfiError::BadUtf16 {
                offset: 102,
                what: "n"
            })
        );
        // Lone low surrogate.
        assert!(matches!(
            utf16le(&[0x00, 0xDC], 0, "n"),
            Err(EfiError::BadUtf16 { offset: 0, .. })
        ));
        // Odd length.
        assert!(matches!(
            utf16le(&[0x41, 0, 0x42], 0, "n"),
            Err(EfiError::BadUtf16 { offset: 2, .. })
        ));
        // A valid pair.
        assert_eq!(utf16le(&u16s("\u{1F600}"), 0, "n").unwrap(), "\u{1F600}");
    }

    #[test]
    fn counted_and_terminated_reads() {
        let mut b = u16s("Boot0001");
        b.extend([0, 0, 9]);
        let mut r = Reader::new(&b);
        assert_eq!(read_utf16_units(&mut r, 8, "name").unwrap(), "Boot0001");
        let mut r = Reader::new(&b);
        assert_eq!(read_utf16_cstr(&mut r, "d").unwrap(), "Boot0001");
        assert_eq!(r.remaining(), 1);
        // Huge counts are refused before allocation.
        let mut r = Reader::new(&b);
        assert!(matches!(
            read_utf16_units(&mut r, u64::MAX, "name"),
            Err(EfiError::CountTooLarge { .. })
        ));
        let mut r = Reader::new(&b);
        assert!(matches!(
            read_utf16_units(&mut r, 100, "name"),
            Err(EfiError::Codec(_))
        ));
        // No terminator.
        let mut r = Reader::new(&[0x41, 0, 0x42]);
        assert!(matches!(
            read_utf16_cstr(&mut r, "d"),
            Err(EfiError::Unterminated { offset: 0, .. })
        ));
        let mut r = Reader::new(b"abc");
        assert!(matches!(
            read_cstr(&mut r, "s"),
            Err(EfiError::Unterminated { .. })
        ));
        let mut r = Reader::new(b"abc\0d");
        assert_eq!(read_cstr(&mut r, "s").unwrap(), "abc");
        assert_eq!(utf16_fixed(&u16s("EFI\0\0junk"), 0, "p").unwrap(), "EFI");
    }

    #[test]
    fn detection() {
        let t = Text::detect(b"grub_cmd: ls\0", false);
        assert_eq!(
            (t.encoding, t.text.as_str()),
            (TextEncoding::Utf8, "grub_cmd: ls")
        );
        let mut b = u16s("initrd=\\x");
        b.extend([0, 0]);
        let t = Text::detect(&b, false);
        assert_eq!(
            (t.encoding, t.text.as_str()),
            (TextEncoding::Utf16le, "initrd=\\x")
        );
        // A GUID is neither.
        let g = hex::decode("1efb6b540c1d5540a4ad4ef4bf17b83a").unwrap();
        assert_eq!(Text::detect(&g, true).encoding, TextEncoding::Hex);
        // UCS-2 "" (just a terminator) when UTF-16 is preferred.
        let t = Text::detect(&[0, 0], true);
        assert_eq!((t.encoding, t.text.as_str()), (TextEncoding::Utf16le, ""));
        assert_eq!(
            Text::detect(&[0xff, 0xfe, 0x01], false).encoding,
            TextEncoding::Hex
        );
        // A UTF-16 string ended by a one-byte NUL (odd length).
        let mut odd = u16s("ro quiet");
        odd.push(0);
        let t = Text::detect(&odd, false);
        assert_eq!(
            (t.encoding, t.text.as_str()),
            (TextEncoding::Utf16le, "ro quiet")
        );
        // ... but not any other odd byte.
        let mut odd = u16s("ro");
        odd.push(1);
        assert_eq!(Text::detect(&odd, false).encoding, TextEncoding::Hex);
        assert_eq!(Text::detect(&[], false).text, "");
    }
}
