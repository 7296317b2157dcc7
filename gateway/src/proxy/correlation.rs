//! Correlation ids: the gateway's request id (`X-Request-Id`, also the audit record's
//! `request_id`) and the FAPI interaction id (`x-fapi-interaction-id`: the client's when it is
//! a UUID, else a new one). Both are returned on every answer the gateway writes or passes on,
//! sent to the registry, and fields of the request's log span, so every log line of a request
//! carries them with its route and ClientId.
//!
//! The random bits come from the operating system, drawn a block at a time into a per-thread
//! pool ([`random16`]), so that two ids per request do not cost two `getrandom` system calls.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";
/// The FAPI interaction id header.
pub const INTERACTION_ID_HEADER: &str = "x-fapi-interaction-id";

/// Bytes the operating system is asked for at a time: 128 ids per system call.
const POOL_BYTES: usize = 2048;

/// A thread's unused random bytes: `bytes[used..]`.
struct Pool {
    bytes: [u8; POOL_BYTES],
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], used: POOL_BYTES })
    };
}

/// 16 bytes from the operating system's generator, through this thread's pool; each byte is
/// handed out once. `None` when the system has no randomness to give.
fn random16() -> Option<[u8; 16]> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used + 16 > POOL_BYTES {
            SystemRandom::new().fill(&mut pool.bytes).ok()?;
            pool.used = 0;
        }
        let at = pool.used;
        let mut b = [0u8; 16];
        b.copy_from_slice(&pool.bytes[at..at + 16]);
        // Spent bytes are wiped, so the pool never holds an id already given out.
        pool.bytes[at..at + 16].fill(0);
        pool.used = at + 16;
        Some(b)
    })
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for x in bytes {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
}

/// 128 random bits as 32 lower-case hex digits (`-` if the system has no randomness).
pub fn request_id() -> String {
    let Some(b) = random16() else {
        return "-".to_owned();
    };
    let mut out = String::with_capacity(32);
    hex_into(&b, &mut out);
    out
}

/// A random (version 4) UUID, lower case.
pub fn new_uuid() -> String {
    let Some(mut b) = random16() else {
        return "00000000-0000-4000-8000-000000000000".to_owned();
    };
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, part) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .iter()
        .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        hex_into(part, &mut out);
    }
    out
}

/// Whether `s` is a UUID in its textual form (8-4-4-4-12 hex digits, either case).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The interaction id of a request: the client's `x-fapi-interaction-id` when there is exactly
/// one and it is a UUID, else a new one.
pub fn interaction_id(headers: &http::HeaderMap) -> String {
    let mut values = headers.get_all(INTERACTION_ID_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => match v.to_str() {
            Ok(s) if is_uuid(s) => s.to_owned(),
            _ => new_uuid(),
        },
        _ => new_uuid(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::test_headers;

    #[test]
    fn ids_have_their_shapes_and_differ() {
        let (a, b) = (request_id(), request_id());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        let u = new_uuid();
        assert!(is_uuid(&u), "{u}");
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(new_uuid(), u);
    }

    #[test]
    fn the_pool_keeps_no_byte_it_has_handed_out() {
        // Across a refill: what this thread's pool still holds of the ids given out is zeros.
        for _ in 0..(POOL_BYTES / 16 + 3) {
            assert_ne!(request_id(), "-");
            POOL.with(|pool| {
                let pool = pool.borrow();
                assert!(pool.used > 0 && pool.used <= POOL_BYTES);
                assert!(pool.bytes[..pool.used].iter().all(|&b| b == 0));
            });
        }
    }

    #[test]
    fn ids_across_pool_refills_never_repeat() {
        // Several refills of the pool, on two threads: every id is new.
        let ids = |n: usize| (0..n).map(|_| request_id()).collect::<Vec<_>>();
        let n = 3 * POOL_BYTES / 16 + 5;
        let other = std::thread::spawn(move || ids(n));
        let mut all = ids(n);
        all.extend(other.join().unwrap());
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().all(|id| id.len() == 32 && id != "-"));
    }

    #[test]
    fn only_one_uuid_from_the_client_is_kept() {
        let good = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";
        assert_eq!(
            interaction_id(&test_headers(&[(INTERACTION_ID_HEADER, good)])),
            good
        );
        for bad in [
            "",
            "not-a-uuid",
            "3F2504E0-4F89-41D3-9A0C-0305E82C330",
            "3F2504E0-4F89-41D3-9A0C-0305E82C33011",
            "3F2504E04F8941D39A0C0305E82C3301",
            "3F2504E0-4F89-41D3-9A0C_0305E82C3301",
            "{3F2504E0-4F89-41D3-9A0C-0305E82C3301}",
            "3F2504E0-4F89-41D3-9A0C-0305E82C33G1",
        ] {
            let got = interaction_id(&test_headers(&[(INTERACTION_ID_HEADER, bad)]));
            assert!(is_uuid(&got) && got != bad, "{bad:?} -> {got}");
        }
        let two = test_headers(&[(INTERACTION_ID_HEADER, good), (INTERACTION_ID_HEADER, good)]);
        assert_ne!(interaction_id(&two), good);
        assert!(is_uuid(&interaction_id(&http::HeaderMap::new())));
    }
}
