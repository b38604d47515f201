#![no_main]
//! cargo-fuzz target: `timberline::fuzz::wal_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::wal_body(data));
