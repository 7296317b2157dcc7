//! Fuzz target `jws_parse`: `dcrgate_jose::jws::parse_compact` (accepting PS256 and ES256)
//! and `parse_unsigned` on arbitrary bytes.
//! The check itself is `dcrgate_fuzz::jws_parse` (src/lib.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dcrgate_fuzz::jws_parse(data));
