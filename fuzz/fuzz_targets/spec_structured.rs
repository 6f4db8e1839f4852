#![no_main]
libfuzzer_sys::fuzz_target!(|spec: backprop_fuzz::entries::SpecInput| {
    backprop_fuzz::entries::spec_structured(&spec)
});
