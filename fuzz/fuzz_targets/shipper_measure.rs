#![no_main]
//! cargo-fuzz target: `timberline::fuzz::shipper_measure`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::shipper_measure(data));
