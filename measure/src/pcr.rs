//! PCR values: banks of digests indexed by PCR number.
