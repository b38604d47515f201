#![no_main]
//! cargo-fuzz target: `timberline::fuzz::ingest_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::ingest_body(data));
