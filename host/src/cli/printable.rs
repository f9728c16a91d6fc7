//! Text from outside made safe to print: the one escaping every renderer uses.

/// Text from outside (a platform, a connector) made safe for a terminal: control
/// characters (escape sequences included) and bidirectional overrides and isolates
/// (which reorder what follows them on the line) shown as `\u{..}`.
pub fn printable(s: &str) -> String {
    if !s.chars().any(unsafe_char) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A character that changes how a terminal shows the rest: a control character, or a
/// bidirectional mark, embedding, override or isolate.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}
