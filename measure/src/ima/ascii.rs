//! The ASCII measurement list (`ima_ascii_measurements_show` in `ima_fs.c`): one line per entry,
//!
//! ```text
//! "%2d " pcr, hex(template hash), ' ', template name, { ' ', field printed }*, '\n'
//! ```
//!
//! A PCR below 10 is printed with a leading space. Each field is preceded by exactly one space,
//! and an empty field prints nothing, so empty trailing fields leave trailing spaces. Lines are
//! split on `\n` only; an empty line in the middle is an error, not something to skip.

use super::binary::template_name;
use super::template::decode_ascii;
use super::{AsciiOptions, ImaEntry, ImaError, ImaList, ListFormat, Location, MAX_LINE_LEN};
use crate::alg::HashAlg;

pub(super) fn parse(text: &[u8], options: AsciiOptions) -> Result<ImaList, ImaError> {
    let mut bank = options.template_hash_algorithm;
    let mut entries = Vec::new();
    // Every line the kernel prints ends in '\n'; accept a last line without one.
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if !text.is_empty() {
        for (index, line) in body.split(|b| *b == b'\n').enumerate() {
            let at = Location::Line(index + 1);
            if line.len() > MAX_LINE_LEN {
                return Err(ImaError::LineTooLong {
                    at,
                    len: line.len(),
                    max: MAX_LINE_LEN,
                });
            }
            entries.push(parse_line(line, index, at, &mut bank, options)?);
        }
    }
    Ok(ImaList {
        format: ListFormat::Ascii,
        byte_order: options.byte_order,
        template_hash_algorithm: bank.unwrap_or(HashAlg::Sha1),
        entries,
    })
}

/// Splits at the first space.
fn token(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|b| *b == b' ') {
        Some(i) => (s.get(..i).unwrap_or_default(), s.get(i + 1..)),
        None => (s, None),
    }
}

/// The bank whose digest has `len` bytes (32 is read as SHA-256; SM3 lists need the option).
fn bank_for_len(len: usize) -> Option<HashAlg> {
    match len {
        20 => Some(HashAlg::Sha1),
        32 => Some(HashAlg::Sha256),
        48 => Some(HashAlg::Sha384),
        64 => Some(HashAlg::Sha512),
        _ => None,
    }
}

fn parse_pcr(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn parse_line(
    line: &[u8],
    number: usize,
    at: Location,
    bank: &mut Option<HashAlg>,
    options: AsciiOptions,
) -> Result<ImaEntry, ImaError> {
    if line.is_empty() {
        return Err(ImaError::EmptyLine { at });
    }
    // "%2d ": PCRs below 10 are padded with a space.
    let start = line.iter().position(|b| *b != b' ').unwrap_or(line.len());
    let (pcr, rest) = token(line.get(start..).unwrap_or_default());
    let pcr = parse_pcr(pcr).ok_or(ImaError::Pcr { at })?;
    let rest = rest.ok_or(ImaError::MissingField {
        at,
        field: "template hash",
    })?;

    let (hash_hex, rest) = token(rest);
    let template_hash = hex::decode(hash_hex).map_err(|_| ImaError::Hex {
        at,
        field: "template hash",
    })?;
    let alg = match *bank {
        Some(alg) => alg,
        None => {
            let alg =
                bank_for_len(template_hash.len()).ok_or(ImaError::UnknownTemplateHashLength {
                    at,
                    len: template_hash.len(),
                })?;
            *bank = Some(alg);
            alg
        }
    };
    if template_hash.len() != alg.digest_len() {
        return Err(ImaError::TemplateHashLength {
            at,
            len: template_hash.len(),
            expected: alg.digest_len(),
        });
    }
    let rest = rest.ok_or(ImaError::MissingField {
        at,
        field: "template name",
    })?;

    let (name, fields) = token(rest);
    let template_name = template_name(name).ok_or(ImaError::TemplateName { at })?;
    let fields = fields.ok_or(ImaError::MissingField {
        at,
        field: "template data",
    })?;
    let violation = template_hash.iter().all(|b| *b == 0);
    let template = decode_ascii(&template_name, fields, violation, at)?;
    Ok(ImaEntry {
        number,
        location: at,
        pcr,
        template_hash,
        template_name,
        template,
        violation,
        byte_order: options.byte_order,
    })
}
