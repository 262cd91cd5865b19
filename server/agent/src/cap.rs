//! Caps what enters the model's context: the head and the tail are kept, and a marker counts
//! what was left out between them.

use serde::{Deserialize, Serialize};

/// The most a tool result may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputCap {
    /// Bytes kept at most (head and tail together, the marker aside).
    pub bytes: usize,
    /// Lines kept at most (head and tail together).
    pub lines: usize,
}

impl Default for OutputCap {
    fn default() -> Self {
        Self {
            bytes: 16_000,
            lines: 400,
        }
    }
}

fn floor_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while index < text.len() && !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// `text` without terminal escape sequences (colours, cursor movement) and carriage returns: a
/// command's output as the model should read it, without tokens spent on codes it cannot see.
pub fn strip_terminal_codes(text: &str) -> String {
    if !text.contains(['\u{1b}', '\r']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\u{1b}' => {
                if characters.next_if_eq(&'[').is_some() {
                    // Parameters and intermediates, then one final byte in @..~.
                    for next in characters.by_ref() {
                        if ('@'..='~').contains(&next) {
                            break;
                        }
                    }
                } else {
                    characters.next();
                }
            }
            '\r' => {}
            _ => out.push(character),
        }
    }
    out
}

/// `text` whole when it fits `cap`, otherwise its head and tail with a marker between them
/// saying how many lines and bytes were left out.
pub fn cap_output(text: &str, cap: OutputCap) -> String {
    let line_count = text.lines().count();
    if text.len() <= cap.bytes && line_count <= cap.lines {
        return text.to_owned();
    }
    let half_bytes = cap.bytes / 2;
    let half_lines = cap.lines / 2;
    // The head: at most half the lines and half the bytes, ending after a newline when it can.
    let mut head_end = floor_boundary(text, half_bytes);
    if let Some((index, _)) = text.match_indices('\n').nth(half_lines.saturating_sub(1))
        && half_lines > 0
    {
        head_end = head_end.min(index + 1);
    } else if half_lines == 0 {
        head_end = 0;
    }
    if let Some(newline) = text[..head_end].rfind('\n') {
        head_end = newline + 1;
    }
    // The tail: at most half the lines and half the bytes, starting after a newline when it can.
    let mut tail_start = ceil_boundary(text, text.len().saturating_sub(half_bytes));
    let body = text.strip_suffix('\n').unwrap_or(text);
    if half_lines == 0 {
        tail_start = text.len();
    } else if let Some((index, _)) = body.rmatch_indices('\n').nth(half_lines - 1) {
        tail_start = tail_start.max(index + 1);
    }
    if let Some(newline) = text[tail_start..].find('\n')
        && tail_start > 0
        && !text[..tail_start].ends_with('\n')
        && tail_start + newline + 1 < text.len()
    {
        tail_start += newline + 1;
    }
    if head_end >= tail_start {
        return text.to_owned();
    }
    let omitted = &text[head_end..tail_start];
    let omitted_lines = omitted.matches('\n').count();
    let mut capped = String::with_capacity(head_end + (text.len() - tail_start) + 80);
    capped.push_str(&text[..head_end]);
    if !capped.is_empty() && !capped.ends_with('\n') {
        capped.push('\n');
    }
    capped.push_str(&format!(
        "[... {omitted_lines} lines ({} bytes) omitted ...]\n",
        omitted.len()
    ));
    capped.push_str(&text[tail_start..]);
    capped
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(cap_output("a\nb\n", OutputCap::default()), "a\nb\n");
    }

    #[test]
    fn terminal_codes_are_left_out_of_what_the_model_reads() {
        assert_eq!(
            strip_terminal_codes("\u{1b}[1;31merror\u{1b}[0m: x\r\n\u{1b}[2Kdone\u{1b}c\n"),
            "error: x\ndone\n"
        );
        assert_eq!(strip_terminal_codes("plain\n"), "plain\n");
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_counts_the_rest() {
        let text: String = (1..=1000).map(|line| format!("line {line}\n")).collect();
        let capped = cap_output(
            &text,
            OutputCap {
                bytes: 100_000,
                lines: 10,
            },
        );
        assert!(capped.starts_with("line 1\nline 2\n"), "{capped}");
        assert!(capped.ends_with("line 999\nline 1000\n"), "{capped}");
        assert!(capped.contains("[... 990 lines"), "{capped}");
        assert!(!capped.contains("line 500\n"));
        assert_eq!(capped.lines().count(), 11);
    }

    #[test]
    fn byte_cap_holds_for_one_long_line() {
        let text = "é".repeat(10_000);
        let capped = cap_output(
            &text,
            OutputCap {
                bytes: 100,
                lines: 10,
            },
        );
        assert!(capped.len() < 200, "{}", capped.len());
        assert!(capped.contains("bytes) omitted"));
    }

    #[test]
    fn the_cap_holds_for_every_shape() {
        let cap = OutputCap {
            bytes: 300,
            lines: 20,
        };
        for line_count in 0..120 {
            for width in [0, 1, 7, 40, 400] {
                let text: String = (0..line_count)
                    .map(|index| format!("{index}{}\n", "x".repeat(width)))
                    .collect();
                let capped = cap_output(&text, cap);
                if capped == text {
                    assert!(text.len() <= cap.bytes && text.lines().count() <= cap.lines);
                    continue;
                }
                let (head, rest) = capped.split_once("[... ").unwrap();
                let (marker, tail) = rest.split_once(" omitted ...]\n").unwrap();
                assert!(
                    head.len() + tail.len() <= cap.bytes + 1,
                    "{line_count} {width}"
                );
                assert!(head.lines().count() + tail.lines().count() <= cap.lines);
                assert!(text.starts_with(head.trim_end_matches('\n')));
                assert!(text.ends_with(tail));
                let omitted_bytes: usize = marker
                    .split_once('(')
                    .unwrap()
                    .1
                    .split_once(' ')
                    .unwrap()
                    .0
                    .parse()
                    .unwrap();
                assert!(omitted_bytes > 0);
                assert!(head.len() + tail.len() + omitted_bytes >= text.len());
            }
        }
    }
}
