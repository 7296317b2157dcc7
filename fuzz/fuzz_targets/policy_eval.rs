//! Fuzz target `policy_eval`: `dcrgate_policies::evaluate::evaluate_json` with the seed and UK
//! profiles; the input is a JSON payload, a NUL byte, then the presented DN string.
//! The check itself is `dcrgate_fuzz::policy_eval` (src/lib.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dcrgate_fuzz::policy_eval(data));
