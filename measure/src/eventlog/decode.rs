//! Typed decoding of event data by event type (TCG PC Client PFP 1.06 section 10.4).
//!
//! Decoding never changes what is replayed: the digests are what the TPM extended. It gives
//! people and policy a typed view of the data, and a payload that does not decode is reported
//! with a [`DecodeError`] while its bytes stay in the event.

use super::noaction::{Sp800155Event, SpecIdEvent, StartupLocality};
use super::types::EventType;
use crate::codec::CodecError;
use serde::Serialize;
use thiserror::Error;

/// The decoded data of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    SpecId(SpecIdEvent),
    StartupLocality(StartupLocality),
    Sp800155(Sp800155Event),
    /// An event type this decoder does not interpret (flagged; raw bytes are in the event).
    Unknown,
}

/// Why an event's data did not decode as its type requires.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    SpecId(#[from] super::noaction::SpecIdError),
}

/// Decodes `data` of an event of `event_type` extended into `pcr`. `base` is the data's
/// absolute offset in the log, for error messages.
pub fn decode(
    event_type: EventType,
    _pcr: u32,
    data: &[u8],
    base: usize,
) -> Result<EventData, DecodeError> {
    use super::noaction as na;
    Ok(match event_type {
        EventType::EV_NO_ACTION if data.starts_with(na::SPEC_ID_EVENT03) => {
            EventData::SpecId(SpecIdEvent::parse(data, base)?)
        }
        EventType::EV_NO_ACTION if data.starts_with(na::STARTUP_LOCALITY) => {
            EventData::StartupLocality(StartupLocality::parse(data, base)?)
        }
        EventType::EV_NO_ACTION
            if data.starts_with(na::SP800_155_EVENT) || data.starts_with(na::SP800_155_EVENT3) =>
        {
            EventData::Sp800155(Sp800155Event::parse(data, base)?)
        }
        _ => EventData::Unknown,
    })
}
