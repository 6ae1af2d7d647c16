//! TCG PC Client firmware event logs (TCG PC Client Platform Firmware Profile 1.06, section 10):
//! framing, typed decoding of event data, and replay into PCR banks.
//!
//! Two encodings exist:
//! - **SHA-1 legacy** (PFP section 10.2.1, `TCG_PCClientPCREvent`): every event carries one SHA-1
//!   digest. TPM 1.2 logs and some TPM 2.0 firmware use it.
//! - **Crypto-agile** (PFP section 10.2.2, `TCG_PCR_EVENT2`): the first event is a legacy-format
//!   `EV_NO_ACTION` carrying the `Spec ID Event03` header, which lists the algorithms and digest
//!   sizes every later event's `TPML_DIGEST_VALUES` uses.
//!
//! Parsing is strict and bounded: every length is checked against the remaining input before it
//! is used, digest sizes come only from the Spec ID header, and an event digest whose algorithm
//! the header does not list is an error, not a skipped field. A parsed [`EventLog`] is
//! **unverified**: nothing in it is trustworthy until [`replay`] has reproduced PCR values that
//! a TPM quoted.

pub mod decode;
pub mod noaction;
pub mod replay;
pub mod types;

use crate::alg::HashAlg;
use crate::codec::{CodecError, Reader};
pub use decode::{DecodeError, EventData};
pub use noaction::{SpecIdError, SpecIdEvent};
use serde::Serialize;
use thiserror::Error;
pub use types::EventType;

/// Largest event data Warrant accepts, 16 MiB. Real events are at most a few hundred KiB (a db
/// with many certificates); the cap bounds memory for a hostile log whose length field still
/// fits inside a huge input.
pub const MAX_EVENT_DATA: usize = 16 << 20;

/// Which encoding a log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LogFormat {
    #[serde(rename = "sha1-legacy")]
    Sha1Legacy,
    #[serde(rename = "crypto-agile")]
    CryptoAgile,
}

impl LogFormat {
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Sha1Legacy => "sha1-legacy",
            LogFormat::CryptoAgile => "crypto-agile",
        }
    }
}

/// One digest of an event: the algorithm and the bytes the firmware extended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDigest {
    /// Raw `TPM_ALG_ID` (kept even for algorithms Warrant cannot compute).
    pub algorithm_id: u16,
    /// The algorithm, when Warrant can compute it.
    pub algorithm: Option<HashAlg>,
    #[serde(serialize_with = "crate::serde_hex")]
    pub digest: Vec<u8>,
}

/// One event of the log, as recorded: nothing here is trusted until replayed against a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Position in the log, counting the header event as 0 (as tpm2-tools' `EventNum` does).
    pub number: usize,
    /// Byte offset of the event in the log.
    pub offset: usize,
    pub pcr: u32,
    pub event_type: EventType,
    pub digests: Vec<EventDigest>,
    /// The event data, verbatim.
    #[serde(serialize_with = "crate::serde_hex")]
    pub data: Vec<u8>,
    /// Absolute offset of the event data in the log.
    #[serde(skip)]
    pub data_offset: usize,
}

impl Event {
    /// The digest this event recorded for `alg`, if any.
    pub fn digest(&self, alg: HashAlg) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|d| d.algorithm == Some(alg))
            .map(|d| d.digest.as_slice())
    }

    /// The event data decoded according to its type. Never fails the log: a payload that does
    /// not decode is reported as [`DecodeError`] and the raw bytes stay in [`Event::data`].
    pub fn decode(&self) -> Result<EventData, DecodeError> {
        decode::decode(self.event_type, self.pcr, &self.data, self.data_offset)
    }
}

/// An event log as parsed: **unverified**.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLog {
    pub format: LogFormat,
    /// The crypto-agile header (absent in SHA-1 legacy logs).
    pub spec_id: Option<SpecIdEvent>,
    /// Every event after the header, in log order. In a crypto-agile log the header itself is
    /// not in this list (it is `spec_id`); event numbers still count it.
    pub events: Vec<Event>,
    /// Bytes of `0xff` (or `0x00`) padding found after the last event and ignored.
    pub padding: usize,
    /// Irregularities the parser tolerated, each named and reported.
    pub warnings: Vec<LogWarning>,
}

