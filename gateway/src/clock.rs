//! The wall clock as seconds since the epoch, the unit certificates, CRLs, OCSP answers and
//! JWT claims are judged in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, seconds since the epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
