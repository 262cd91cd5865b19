//! Taking a provider key out of text that came back from the provider: error bodies echo keys
//! (OpenAI's 401 "Incorrect API key provided: sk-proj-abcd****wxyz", a local server quoting the
//! `Authorization` header or a `key=` URL). [`crate::Endpoint::redact`] applies this to every
//! error the gateway produces for an endpoint, so no provider translator has to remember it.
//!
//! What is removed: every occurrence of the key, and every run of at least [`MIN_PIECE`]
//! consecutive characters of it (partial echoes), in the key's plain, percent-encoded and base64
//! forms. Nothing else: a word is only removed if it is such a piece of the key.

use std::collections::HashSet;

/// What a removed piece of a key is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The shortest run of a key's characters that is removed wherever it appears (a whole key
/// shorter than this is still removed where it appears whole).
pub const MIN_PIECE: usize = 8;

/// Removes one key, in all its forms, from texts. Holds key material: it has no `Debug` and is
/// dropped as soon as the error it cleans is built.
pub struct KeyRedactor {
    /// The key and its encoded forms, each removed wherever it appears whole.
    forms: Vec<String>,
    /// Every run of `MIN_PIECE` characters of every form.
    pieces: HashSet<Vec<char>>,
}

impl KeyRedactor {
    pub fn new(key: &str) -> Self {
        let mut forms: Vec<String> = Vec::new();
        if !key.is_empty() {
            forms.push(key.to_owned());
            forms.push(url::form_urlencoded::byte_serialize(key.as_bytes()).collect());
            forms.push(percent_encoded(key.as_bytes(), b"0123456789ABCDEF"));
            forms.push(percent_encoded(key.as_bytes(), b"0123456789abcdef"));
            for alphabet in [BASE64_STANDARD, BASE64_URL_SAFE] {
                for prefix in 0..3 {
                    forms.push(base64_inner(key.as_bytes(), prefix, alphabet));
                }
            }
        }
        forms.retain(|form| !form.is_empty());
        forms.sort();
        forms.dedup();
        let mut pieces = HashSet::new();
        for form in &forms {
            let characters: Vec<char> = form.chars().collect();
            for piece in characters.windows(MIN_PIECE) {
                pieces.insert(piece.to_vec());
            }
        }
        Self { forms, pieces }
    }