/// An irregularity in a log's framing that the parser accepts, and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LogWarning {
    /// The Spec ID header's `eventSize` is smaller than the structure it holds (its vendor info
    /// runs past it). The structure's own length is used, as tpm2-tools does; the header is
    /// never extended into a PCR, so replay is unaffected.
    SpecIdSizeMismatch {
        offset: usize,
        declared: u32,
        actual: usize,
    },
    /// Padding after the last event (a fixed-size firmware buffer), ignored.
    TrailingPadding { offset: usize, bytes: usize },
}

/// Why a byte string is not an event log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    SpecId(#[from] SpecIdError),
    #[error("event {number} at offset {offset}: digest algorithm {algorithm_id:#06x} is not listed in the Spec ID header")]
    UnknownAlgorithm {
        number: usize,
        offset: usize,
        algorithm_id: u16,
    },
    #[error("event {number} at offset {offset}: digest count {count} exceeds the {declared} algorithms of the Spec ID header")]
    TooManyDigests {
        number: usize,
        offset: usize,
        count: u32,
        declared: usize,
    },
    #[error("event {number} at offset {offset}: algorithm {algorithm_id:#06x} appears twice")]
    DuplicateDigest {
        number: usize,
        offset: usize,
        algorithm_id: u16,
    },
    #[error(
        "event {number} at offset {offset}: {size} bytes of event data exceed the {max}-byte limit"
    )]
    EventTooLarge {
        number: usize,
        offset: usize,
        size: u32,
        max: usize,
    },
    #[error("the Spec ID header at offset {offset} has a non-zero digest")]
    SpecIdDigestNotZero { offset: usize },
    #[error("event {number} at offset {offset}: a second Spec ID header")]
    SecondSpecId { number: usize, offset: usize },
}

impl EventLog {
    /// Parses a firmware event log (the bytes of `binary_bios_measurements`). The format is
    /// detected from the first event. An empty input is an empty SHA-1 legacy log.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let mut log = EventLog {
            format: LogFormat::Sha1Legacy,
            spec_id: None,
            events: Vec::new(),
            padding: 0,
            warnings: Vec::new(),
        };
        if r.is_empty() {
            return Ok(log);
        }
        if let Some((spec, used, declared)) = spec_id_header(bytes)? {
            // Skip the 32-byte legacy header and the structure, however long it says it is.
            r.take(SPEC_ID_DATA_OFFSET + used, "Spec ID event")?;
            let declared_len = usize::try_from(declared).unwrap_or(usize::MAX);
            if declared_len > used {
                // Bytes inside the header after the structure: not a header we understand.
                return Err(CodecError::Trailing {
                    offset: SPEC_ID_DATA_OFFSET + used,
                    what: "Spec ID event",
                    count: declared_len - used,
                }
                .into());
            }
            if declared_len < used {
                log.warnings.push(LogWarning::SpecIdSizeMismatch {
                    offset: 0,
                    declared,
                    actual: used,
                });
            }
            log.format = LogFormat::CryptoAgile;
            log.spec_id = Some(spec);
        } else {
            log.events.push(parse_legacy_event(&mut r, 0)?);
        }
        let mut number = 1;
        while !r.is_empty() {
            if is_padding(r.peek_rest()) {
                log.padding = r.remaining();
                log.warnings.push(LogWarning::TrailingPadding {
                    offset: r.offset(),
                    bytes: r.remaining(),
                });
                break;
            }
            let event = match &log.spec_id {
                Some(spec) => parse_agile_event(&mut r, number, spec)?,
                None => parse_legacy_event(&mut r, number)?,
            };
            if event.event_type == EventType::EV_NO_ACTION
                && event.data.starts_with(noaction::SPEC_ID_EVENT03)
            {
                return Err(ParseError::SecondSpecId {
                    number,
                    offset: event.offset,
                });
            }
            log.events.push(event);
            number += 1;
        }
        Ok(log)
    }
}

/// Offset of the event data in a legacy-format event (PCR, type, SHA-1 digest, size).
const SPEC_ID_DATA_OFFSET: usize = 4 + 4 + 20 + 4;

