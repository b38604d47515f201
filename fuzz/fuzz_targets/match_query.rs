#![no_main]
//! cargo-fuzz target: `timberline::fuzz::match_query`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::match_query(data));
