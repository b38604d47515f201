#![no_main]
//! cargo-fuzz target: `timberline::fuzz::pg_frames`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::pg_frames(data));
