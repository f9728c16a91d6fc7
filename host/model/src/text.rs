//! Which characters change how a terminal or a page shows the text after them: the one
//! definition the CLI's escaping and the manifest's checks share.

/// A control character (escape sequences included), or a bidirectional mark,
/// embedding, override or isolate (which reorder what follows them on the line).
pub fn is_display_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}
