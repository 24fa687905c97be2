#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| warden::fuzz_targets::token_contract(data));
