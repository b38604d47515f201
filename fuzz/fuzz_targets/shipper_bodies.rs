#![no_main]
//! cargo-fuzz target: `timberline::fuzz::shipper_bodies`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| timberline::fuzz::shipper_bodies(data));
