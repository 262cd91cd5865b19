//! Server-sent events, parsed incrementally from the bytes as they arrive (the WHATWG
//! event-stream rules: LF, CRLF or CR line ends, `:` comments, multi-line `data`). Bytes are
//! kept until a line is whole, so a character split between two network chunks is never broken.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    /// Where the unread part of `buffer` starts.
    start: usize,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; every event they complete is pushed to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let unread = &self.buffer[self.start..];
            let Some(position) = unread
                .iter()
                .position(|byte| *byte == b'\n' || *byte == b'\r')
            else {
                break;
            };
            let terminator = unread[position];
            let line_end = self.start + position;
            let next = if terminator == b'\r' {
                match self.buffer.get(line_end + 1) {
                    Some(b'\n') => line_end + 2,
                    Some(_) => line_end + 1,
                    // A CR at the very end may be the first half of a CRLF: wait for more.
                    None => break,
                }
            } else {
                line_end + 1
            };
            let line = String::from_utf8_lossy(&self.buffer[self.start..line_end]).into_owned();
            self.start = next;
            self.line(&line, out);
        }
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
    }

    /// The body ended: a last line without its line end still counts, and a pending event is
    /// dispatched.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if self.start < self.buffer.len() {
            let rest = String::from_utf8_lossy(&self.buffer[self.start..])
                .trim_end_matches('\r')
                .to_owned();
            self.buffer.clear();
            self.start = 0;
            self.line(&rest, out);
        }
        self.line("", out);
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data || !self.event.is_empty() {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => value.clone_into(&mut self.event),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(bytes: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece) {
            parser.feed(chunk, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn events_survive_any_split() {
        let stream = "event: message_start\ndata: {\"a\":\"héllo 👋\"}\n\n: comment\n\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\r\r";
        let expected = vec![
            SseEvent {
                event: "message_start".into(),
                data: "{\"a\":\"héllo 👋\"}".into(),
            },
            SseEvent {
                event: String::new(),
                data: "one\ntwo".into(),
            },
            SseEvent {
                event: String::new(),
                data: "[DONE]".into(),
            },
        ];
        for piece in 1..=stream.len() {
            assert_eq!(
                parse_in_pieces(stream.as_bytes(), piece),
                expected,
                "{piece}"
            );
        }
    }

    #[test]
    fn a_last_event_without_blank_line_is_kept() {
        assert_eq!(
            parse_in_pieces(b"data: x", 3),
            vec![SseEvent {
                event: String::new(),
                data: "x".into()
            }]
        );
    }
}
