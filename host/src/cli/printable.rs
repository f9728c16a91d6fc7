//! Text from outside made safe to print: the one escaping every renderer uses.

/// Text from outside (a platform, a connector) made safe for a terminal: control
/// characters (escape sequences included) shown as `\u{..}`.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
