//! Redis-style glob patterns, as `KEYS` and `SCAN ... MATCH` use them.
//!
//! [`glob_match`] follows Redis's `stringmatchlen` (in `util.c`) step for
//! step, quirks included, so a pattern selects the same keys here as it
//! would in Redis:
//!
//! | pattern | matches |
//! | --- | --- |
//! | `*` | any run of bytes, including none |
//! | `?` | exactly one byte |
//! | `[abc]`, `[^abc]` | one byte in (not in) the set |
//! | `[a-z]` | one byte in the range; `[z-a]` is the same range |
//! | `\x` | the byte `x` itself, outside or inside `[...]` |
//!
//! Quirks kept from Redis: an unterminated class (`[abc`) is a class up to
//! the end of the pattern; `[]` matches nothing and `[^]` any one byte; in
//! `[a-]` the `-` makes a range to `]`, so the class runs on past that `]`;
//! a trailing lone `\` matches a `\`; a pattern whose stars nest more
//! than [`MAX_STAR_NESTING`] deep matches nothing; and the empty string is
//! matched only by the empty pattern and by `*` alone (Redis's matcher says
//! no even to `*`, but `KEYS` and `SCAN` skip it for exactly `*`, and so does
//! [`glob_match`], so `**` or `a*` still miss an empty key).
//!
//! Pure and bounded: no allocation, recursion at most [`MAX_STAR_NESTING`]
//! deep, and time `O(pattern × string)` even for patterns such as
//! `a*a*a*a*a*b` that make a naive backtracking matcher exponential. It
//! must never panic, whatever bytes the pattern holds.

/// Stars nested deeper than this make the pattern match nothing, as in
/// Redis (its "protection against abusive patterns").
pub const MAX_STAR_NESTING: usize = 1000;

/// Whether `string` matches the glob `pattern`, byte for byte and case
/// sensitively, exactly as Redis's `stringmatchlen(..., nocase = 0)`.
///
/// One deliberate difference: bytes compare as unsigned in `[a-z]` ranges.
/// Redis compares C `char`s, which are signed on x86 and unsigned on ARM,
/// so a range with a byte of 0x80 or above means different things on
/// different Redis builds; here it means what it says.
pub fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    if pattern == b"*" {
        return true;
    }
    let mut give_up = false;
    match_here(pattern, string, &mut give_up, 0)
}

