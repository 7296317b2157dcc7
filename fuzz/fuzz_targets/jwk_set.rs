//! Fuzz target `jwk_set`: `dcrgate_jose::jwk::JwkSet::parse` on arbitrary bytes.
//! The check itself is `dcrgate_fuzz::jwk_set` (src/lib.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dcrgate_fuzz::jwk_set(data));
