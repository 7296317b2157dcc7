//! TPP key sets: fetched safely from allowlisted https URLs, cached, refreshed on rotation.

pub mod cache;
pub mod fetch;

pub use cache::{KeySetCache, KeySetError};
pub use fetch::{FetchError, KeySetFetcher};
