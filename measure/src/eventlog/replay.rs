//! Replay of an event log into PCR banks.
