//! The binary measurement list (`ima_measurements_show` in `security/integrity/ima/ima_fs.c`):
//!
//! ```text
//! u32   pcr
//! u8    template_hash[digest size of the list's bank; 20 for binary_runtime_measurements]
//! u32   template_name_len
//! char  template_name[template_name_len]
//! -- template "ima":
//! u8    d[20]                       (IMA_SHOW_BINARY_NO_FIELD_LEN)
//! u32   n_len, char n[n_len]        (IMA_SHOW_BINARY_OLD_STRING_FMT: no NUL)
//! -- any other template:
//! u32   template_data_len
//! u8    template_data[template_data_len] = { u32 field_len, u8 field[field_len] }*
//! ```
//!
//! Every `u32` is host-endian, or little-endian under `ima_canonical_fmt`. Every read goes
//! through [`Reader`]; lengths are capped before they are used and checked against the remaining
//! input by the reader.

use super::template::{decode_binary, decode_ima_name};
use super::{
    BinaryOptions, ByteOrder, ImaEntry, ImaError, ImaList, ListFormat, Location, Template,
};
use super::{IMA_DIGEST_SIZE, IMA_EVENT_NAME_LEN_MAX, IMA_TEMPLATE_NAME};
use super::{MAX_TEMPLATE_DATA_LEN, MAX_TEMPLATE_FIELDS, MAX_TEMPLATE_NAME_LEN};
use crate::codec::{CodecError, Reader};

pub(super) fn parse(bytes: &[u8], options: BinaryOptions) -> Result<ImaList, ImaError> {
    let hash_len = options.template_hash_algorithm.digest_len();
    let byte_order = options
        .byte_order
        .unwrap_or_else(|| detect_byte_order(bytes, hash_len));
    let mut r = Reader::new(bytes);
    let mut entries = Vec::new();
    while !r.is_empty() {
        let number = entries.len();
        entries.push(parse_entry(&mut r, number, hash_len, byte_order)?);
    }
    Ok(ImaList {
        format: ListFormat::Binary,
        byte_order,
        template_hash_algorithm: options.template_hash_algorithm,
        entries,
    })
}

/// The first entry's template-name length is small (1..=255) in the list's byte order and huge
/// in the other one, so it tells the order apart. Lists too short to tell are read as
/// little-endian (and fail to parse if they are not).
fn detect_byte_order(bytes: &[u8], hash_len: usize) -> ByteOrder {
    let at = 4 + hash_len;
    let Some(field) = bytes
        .get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
    else {
        return ByteOrder::Little;
    };
    let plausible = |v: u32| (1..=MAX_TEMPLATE_NAME_LEN as u32).contains(&v);
    if !plausible(u32::from_le_bytes(field)) && plausible(u32::from_be_bytes(field)) {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    }
}

fn read_u32(r: &mut Reader<'_>, order: ByteOrder, what: &'static str) -> Result<u32, CodecError> {
    match order {
        ByteOrder::Little => r.u32_le(what),
        ByteOrder::Big => r.u32_be(what),
    }
}

fn parse_entry(
    r: &mut Reader<'_>,
    number: usize,
    hash_len: usize,
    order: ByteOrder,
) -> Result<ImaEntry, ImaError> {
    let codec = |source| ImaError::Codec { number, source };
    let entry_at = r.offset();
    let pcr = read_u32(r, order, "PCR index").map_err(codec)?;
    let template_hash = r.take(hash_len, "template hash").map_err(codec)?.to_vec();
    let violation = template_hash.iter().all(|b| *b == 0);

    let name_at = Location::Offset(r.offset());
    let name_len = read_u32(r, order, "template name length").map_err(codec)?;
    let name_len = bounded(name_len, MAX_TEMPLATE_NAME_LEN)
        .filter(|n| *n > 0)
        .ok_or(ImaError::TemplateNameLength {
            at: name_at,
            len: name_len.into(),
            max: MAX_TEMPLATE_NAME_LEN,
        })?;
    let name_bytes = r.take(name_len, "template name").map_err(codec)?;
    let template_name = template_name(name_bytes).ok_or(ImaError::TemplateName { at: name_at })?;

    let template = if template_name == IMA_TEMPLATE_NAME {
        let digest = r
            .take(IMA_DIGEST_SIZE, "ima template digest")
            .map_err(codec)?;
        let n_at = Location::Offset(r.offset());
        let n_len = read_u32(r, order, "ima template name length").map_err(codec)?;
        // Linux 3.13 wrote the 256-byte padded buffer; later kernels the bare name.
        let n_len = bounded(n_len, IMA_EVENT_NAME_LEN_MAX + 1).ok_or(ImaError::NameTooLong {
            at: n_at,
            field: "n",
            len: usize::try_from(n_len).unwrap_or(usize::MAX),
            max: IMA_EVENT_NAME_LEN_MAX,
        })?;
        let name = decode_ima_name(r.take(n_len, "ima template name").map_err(codec)?, n_at)?;
        Template::Ima {
            digest: digest.to_vec(),
            name,
        }
    } else {
        let data_at = Location::Offset(r.offset());
        let data_len = read_u32(r, order, "template data length").map_err(codec)?;
        let data_len =
            bounded(data_len, MAX_TEMPLATE_DATA_LEN).ok_or(ImaError::TemplateDataTooLarge {
                at: data_at,
                len: data_len.into(),
                max: MAX_TEMPLATE_DATA_LEN,
            })?;
        let mut data = r.sub(data_len, "template data").map_err(codec)?;
        let raw = data.peek_rest();
        let mut fields = Vec::new();
        while !data.is_empty() {
            if fields.len() == MAX_TEMPLATE_FIELDS {
                return Err(ImaError::TooManyFields {
                    at: data_at,
                    max: MAX_TEMPLATE_FIELDS,
                });
            }
            let field_at = data.offset() + 4;
            let len = read_u32(&mut data, order, "template field length").map_err(codec)?;
            // Inside data, whose length is already capped: the reader bounds the field.
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            fields.push((field_at, data.take(len, "template field").map_err(codec)?));
        }
        let template = decode_binary(&template_name, &fields, violation, data_at)?;
        // Template hashes are recomputed from the decoded fields, so that what policy reads is
        // exactly what was hashed. Decoding is lossless for everything the kernel writes; make
        // sure of it rather than assume it.
        if template.hash_input(order).as_deref() != Some(raw) {
            return Err(ImaError::NonCanonical { at: data_at });
        }
        template
    };
    Ok(ImaEntry {
        number,
        location: Location::Offset(entry_at),
        pcr,
        template_hash,
        template_name,
        template,
        violation,
        byte_order: order,
    })
}

/// `len` as a `usize` when it is at most `max`.
fn bounded(len: u32, max: usize) -> Option<usize> {
    usize::try_from(len).ok().filter(|n| *n <= max)
}

/// A template name: printable ASCII without spaces (it is a space-separated token of the ASCII
/// list, and the kernel's names and format strings are `[a-z0-9|-]`).
pub(super) fn template_name(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}