    /// `text` with every piece of the key replaced by [`REDACTED`] (adjacent pieces merged into
    /// one).
    pub fn redact(&self, text: &str) -> String {
        let mut covered = vec![false; text.len()];
        let mut any = false;
        for form in &self.forms {
            for (start, found) in text.match_indices(form.as_str()) {
                covered[start..start + found.len()].fill(true);
                any = true;
            }
        }
        let positions: Vec<(usize, char)> = text.char_indices().collect();
        let characters: Vec<char> = positions.iter().map(|(_, character)| *character).collect();
        for (index, window) in characters.windows(MIN_PIECE).enumerate() {
            if self.pieces.contains(window) {
                let start = positions[index].0;
                let end = positions
                    .get(index + MIN_PIECE)
                    .map_or(text.len(), |(position, _)| *position);
                covered[start..end].fill(true);
                any = true;
            }
        }
        if !any {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut in_piece = false;
        for (position, character) in positions {
            if covered[position] {
                if !in_piece {
                    out.push_str(REDACTED);
                    in_piece = true;
                }
            } else {
                out.push(character);
                in_piece = false;
            }
        }
        out
    }
}

/// Removes `key` (see [`KeyRedactor`]) from `text`.
pub fn redact_key(text: &str, key: &str) -> String {
    KeyRedactor::new(key).redact(text)
}

/// Every byte outside the unreserved set (RFC 3986) as `%XX`, with the given hex digits.
fn percent_encoded(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(digits[usize::from(byte >> 4)]));
            out.push(char::from(digits[usize::from(byte & 0x0f)]));
        }
    }
    out
}

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend on `bytes` alone when they follow `prefix` other bytes
/// (0, 1 or 2: the three ways they can fall against base64's 3-byte groups, as in
/// `Basic base64(user:key)`), whatever those other bytes and the ones after are.
fn base64_inner(bytes: &[u8], prefix: usize, alphabet: &[u8; 64]) -> String {
    let mut padded = vec![0u8; prefix];
    padded.extend_from_slice(bytes);
    let bits = padded.len() * 8;
    // Character `index` covers bits `6 * index .. 6 * index + 6`.
    let first = (prefix * 8).div_ceil(6);
    let end = bits / 6;
    (first..end)
        .map(|index| {
            let bit = index * 6;
            let byte = bit / 8;
            let shift = bit % 8;
            let high = u16::from(padded[byte]) << 8;
            let low = padded.get(byte + 1).copied().map_or(0, u16::from);
            let value = ((high | low) >> (10 - shift)) & 0x3f;
            char::from(alphabet[usize::from(value)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-proj-Q7vLx2mN9pRt4WzK8yHb3JcF6dGs1AeU";

    /// A plain base64 encoder (with padding), to check the forms against.
    fn base64(bytes: &[u8]) -> String {
        let mut out = String::new();
        for group in bytes.chunks(3) {
            let value = (u32::from(group[0]) << 16)
                | (u32::from(group.get(1).copied().unwrap_or(0)) << 8)
                | u32::from(group.get(2).copied().unwrap_or(0));
            for index in 0..4 {
                if index <= group.len() {
                    let digit = (value >> (18 - 6 * index)) & 0x3f;
                    out.push(char::from(BASE64_STANDARD[digit as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn the_key_and_its_long_pieces_are_removed_and_nothing_else() {
        let basic = base64(format!("user:{KEY}").as_bytes());
        let basic_empty_user = base64(format!(":{KEY}").as_bytes());
        let bare = base64(KEY.as_bytes());
        let cases: Vec<(&str, String, String)> = vec![
            (
                "nothing to remove",
                "Rate limit reached for gpt-4o".into(),
                "Rate limit reached for gpt-4o".into(),
            ),
            ("empty text", String::new(), String::new()),
            (
                "the whole key",
                format!("Incorrect API key provided: {KEY}."),
                "Incorrect API key provided: [redacted].".into(),
            ),
            (
                "twice",
                format!("{KEY} and {KEY}"),
                "[redacted] and [redacted]".into(),
            ),
            (
                "a masked echo",
                "Incorrect API key provided: sk-proj-Q7vL****1AeU.".into(),
                "Incorrect API key provided: [redacted]****1AeU.".into(),
            ),
            (
                "a piece from the middle",
                "key x2mN9pRt4W used".into(),
                "key [redacted] used".into(),
            ),
            (
                "exactly eight characters",
                "got Rt4WzK8y!".into(),
                "got [redacted]!".into(),
            ),
            (
                "seven characters stay",
                "got Rt4WzK8 and sk-proj".into(),
                "got Rt4WzK8 and sk-proj".into(),
            ),
            (
                "the key in a header",
                format!("Authorization: Bearer {KEY}"),
                "Authorization: Bearer [redacted]".into(),
            ),
            (
                "the key in a URL",
                format!("GET /v1/models?key={KEY}&alt=sse"),
                "GET /v1/models?key=[redacted]&alt=sse".into(),
            ),
            (
                "glued to other text",
                format!("x{KEY}y"),
                "x[redacted]y".into(),
            ),
            // Only the characters that also hold bits of other bytes (or padding) stay.
            (
                "the key's base64",
                format!("token {bare}"),
                format!("token [redacted]{}", &bare[53..]),
            ),
            (
                "basic auth with a user",
                format!("Basic {basic}"),
                format!("Basic {}[redacted]", &basic[..7]),
            ),
            (
                "basic auth without a user",
                format!("Basic {basic_empty_user}"),
                format!(
                    "Basic {}[redacted]{}",
                    &basic_empty_user[..2],
                    &basic_empty_user[54..]
                ),
            ),
            (
                "non-ASCII around it",
                format!("clé «{KEY}» refusée"),
                "clé «[redacted]» refusée".into(),
            ),
        ];
        let redactor = KeyRedactor::new(KEY);
        for (name, text, expected) in cases {
            assert_eq!(redactor.redact(&text), expected, "{name}");
            assert_eq!(redact_key(&text, KEY), expected, "{name}");
        }
    }

    #[test]
    fn encoded_forms_of_a_key_with_reserved_characters_are_removed() {
        let key = "lm-studio/Xy9+Qw3=Zr8 Kp2";
        let cases: Vec<(&str, &str, &str)> = vec![
            (
                "plain",
                "key lm-studio/Xy9+Qw3=Zr8 Kp2 refused",
                "key [redacted] refused",
            ),
            (
                "percent-encoded",
                "GET /v1?key=lm-studio%2FXy9%2BQw3%3DZr8%20Kp2",
                "GET /v1?key=[redacted]",
            ),
            (
                "lowercase hex",
                "GET /v1?key=lm-studio%2fXy9%2bQw3%3dZr8%20Kp2",
                "GET /v1?key=[redacted]",
            ),
            (
                "form-encoded",
                "key=lm-studio%2FXy9%2BQw3%3DZr8+Kp2&x=1",
                "key=[redacted]&x=1",
            ),
            (
                "a piece of the encoded form",
                "…Xy9%2BQw3%3DZr8…",
                "…[redacted]…",
            ),
        ];
        let redactor = KeyRedactor::new(key);
        for (name, text, expected) in cases {
            assert_eq!(redactor.redact(text), expected, "{name}");
        }
    }

    #[test]
    fn short_keys_are_removed_whole_and_an_empty_key_removes_nothing() {
        let cases: Vec<(&str, &str, &str, &str)> = vec![
            (
                "a short key whole",
                "secret",
                "bad key secret",
                "bad key [redacted]",
            ),
            (
                "a short key's pieces stay",
                "secret",
                "bad key secre",
                "bad key secre",
            ),
            ("an empty key", "", "nothing to do", "nothing to do"),
        ];
        for (name, key, text, expected) in cases {
            assert_eq!(redact_key(text, key), expected, "{name}");
        }
    }

    #[test]
    fn base64_forms_match_an_encoder_at_every_alignment() {
        for prefix in ["", "u", "us", "use", "user:"] {
            let encoded = base64(format!("{prefix}{KEY}").as_bytes());
            let inner = base64_inner(KEY.as_bytes(), prefix.len() % 3, BASE64_STANDARD);
            assert!(encoded.contains(&inner), "{prefix:?}: {inner} in {encoded}");
            assert!(inner.len() >= KEY.len() * 4 / 3 - 2, "{prefix:?}");
        }
    }
}
