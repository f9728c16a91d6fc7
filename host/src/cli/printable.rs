//! Text from outside made safe to print: the one escaping every renderer uses.

/// Text from outside (a platform, a connector) made safe for a terminal: control
/// characters (escape sequences included) and bidirectional overrides and isolates
/// (which reorder what follows them on the line) shown as `\u{..}`.
pub fn printable(s: &str) -> String {
    if !s.chars().any(passerelle_model::text::is_display_unsafe) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if passerelle_model::text::is_display_unsafe(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
