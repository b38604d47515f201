#![no_main]
//! cargo-fuzz target: `timberline::fuzz::pg_session`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::pg_session(data));
