//! Fuzz target `dn_parse`: `dcrgate_policies::dn::Dn::parse` in both modes and
//! `Dn::from_der_name`, with the canonical RFC 4514 round trip.
//! The check itself is `dcrgate_fuzz::dn_parse` (src/lib.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dcrgate_fuzz::dn_parse(data));