/// Matches `pattern` against `string` from their starts. `give_up` is set
/// once the part of a pattern after some star has failed at every position
/// left in the string: a star further out can then only move that part
/// later in the string, where it has already failed, so every enclosing
/// star stops trying too. That is what keeps the search polynomial.
fn match_here(pattern: &[u8], string: &[u8], give_up: &mut bool, nesting: usize) -> bool {
    if nesting > MAX_STAR_NESTING {
        return false;
    }
    let (mut p, mut s) = (0, 0);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return true;
                }
                // The empty rest of the string is never tried: what follows
                // the star is not all stars, so it needs at least one byte.
                while s < string.len() {
                    if match_here(&pattern[p + 1..], &string[s..], give_up, nesting + 1) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                    s += 1;
                }
                *give_up = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negated = p < pattern.len() && pattern[p] == b'^';
                if negated {
                    p += 1;
                }
                if class_contains(pattern, &mut p, string[s]) == negated {
                    return false;
                }
                s += 1;
            }
            b'\\' => {
                if pattern.len() - p >= 2 {
                    p += 1;
                }
                if pattern[p] != string[s] {
                    return false;
                }
                s += 1;
            }
            literal => {
                if literal != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while p < pattern.len() && pattern[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == string.len()
}

/// Whether the class starting at `*p` (just after `[` or `[^`) holds the
/// byte `c`. Leaves `*p` on the closing `]`, or on the last byte of the
/// pattern when the class is not closed, as Redis does.
fn class_contains(pattern: &[u8], p: &mut usize, c: u8) -> bool {
    let mut found = false;
    loop {
        let left = pattern.len() - *p;
        if left >= 2 && pattern[*p] == b'\\' {
            *p += 1;
            found |= pattern[*p] == c;
        } else if left == 0 {
            *p -= 1;
            break;
        } else if pattern[*p] == b']' {
            break;
        } else if left >= 3 && pattern[*p + 1] == b'-' {
            let (a, b) = (pattern[*p], pattern[*p + 2]);
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            *p += 2;
            found |= (low..=high).contains(&c);
        } else {
            found |= pattern[*p] == c;
        }
        *p += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, string: &str) -> bool {
        glob_match(pattern.as_bytes(), string.as_bytes())
    }

    #[test]
    fn the_examples_from_the_redis_keys_documentation() {
        for s in ["hello", "hallo", "hxllo"] {
            assert!(m("h?llo", s), "{s}");
        }
        for s in ["hllo", "heeeello", "hello"] {
            assert!(m("h*llo", s), "{s}");
        }
        assert!(m("h[ae]llo", "hello") && m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && m("h[^e]llo", "hbllo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hallo") && m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*", ""));
        assert!(m("*", "anything at all"));
        assert!(!m("**", ""), "only `*` alone matches the empty string");
        assert!(!m("*a*", "") && !m("[^a]*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("?", ""));
        assert!(m("?", "x"));
        assert!(!m("?", "xy"));
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(m("*a", "a"));
        assert!(m("*a", "bba"));
        assert!(!m("*a", "ab"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*?", "x"));
        assert!(!m("*??", "x"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(!m("user:*:name", "user:42:age"));
    }

    #[test]
    fn escapes_make_special_bytes_literal() {
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("\\?", "?"));
        assert!(!m("\\?", "x"));
        assert!(m("a\\", "a\\"), "a trailing lone backslash is literal");
        assert!(m("[\\]]", "]"));
        assert!(m("[\\^]", "^"));
        assert!(!m("[\\^]", "a"));
        // `\-` inside a class is a plain `-`, not a range.
        assert!(m("[a\\-z]", "-"));
        assert!(m("[a\\-z]", "z"));
        assert!(!m("[a\\-z]", "b"));
    }

    #[test]
    fn classes_follow_redis_including_its_quirks() {
        assert!(m("[z-a]", "m"), "a reversed range is the same range");
        assert!(!m("[z-a]", "A"));
        assert!(m("[a-c-e]", "b"));
        assert!(m("[abc", "a"), "an unterminated class runs to the end");
        assert!(!m("[abc", "d"));
        assert!(!m("[", "["), "a lone [ is an empty class");
        assert!(m("[^", "x"), "a lone [^ matches any one byte");
        assert!(!m("[]", "]"), "[] is an empty class");
        assert!(!m("[]a]", "a"));
        assert!(!m("[]a]", "]a]"));
        assert!(m("[^]", "x"));
        assert!(!m("[^]", ""));
        // `[a-]`: the `-` ranges from `a` to `]` (0x5d..=0x61), and the class
        // goes on past that `]` to the next one.
        assert!(m("[a-]b]", "_"));
        assert!(m("[a-]b]", "b"));
        assert!(!m("[a-]b]", "c"));
        assert!(m("[a-]", "^"));
    }

    #[test]
    fn any_byte_can_be_matched() {
        assert!(glob_match(b"\x00*\xff", b"\x00\x01\x02\xff"));
        assert!(glob_match(b"[\x80-\xff]", b"\x90"));
        assert!(!glob_match(b"[\x80-\xff]", b"\x7f"));
        assert!(glob_match(b"?", b"\xff"));
        assert!(!glob_match(b"a", b"\xe1"));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let long = vec![b'a'; 100_000];
        assert!(!glob_match(b"a*a*a*a*a*a*a*a*a*a*a*a*b", &long));
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*a*a*a*?b", &long));
        assert!(glob_match(b"a*a*a*a*a*a*a*a*a*a*a*a*a", &long));
        let stars = "*a".repeat(500);
        assert!(!glob_match(format!("{stars}b").as_bytes(), &long[..2000]));
    }

    #[test]
    fn more_than_a_thousand_nested_stars_match_nothing() {
        let string = vec![b'a'; 1001];
        assert!(glob_match("*a".repeat(1000).as_bytes(), &string[..1000]));
        assert!(!glob_match("*a".repeat(1001).as_bytes(), &string));
        // Runs of stars collapse, so they do not count as nesting.
        assert!(glob_match(b"********************************a", b"a"));
    }

    /// Textbook glob matching over `*`, `?` and literals only, for
    /// comparison: Redis's matcher agrees with it there, except that it
    /// matches the empty string only with an empty pattern (or `*` alone,
    /// the `KEYS`/`SCAN` shortcut).
    fn reference(pattern: &[u8], string: &[u8]) -> bool {
        if string.is_empty() {
            return pattern.is_empty() || pattern == b"*";
        }
        // can[i][j]: pattern[i..] matches string[j..].
        let mut can = vec![vec![false; string.len() + 1]; pattern.len() + 1];
        can[pattern.len()][string.len()] = true;
        for i in (0..pattern.len()).rev() {
            for j in (0..=string.len()).rev() {
                can[i][j] = match pattern[i] {
                    b'*' => can[i + 1][j] || (j < string.len() && can[i][j + 1]),
                    b'?' => j < string.len() && can[i + 1][j + 1],
                    c => j < string.len() && string[j] == c && can[i + 1][j + 1],
                };
            }
        }
        can[0][0]
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/glob.txt"))]
        #[test]
        fn agrees_with_textbook_globbing_on_stars_and_question_marks(
            pattern in proptest::collection::vec(prop::sample::select(b"ab*?".to_vec()), 0..12),
            string in proptest::collection::vec(prop::sample::select(b"ab".to_vec()), 0..16),
        ) {
            prop_assert_eq!(glob_match(&pattern, &string), reference(&pattern, &string));
        }

        #[test]
        fn a_pattern_without_specials_matches_only_itself(
            pattern in proptest::collection::vec(any::<u8>().prop_filter("special", |b| !b"*?[\\".contains(b)), 0..16),
            string in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            prop_assert!(glob_match(&pattern, &pattern));
            prop_assert_eq!(glob_match(&pattern, &string), pattern == string);
        }

        #[test]
        fn no_pattern_panics(
            pattern in proptest::collection::vec(prop::sample::select(b"ab*?[]^-\\\x00\xff".to_vec()), 0..24),
            string in proptest::collection::vec(prop::sample::select(b"ab]^-\\\x00\xff".to_vec()), 0..24),
        ) {
            let _ = glob_match(&pattern, &string);
        }
    }
}
