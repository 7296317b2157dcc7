//! GeneralizedTime (`YYYYMMDDHHMMSS[.f]Z`, UTC only) to and from seconds since the epoch.

/// Seconds since the epoch of a DER GeneralizedTime's contents; fractions are dropped.
pub fn parse_generalized(contents: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(contents).ok()?;
    let s = s.strip_suffix('Z')?;
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| whole[r].parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The GeneralizedTime contents for `secs` since the epoch.
pub fn format_generalized(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_generalized(b"19700101000000Z"), Some(0));
        assert_eq!(parse_generalized(b"20000229235959Z"), Some(951_868_799));
        assert_eq!(
            parse_generalized(b"20261207054554.123Z"),
            Some(1_796_622_354)
        );
        assert_eq!(format_generalized(1_796_622_354), "20261207054554Z");
        for secs in [0i64, 951_868_799, 1_796_622_354, 4_102_444_800] {
            assert_eq!(
                parse_generalized(format_generalized(secs).as_bytes()),
                Some(secs)
            );
        }
    }

    #[test]
    fn refuses_local_times_offsets_and_junk() {
        for bad in [
            &b"20261207054554"[..],
            b"20261207054554+0100",
            b"2026120705455Z",
            b"20261307054554Z",
            b"20261207054554.Z",
            b"2026-12-07T05Z",
            b"",
        ] {
            assert_eq!(parse_generalized(bad), None, "{bad:?}");
        }
    }
}
