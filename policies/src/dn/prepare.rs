//! RFC 4518 string preparation for the RFC 4517 `caseIgnoreMatch` rule.
//!
//! Steps, in RFC 4518 order: map (§2.2: drop control and zero-width characters, map other
//! whitespace to SPACE), case fold (full folding as in RFC 3454 table B.2, so `ß` = `ss`),
//! normalise (NFKC), then insignificant space handling (§2.6.1). For equality the §2.6.1 form
//! is equivalent to trimming leading and trailing spaces and collapsing inner runs to one
//! SPACE, which is what is produced here (it reads better in messages).
//!
//! Table B.2 is full case folding closed under NFKC; it is approximated by folding and
//! normalising twice (`NFKC(fold(NFKC(fold(x))))`), which also catches compatibility
//! characters whose NFKC form has upper-case letters (`℃` → `°C` → `°c`).
//!
//! Not implemented: the §2.4 prohibit step (unassigned code points, private use,
//! non-characters, U+FFFD make a match *undefined*); such values simply compare as prepared.

use unicode_normalization::UnicodeNormalization;

/// RFC 4518 preparation of `value` for caseIgnoreMatch. Two values match when their prepared
/// forms are equal.
pub fn prepare_case_ignore(value: &str) -> String {
    if value.is_ascii() {
        return prepare_ascii(value);
    }
    let mapped: String = value.chars().filter_map(map_char).collect();
    let once: String = caseless::default_case_fold_str(&mapped).nfkc().collect();
    let twice: String = caseless::default_case_fold_str(&once).nfkc().collect();
    collapse_spaces(twice.chars())
}

/// The common case, without allocations beyond the result.
fn prepare_ascii(value: &str) -> String {
    collapse_spaces(value.chars().filter_map(|c| match c {
        '\t'..='\r' => Some(' '),
        '\0'..='\x08' | '\x0e'..='\x1f' | '\x7f' => None,
        c => Some(c.to_ascii_lowercase()),
    }))
}

/// RFC 4518 §2.2. `None` = mapped to nothing.
fn map_char(c: char) -> Option<char> {
    match c {
        // Mapped to SPACE: the ASCII whitespace controls and NEL.
        '\u{09}'..='\u{0D}' | '\u{85}' => Some(' '),
        // Soft hyphens, combining grapheme joiner, variation selectors, object replacement.
        '\u{AD}'
        | '\u{1806}'
        | '\u{34F}'
        | '\u{180B}'..='\u{180D}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FFFC}' => None,
        // Controls and format characters (the complete list in §2.2), and ZERO WIDTH SPACE.
        '\u{00}'..='\u{08}'
        | '\u{0E}'..='\u{1F}'
        | '\u{7F}'..='\u{84}'
        | '\u{86}'..='\u{9F}'
        | '\u{6DD}'
        | '\u{70F}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2063}'
        | '\u{206A}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}' => None,
        // Separators (Zs, Zl, Zp) to SPACE.
        '\u{A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => Some(' '),
        c => Some(c),
    }
}

/// Trim leading and trailing SPACEs and collapse inner runs to one.
fn collapse_spaces(chars: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    let mut pending_space = false;
    for c in chars {
        if c == ' ' {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::prepare_case_ignore as p;

    #[test]
    fn case_folding_is_full() {
        assert_eq!(p("Maximilianstraße 1"), p("MAXIMILIANSTRASSE 1"));
        assert_eq!(p("ß"), "ss");
        assert_eq!(p("OpenBanking"), p("OPENBANKING"));
        assert_eq!(p("ZOË ÜNAL"), p("Zoë Ünal"));
        assert_eq!(p("℃"), "°c");
        assert_ne!(p("Société"), p("Societe"));
    }

    #[test]
    fn nfkc() {
        assert_eq!(p("Zoe\u{308}"), p("Zoë"));
        assert_eq!(p("ﬁ"), "fi");
        assert_eq!(p("Ｏｐｅｎ"), "open");
    }

    #[test]
    fn insignificant_spaces() {
        assert_eq!(p(" Ops  Team "), "ops team");
        assert_eq!(p("Example  TPP   Ltd"), p("Example TPP Ltd"));
        assert_eq!(p("   "), "");
        assert_eq!(p(""), "");
        assert_ne!(p("OpsTeam"), p("Ops Team"));
        assert_eq!(p("a\u{3000}b"), "a b");
        assert_eq!(p("a\u{a0}\u{a0}b"), "a b");
        assert_eq!(p("a\tb\r\n"), "a b");
    }

    #[test]
    fn ignorable_characters_are_dropped() {
        assert_eq!(p("Open\u{200B}Banking"), "openbanking");
        assert_eq!(p("Open\u{AD}Banking\u{FEFF}"), "openbanking");
        assert_eq!(p("a\u{0}b"), "ab");
        assert_eq!(p("é\u{0}"), "é");
    }

    #[test]
    fn idempotent_on_examples() {
        for s in ["Straße", "İstanbul", "ǅ", "ﬃ", "Ⅻ", "Ω", "K", " a  B "] {
            assert_eq!(p(&p(s)), p(s), "{s}");
        }
    }
}
