//! Helpers shared by Warrant's end-to-end tests: where the project's test data lives and how to
//! run the built binaries.
#![forbid(unsafe_code)]
