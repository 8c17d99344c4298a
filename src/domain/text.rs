//! Free text that reaches a column, a jsonb value or a Kafka header: always valid UTF-8, no NUL
//! or other control characters, and bounded, so storing or publishing it cannot fail.

/// The longest error message kept with a dead letter, an outbox failure or a failed window.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The longest piece of a client's input echoed inside an error message.
pub const MAX_ECHO_BYTES: usize = 64;

const ELLIPSIS: char = '…';

/// Replaces control characters (NUL included) with U+FFFD and cuts the text to at most
/// `max_bytes` bytes on a character boundary, marking the cut with an ellipsis.
pub fn sanitize(text: &str, max_bytes: usize) -> String {
    let clean = |c: char| if c.is_control() { char::REPLACEMENT_CHARACTER } else { c };
    let needed: usize = text.chars().map(|c| clean(c).len_utf8()).sum();
    if needed <= max_bytes {
        return text.chars().map(clean).collect();
    }
    let marker = if max_bytes >= ELLIPSIS.len_utf8() { Some(ELLIPSIS) } else { None };
    let budget = max_bytes - marker.map_or(0, char::len_utf8);
    let mut out = String::with_capacity(max_bytes);
    for c in text.chars().map(clean) {
        if out.len() + c.len_utf8() > budget {
            break;
        }
        out.push(c);
    }
    out.extend(marker);
    out
}

/// An error message safe to store and publish: sanitized and at most 1 KiB.
pub fn message(text: &str) -> String {
    sanitize(text, MAX_MESSAGE_BYTES)
}

/// Bytes of unknown encoding as safe text (invalid UTF-8 becomes U+FFFD).
pub fn from_bytes(bytes: &[u8], max_bytes: usize) -> String {
    sanitize(&String::from_utf8_lossy(bytes), max_bytes)
}

/// A client's input quoted for an error message: sanitized, cut, and with its full size when
/// cut, so a 600 KB field name costs 80 bytes of message.
pub fn echo(input: &str) -> String {
    if input.len() <= MAX_ECHO_BYTES && !input.chars().any(char::is_control) {
        return format!("{input:?}");
    }
    let cut = sanitize(input, MAX_ECHO_BYTES);
    if input.len() > MAX_ECHO_BYTES { format!("\"{cut}\" ({} bytes)", input.len()) } else { format!("\"{cut}\"") }
}

/// True when `text` would pass [`sanitize`] unchanged with `max_bytes`.
pub fn is_clean(text: &str, max_bytes: usize) -> bool {
    text.len() <= max_bytes && !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_nul_are_replaced() {
        assert_eq!(sanitize("a\u{0}b\nc\u{1b}", 100), "a\u{fffd}b\u{fffd}c\u{fffd}");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_within_the_limit() {
        let text = "ä".repeat(1000);
        let cut = sanitize(&text, 101);
        assert!(cut.len() <= 101, "{} bytes", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("ää"));
    }

    #[test]
    fn short_clean_text_is_unchanged() {
        assert_eq!(sanitize("storage rejected", 1024), "storage rejected");
        assert_eq!(sanitize("", 10), "");
        assert_eq!(sanitize("exactly10!", 10), "exactly10!");
    }

    #[test]
    fn an_echo_of_a_huge_input_is_bounded_and_says_its_size() {
        let huge = "x".repeat(600_000);
        let echoed = echo(&huge);
        assert!(echoed.len() < 100, "{echoed}");
        assert!(echoed.contains("600000 bytes"));
        assert_eq!(echo("PS1"), "\"PS1\"");
        assert!(!echo("a\u{0}b").contains('\u{0}'));
    }

    #[test]
    fn invalid_utf8_bytes_become_replacement_characters() {
        assert_eq!(from_bytes(&[b'o', 0xff, b'k', 0], 10), "o\u{fffd}k\u{fffd}");
    }

    proptest::proptest! {
        #[test]
        fn sanitized_text_is_always_clean_and_bounded(text in ".*", max in 1usize..200) {
            let out = sanitize(&text, max);
            proptest::prop_assert!(out.len() <= max);
            proptest::prop_assert!(!out.chars().any(char::is_control));
        }
    }
}
