//! The command's output as events, capped: the head of each stream is sent as it comes, the rest
//! only counted, except its tail, which is kept (bounded) and sent when the stream ends.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Which output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a run sends while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Bytes the command wrote (not split at characters or lines).
    Output {
        /// Which stream.
        stream: Stream,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Bytes of a stream left out between its head and its tail (sent once, when the stream
    /// ends, just before the tail).
    Omitted {
        /// Which stream.
        stream: Stream,
        /// How many bytes were left out.
        bytes: u64,
    },
}

/// How much of one stream went where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamTotals {
    /// Bytes the command wrote.
    pub written: u64,
    /// Bytes left out.
    pub omitted: u64,
    /// The stream's first bytes (at most [`FIRST_BYTES`]), for error messages.
    pub first_bytes: Vec<u8>,
}

/// How many of a stream's first bytes [`StreamTotals`] keeps.
pub const FIRST_BYTES: usize = 2048;

const CHUNK: usize = 64 * 1024;

/// Reads `reader` to its end, sends the head and the tail as events and counts the rest.
/// Stops sending (but keeps reading, so the command never blocks) once the receiver is gone.
pub async fn pump<R: AsyncRead + Unpin>(
    mut reader: R,
    stream: Stream,
    head_limit: usize,
    tail_limit: usize,
    events: mpsc::Sender<Event>,
) -> std::io::Result<StreamTotals> {
    let mut totals = StreamTotals::default();
    let mut head_left = head_limit;
    let mut tail: VecDeque<u8> = VecDeque::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut receiver_gone = false;
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        let chunk = buffer.get(..read).unwrap_or_default();
        totals.written += read as u64;
        let room = FIRST_BYTES.saturating_sub(totals.first_bytes.len());
        totals
            .first_bytes
            .extend_from_slice(chunk.get(..room.min(read)).unwrap_or_default());
        let head_part = read.min(head_left);
        if head_part > 0 {
            head_left -= head_part;
            if !receiver_gone {
                let bytes = chunk.get(..head_part).unwrap_or_default().to_vec();
                receiver_gone = events.send(Event::Output { stream, bytes }).await.is_err();
            }
        }
        let rest = chunk.get(head_part..).unwrap_or_default();
        if rest.is_empty() {
            continue;
        }
        if tail_limit == 0 {
            totals.omitted += rest.len() as u64;
            continue;
        }
        // Only the last `tail_limit` bytes of `rest` can stay.
        let keep = rest
            .get(rest.len().saturating_sub(tail_limit)..)
            .unwrap_or_default();
        totals.omitted += (rest.len() - keep.len()) as u64;
        let overflow = (tail.len() + keep.len()).saturating_sub(tail_limit);
        if overflow > 0 {
            tail.drain(..overflow);
            totals.omitted += overflow as u64;
        }
        tail.extend(keep);
    }
    if !receiver_gone {
        if totals.omitted > 0 {
            receiver_gone = events
                .send(Event::Omitted {
                    stream,
                    bytes: totals.omitted,
                })
                .await
                .is_err();
        }
        if !tail.is_empty() && !receiver_gone {
            let bytes: Vec<u8> = tail.into_iter().collect();
            // The receiver may have gone meanwhile; the totals still stand.
            if events.send(Event::Output { stream, bytes }).await.is_err() {
                return Ok(totals);
            }
        }
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    async fn collect(input: Vec<u8>, head: usize, tail: usize) -> (Vec<Event>, StreamTotals) {
        let (sender, mut receiver) = mpsc::channel(1024);
        let totals = pump(input.as_slice(), Stream::Stdout, head, tail, sender)
            .await
            .unwrap();
        let mut events = Vec::new();
        while let Some(event) = receiver.recv().await {
            events.push(event);
        }
        (events, totals)
    }

    fn text(events: &[Event]) -> Vec<u8> {
        let mut all = Vec::new();
        for event in events {
            if let Event::Output { bytes, .. } = event {
                all.extend_from_slice(bytes);
            }
        }
        all
    }

    #[tokio::test]
    async fn short_output_is_sent_whole() {
        let (events, totals) = collect(b"hello".to_vec(), 10, 10).await;
        assert_eq!(text(&events), b"hello");
        assert_eq!((totals.written, totals.omitted), (5, 0));
    }

    #[tokio::test]
    async fn long_output_keeps_head_and_tail_and_counts_the_rest() {
        let input: Vec<u8> = (0..200_000u32).map(|index| (index % 251) as u8).collect();
        let (events, totals) = collect(input.clone(), 1000, 500).await;
        let kept = text(&events);
        assert_eq!(kept.len(), 1500);
        assert_eq!(&kept[..1000], &input[..1000]);
        assert_eq!(&kept[1000..], &input[input.len() - 500..]);
        assert_eq!(totals.omitted, 200_000 - 1500);
        assert!(events.contains(&Event::Omitted {
            stream: Stream::Stdout,
            bytes: 200_000 - 1500
        }));
    }
}