/// Recognises a crypto-agile header: a first event to PCR 0, of type `EV_NO_ACTION`, with a zero
/// digest, whose data starts with `Spec ID Event03`. Returns the parsed header, the length of the
/// structure and the `eventSize` the header declared.
fn spec_id_header(bytes: &[u8]) -> Result<Option<(SpecIdEvent, usize, u32)>, ParseError> {
    let mut r = Reader::new(bytes);
    let pcr = r.u32_le("PCR index")?;
    let event_type = EventType::from_u32(r.u32_le("event type")?);
    let digest = r.take(20, "SHA-1 digest")?;
    let declared = r.u32_le("event data size")?;
    if pcr != 0
        || event_type != EventType::EV_NO_ACTION
        || !r.peek_rest().starts_with(noaction::SPEC_ID_EVENT03)
    {
        return Ok(None);
    }
    if digest.iter().any(|b| *b != 0) {
        // PFP 10.4.5.1: the header's digest is all zeros. Anything else is not a header we trust.
        return Err(ParseError::SpecIdDigestNotZero { offset: 8 });
    }
    let (spec, used) = SpecIdEvent::parse_prefix(r.peek_rest(), SPEC_ID_DATA_OFFSET)?;
    Ok(Some((spec, used, declared)))
}

/// Trailing padding some firmware and tools leave after the last event: the sysfs file of some
/// platforms is a fixed-size buffer filled with `0xff`, others with zeros. A real event cannot
/// start with PCR index `0xffffffff`, and one of all-zero header and data would be an empty
/// `EV_PREBOOT_CERT` to PCR 0 with a zero digest, which no firmware logs.
fn is_padding(rest: &[u8]) -> bool {
    !rest.is_empty() && (rest.iter().all(|b| *b == 0xff) || rest.iter().all(|b| *b == 0))
}

fn event_data<'a>(
    r: &mut Reader<'a>,
    number: usize,
    offset: usize,
) -> Result<&'a [u8], ParseError> {
    let size = r.u32_le("event data size")?;
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if len > MAX_EVENT_DATA {
        return Err(ParseError::EventTooLarge {
            number,
            offset,
            size,
            max: MAX_EVENT_DATA,
        });
    }
    Ok(r.take(len, "event data")?)
}

fn parse_legacy_event(r: &mut Reader<'_>, number: usize) -> Result<Event, ParseError> {
    let offset = r.offset();
    let pcr = r.u32_le("PCR index")?;
    let event_type = EventType::from_u32(r.u32_le("event type")?);
    let digest = r.take(20, "SHA-1 digest")?.to_vec();
    let data_offset = r.offset() + 4;
    let data = event_data(r, number, offset)?.to_vec();
    Ok(Event {
        number,
        offset,
        pcr,
        event_type,
        digests: vec![EventDigest {
            algorithm_id: HashAlg::Sha1.tpm_alg_id(),
            algorithm: Some(HashAlg::Sha1),
            digest,
        }],
        data,
        data_offset,
    })
}

