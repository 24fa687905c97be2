#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| warden::fuzz_targets::form_and_basic(data));
