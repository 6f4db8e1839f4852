#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| backprop_fuzz::entries::checkpoint(data));
