//! The policy core's integration tests, one binary: rule by rule, the trust chain, hostile
//! metadata, property tests of the DN machinery, and the DN corpus of real certificates.

mod boundaries;
mod common;
mod dn_corpus;
mod dn_props;
mod evaluate;
mod labels;
mod metadata_classes;
mod trust_chain;
