#![no_main]
//! cargo-fuzz target: `timberline::fuzz::log_lines`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::log_lines(data));
