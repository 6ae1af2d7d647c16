#![no_main]
//! The typed decoder of one event's data (`measure::eventlog::decode::decode`), on its own, so the
//! fuzzer spends its time inside the payload decoders instead of on log framing. Must never panic.
//!
//! Input: 4 bytes event type (little endian), 4 bytes PCR index (little endian), then the event
//! data. An event type that PFP 1.06 does not define is mapped onto a defined one (by its low
//! byte) unless bit 8 is set, so most inputs reach a real decoder and some still exercise
//! `EventType::Unknown`. A defined type is used as is, so seeds cut from real logs
//! (`scripts/fuzz.sh` writes `type || pcr || data` for every fixture event) keep their type.
use libfuzzer_sys::fuzz_target;
use measure::eventlog::decode::decode;
use measure::eventlog::EventType;

/// Every event type of PFP 1.06 section 10.4.1 (and the UEFI range).
const DEFINED: [u32; 39] = [
    0x00,
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x08,
    0x09,
    0x0A,
    0x0B,
    0x0C,
    0x0D,
    0x0E,
    0x0F,
    0x10,
    0x11,
    0x12,
    0x13,
    0x8000_0001,
    0x8000_0002,
    0x8000_0003,
    0x8000_0004,
    0x8000_0005,
    0x8000_0006,
    0x8000_0007,
    0x8000_0008,
    0x8000_0009,
    0x8000_000A,
    0x8000_000B,
    0x8000_000C,
    0x8000_000D,
    0x8000_0010,
    0x8000_00E0,
    0x8000_00E1,
    0x8000_00E2,
    0x8000_00E3,
    0x8000_00E4,
];

fuzz_target!(|input: &[u8]| {
    let Some((head, data)) = input.split_at_checked(8) else {
        return;
    };
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let (raw_type, pcr) = (word(0), word(4));
    let event_type = match EventType::from_u32(raw_type) {
        EventType::Unknown(_) if raw_type & 0x100 == 0 => {
            EventType::from_u32(DEFINED[usize::from(raw_type as u8) % DEFINED.len()])
        }
        t => t,
    };
    // A non-zero base offset too, so offset arithmetic in error paths is exercised.
    let base = usize::from(head[7]) << 8;
    if let Err(e) = decode(event_type, pcr, data, base) {
        let _ = e.to_string();
    }
});
