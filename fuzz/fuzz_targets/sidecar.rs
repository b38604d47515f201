#![no_main]
//! cargo-fuzz target: `timberline::fuzz::sidecar`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::sidecar(data));