fn parse_agile_event(
    r: &mut Reader<'_>,
    number: usize,
    spec: &SpecIdEvent,
) -> Result<Event, ParseError> {
    let offset = r.offset();
    let pcr = r.u32_le("PCR index")?;
    let event_type = EventType::from_u32(r.u32_le("event type")?);
    let count = r.u32_le("digest count")?;
    let declared = spec.algorithms.len();
    if usize::try_from(count).map_or(true, |c| c > declared) {
        return Err(ParseError::TooManyDigests {
            number,
            offset,
            count,
            declared,
        });
    }
    let mut digests: Vec<EventDigest> = Vec::with_capacity(declared);
    for _ in 0..count {
        let algorithm_id = r.u16_le("digest algorithm")?;
        let size = spec
            .digest_size(algorithm_id)
            .ok_or(ParseError::UnknownAlgorithm {
                number,
                offset,
                algorithm_id,
            })?;
        if digests.iter().any(|d| d.algorithm_id == algorithm_id) {
            return Err(ParseError::DuplicateDigest {
                number,
                offset,
                algorithm_id,
            });
        }
        let digest = r.take(size, "digest")?.to_vec();
        digests.push(EventDigest {
            algorithm_id,
            algorithm: HashAlg::from_tpm_alg_id(algorithm_id),
            digest,
        });
    }
    let data_offset = r.offset() + 4;
    let data = event_data(r, number, offset)?.to_vec();
    Ok(Event {
        number,
        offset,
        pcr,
        event_type,
        digests,
        data,
        data_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crypto-agile header for SHA-1 and SHA-256.
    fn header() -> Vec<u8> {
        let mut spec = Vec::new();
        spec.extend_from_slice(noaction::SPEC_ID_EVENT03);
        spec.extend_from_slice(&0u32.to_le_bytes()); // platform class
        spec.extend_from_slice(&[0, 2, 0, 2]); // minor, major, errata, uintn
        spec.extend_from_slice(&2u32.to_le_bytes());
        spec.extend_from_slice(&[0x04, 0, 20, 0, 0x0b, 0, 32, 0]);
        spec.push(0); // vendor info size
        let mut out = Vec::new();
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&[0; 20]);
        out.extend_from_slice(&(spec.len() as u32).to_le_bytes());
        out.extend_from_slice(&spec);
        out
    }

    fn agile_event(pcr: u32, ty: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&pcr.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(digests.len() as u32).to_le_bytes());
        for (alg, d) in digests {
            out.extend_from_slice(&alg.to_le_bytes());
            out.extend_from_slice(d);
        }
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn both(data: &[u8]) -> Vec<(u16, Vec<u8>)> {
        vec![
            (4, HashAlg::Sha1.hash(data)),
            (0xb, HashAlg::Sha256.hash(data)),
        ]
    }

    #[test]
    fn well_formed_log_parses() {
        let mut log = header();
        log.extend(agile_event(0, 4, &both(&[0; 4]), &[0; 4]));
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.format, LogFormat::CryptoAgile);
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].number, 1);
        assert_eq!(parsed.events[0].event_type, EventType::EV_SEPARATOR);
        assert_eq!(parsed.events[0].data_offset, log.len() - 4);
    }

    #[test]
    fn empty_input_is_an_empty_log() {
        let log = EventLog::parse(&[]).unwrap();
        assert!(log.events.is_empty() && log.spec_id.is_none());
    }

    #[test]
    fn padding_after_the_last_event_is_reported() {
        for fill in [0xffu8, 0x00] {
            let mut log = header();
            log.extend(agile_event(0, 4, &both(&[0; 4]), &[0; 4]));
            let end = log.len();
            log.extend(std::iter::repeat_n(fill, 37));
            let parsed = EventLog::parse(&log).unwrap();
            assert_eq!(parsed.padding, 37);
            assert_eq!(
                parsed.warnings,
                vec![LogWarning::TrailingPadding {
                    offset: end,
                    bytes: 37
                }]
            );
        }
    }

    #[test]
    fn every_prefix_of_a_log_is_ok_or_a_typed_error() {
        let mut log = header();
        log.extend(agile_event(0, 4, &both(&[0; 4]), &[0; 4]));
        log.extend(agile_event(7, 0x8000_0007, &both(b"x"), b"x"));
        for n in 0..log.len() {
            match EventLog::parse(&log[..n]) {
                Ok(l) => assert!(n == 0 || l.events.len() < 2, "prefix {n}"),
                Err(ParseError::Codec(CodecError::Truncated { offset, .. }))
                | Err(ParseError::SpecId(SpecIdError::Codec(CodecError::Truncated {
                    offset,
                    ..
                }))) => {
                    assert!(offset <= n)
                }
                Err(e) => panic!("prefix {n}: unexpected {e}"),
            }
        }
    }

    #[test]
    fn unknown_algorithm_is_an_error_with_offset() {
        let mut log = header();
        let at = log.len();
        log.extend(agile_event(0, 4, &[(0x0010, vec![0; 20])], &[0; 4]));
        assert_eq!(
            EventLog::parse(&log),
            Err(ParseError::UnknownAlgorithm {
                number: 1,
                offset: at,
                algorithm_id: 0x0010
            })
        );
    }

    #[test]
    fn digest_count_and_duplicates_are_bounded() {
        let mut log = header();
        let mut ev = agile_event(0, 4, &both(&[0; 4]), &[0; 4]);
        ev[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        log.extend(ev);
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::TooManyDigests {
                count: u32::MAX,
                ..
            })
        ));

        let mut log = header();
        log.extend(agile_event(
            0,
            4,
            &[(4, vec![0; 20]), (4, vec![0; 20])],
            &[0; 4],
        ));
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::DuplicateDigest {
                algorithm_id: 4,
                ..
            })
        ));
    }

    #[test]
    fn oversized_event_data_is_rejected_before_allocation() {
        let mut log = header();
        let mut ev = agile_event(0, 4, &both(&[0; 4]), &[0; 4]);
        let size_at = ev.len() - 8;
        ev[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        log.extend(ev);
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::EventTooLarge { size: u32::MAX, .. })
        ));
        // Within the cap but beyond the input: truncated, with the offset of the data.
        let mut log = header();
        let mut ev = agile_event(0, 4, &both(&[0; 4]), &[0; 4]);
        ev[size_at..size_at + 4].copy_from_slice(&1000u32.to_le_bytes());
        log.extend(ev);
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::Codec(CodecError::Truncated {
                needed: 1000,
                remaining: 4,
                ..
            }))
        ));
    }

    #[test]
    fn header_must_be_well_formed() {
        // A second header later in the log.
        let mut log = header();
        let h = header();
        log.extend(agile_event(0, 3, &both(&h[32..]), &h[32..]));
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::SecondSpecId { number: 1, .. })
        ));
        // A header with a non-zero digest.
        let mut log = header();
        log[8] = 1;
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::SpecIdDigestNotZero { .. })
        ));
        // A header whose eventSize is larger than its structure.
        let mut log = header();
        let size = u32::from_le_bytes(log[28..32].try_into().unwrap());
        log[28..32].copy_from_slice(&(size + 2).to_le_bytes());
        log.extend_from_slice(&[0, 0]);
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::Codec(CodecError::Trailing { count: 2, .. }))
        ));
        // SHA-256 declared with a 20-byte digest.
        let mut log = header();
        log[32 + 28 + 6] = 20;
        assert!(matches!(
            EventLog::parse(&log),
            Err(ParseError::SpecId(SpecIdError::WrongDigestSize {
                algorithm: HashAlg::Sha256,
                ..
            }))
        ));
    }

    #[test]
    fn unknown_event_types_are_kept() {
        let mut log = header();
        log.extend(agile_event(3, 0x7777, &both(b"?"), b"?"));
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.events[0].event_type, EventType::Unknown(0x7777));
        assert_eq!(parsed.events[0].data, b"?");
    }

    #[test]
    fn startup_locality_and_hcrtm_set_pcr0_start() {
        use super::replay::{replay, reset_value};
        let zero = || vec![(4u16, vec![0u8; 20]), (0xb, vec![0u8; 32])];
        let locality = |l: u8| {
            let mut d = noaction::STARTUP_LOCALITY.to_vec();
            d.push(l);
            agile_event(0, 3, &zero(), &d)
        };
        let hcrtm = agile_event(0, 0x8000_0010, &both(b"HCRTM"), b"HCRTM");
        let crtm = agile_event(0, 8, &both(b"v1"), b"v1");
        let expect = |start: u8, digests: &[&[u8]]| {
            let mut pcr = reset_value(HashAlg::Sha256, 0, start);
            for d in digests {
                HashAlg::Sha256.extend(&mut pcr, &HashAlg::Sha256.hash(d));
            }
            pcr
        };
        let run = |parts: &[&Vec<u8>]| {
            let mut log = header();
            for p in parts {
                log.extend_from_slice(p);
            }
            let parsed = EventLog::parse(&log).unwrap();
            let r = replay(&parsed);
            (
                r.startup_locality,
                r.banks.get(HashAlg::Sha256, 0).unwrap().to_vec(),
                r.warnings,
            )
        };
        // Locality 3 from TPM2_Startup.
        let (l, v, w) = run(&[&locality(3), &crtm]);
        assert_eq!((l, v), (3, expect(3, &[b"v1"])));
        assert!(w.is_empty());
        // H-CRTM: locality 4 and the H-CRTM digest, then the rest.
        let (l, v, _) = run(&[&locality(4), &hcrtm, &crtm]);
        assert_eq!((l, v), (4, expect(4, &[b"HCRTM", b"v1"])));
        // An H-CRTM event without a StartupLocality event still means locality 4.
        let (l, v, _) = run(&[&hcrtm, &crtm]);
        assert_eq!((l, v), (4, expect(4, &[b"HCRTM", b"v1"])));
        // A StartupLocality event after PCR 0 was extended is ignored, and reported.
        let (l, v, w) = run(&[&crtm, &locality(3)]);
        assert_eq!((l, v), (0, expect(0, &[b"v1"])));
        assert!(matches!(
            w.as_slice(),
            [replay::ReplayWarning::IgnoredStartupLocality { event: 2 }]
        ));
    }
}
