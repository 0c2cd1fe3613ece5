//! Untrusted text made safe to print: what a file, a request or a peer sent can reach an error
//! message, a log line or an operator's terminal.

/// `text` with its control characters written as escapes (`\u{1b}`, `\n`), so that it can
/// neither send escape sequences to a terminal nor, with `keep_line_breaks` false, start a log
/// line of its own. With `keep_line_breaks`, `\n` stays a line break (a multi-line message
/// meant for a person).
///
/// ```
/// assert_eq!(tessera::text::escape_controls("a\u{1b}[2J\nb", true), "a\\u{1b}[2J\nb");
/// assert_eq!(tessera::text::escape_controls("a\nb", false), "a\\nb");
/// ```
#[must_use]
pub fn escape_controls(text: &str, keep_line_breaks: bool) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && !(keep_line_breaks && c == '\n') {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
