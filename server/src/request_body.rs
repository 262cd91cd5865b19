//! What a server function may be sent. Before any server function reads its arguments, the
//! request of every `/api/` endpoint is checked in the encoding the endpoint decodes it with
//! (whatever its `Content-Type` says, since server functions do not look at it):
//!
//! - a form (the default encoding, and every query string): the body is UTF-8 text, and every
//!   field's name and value, percent-decoded, is UTF-8 text without NUL characters (`%FF` would
//!   otherwise become replacement characters, and `%00` a NUL that Postgres refuses and SQLite
//!   stores);
//! - JSON ([`JSON_ENDPOINTS`]): the body is one JSON document, and no string in it (names of
//!   members included) holds a NUL character.
//!
//! Anything else is refused with 400 and a message saying what is wrong, before the server
//! function runs. No server function takes binary data in its arguments (file contents saved
//! from the editor are text); the one endpoint whose body is binary, the import's archive, is
//! left to its handler, unread. The body has passed the size limit of `http_layers` on its way
//! here: reading it stops at that limit, and that layer turns the failure into a 413. This layer
//! sits inside the session check, so a caller without a session is refused before the body is
//! read.

use std::cell::RefCell;
use std::fmt;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The server functions whose arguments arrive as JSON (`input = Json`); every other one reads
/// a form. `server/tests/bad_input.rs` derives this list from the registered server functions,
/// so a new JSON endpoint cannot be forgotten here.
pub const JSON_ENDPOINTS: &[&str] = &[
    "/api/chat/send",
    "/api/chat/edit",
    "/api/chat/modes/save",
    "/api/chat/context/preview",
    "/api/agent/start",
    "/api/agent/resume",
    "/api/agent/follow-up",
    "/api/agent/apply",
    "/api/agent/reject",
];

/// `/api/` endpoints whose body is not a server function's arguments and is read by their own
/// handler: the import's raw archive (with its own size limit).
const RAW_BODY_ENDPOINTS: &[&str] = &[crate::project_archives::IMPORT_PATH];

/// How much of a field's name a message quotes.
const SHOWN_NAME_CHARS: usize = 60;

/// The middleware: checks the query string and the body of an `/api/` request, and passes it on
/// unchanged when they are well-formed.
pub async fn check_api_request(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    if let Some(query) = request.uri().query()
        && let Err(problem) = check_form(query)
    {
        return refuse(&problem);
    }
    if RAW_BODY_ENDPOINTS.contains(&path) || matches!(*request.method(), Method::GET | Method::HEAD)
    {
        return next.run(request).await;
    }
    let task_api = path.starts_with(crate::tasks_api::PREFIX);
    let json = JSON_ENDPOINTS.contains(&path) || task_api;
    let (parts, body) = request.into_parts();
    // The body arrives limited by `http_layers`: past the limit this fails, and that layer
    // answers 413 instead of this 400.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return refuse("The request's body could not be read.");
    };
    let checked = if json {
        // A task's action (cancel, pause, resume) may come without a body.
        if bytes.is_empty() && task_api {
            Ok(())
        } else {
            check_json(&bytes)
        }
    } else {
        std::str::from_utf8(&bytes)
            .map_err(|_| {
                "The request's body is not UTF-8 text: a form is sent as UTF-8, with other \
                 bytes percent-encoded."
                    .to_owned()
            })
            .and_then(check_form)
    };
    if let Err(problem) = checked {
        return refuse(&problem);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 400 with the app's error, as server functions answer theirs.
fn refuse(problem: &str) -> Response {
    let error = app::error::AppError::BadRequest(problem.to_owned());
    let body = serde_json::to_string(&error).unwrap_or_else(|_| problem.to_owned());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `application/x-www-form-urlencoded` decoding, as server functions decode their fields (and
/// browsers encode them): `+` is a space, `%XX` the byte `XX`; a `%` not followed by two
/// hexadecimal digits stays as it is.
pub(crate) fn form_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (byte, escaped) {
            (_, Some(value)) => {
                decoded.push(value);
                index += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                index += 1;
            }
            (other, None) => {
                decoded.push(other);
                index += 1;
            }
        }
    }
    decoded
}

/// Every field of a form (`name=value&…`): name and value, percent-decoded, are UTF-8 text
/// without NUL. The message names the field.
fn check_form(form: &str) -> Result<(), String> {
    for pair in form.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded_name = form_decode(name);
        let shown = shown_name(&decoded_name);
        for part in [decoded_name, form_decode(value)] {
            let Ok(text) = String::from_utf8(part) else {
                return Err(format!(
                    "The field {shown} is not UTF-8 text once percent-decoded (a byte such as \
                     %FF is not a character): encode text as UTF-8 before percent-encoding it."
                ));
            };
            if text.contains('\0') {
                return Err(format!(
                    "The field {shown} contains a NUL character (%00), which text cannot hold."
                ));
            }
        }
    }
    Ok(())
}

/// A field's name as a message quotes it: lossy, shortened, control characters escaped.
fn shown_name(name: &[u8]) -> String {
    let escaped: String = String::from_utf8_lossy(name)
        .chars()
        .flat_map(char::escape_debug)
        .take(SHOWN_NAME_CHARS)
        .collect();
    format!("\"{escaped}\"")
}

/// The body is one JSON document without a NUL in any string (member names included). Walked
/// without building the document: nothing is kept but the name of the member being read.
fn check_json(body: &[u8]) -> Result<(), String> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let scanned = NulScan {
        found: &found,
        member: "",
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match (scanned, found.into_inner()) {
        (_, Some(member)) if member.is_empty() => {
            Err("The request contains a NUL character (\\u0000), which text cannot hold.".into())
        }
        (_, Some(member)) => Err(format!(
            "The field {} contains a NUL character (\\u0000), which text cannot hold.",
            shown_name(member.as_bytes())
        )),
        (Err(error), None) => Err(format!("The request's body is not valid JSON: {error}.")),
        (Ok(()), None) => Ok(()),
    }
}

/// Walks one JSON value; on the first string holding a NUL it records the name of the member
/// it belongs to (empty outside any object) and stops.
struct NulScan<'a> {
    found: &'a RefCell<Option<String>>,
    member: &'a str,
}

impl NulScan<'_> {
    fn text<E: de::Error>(&self, text: &str, member: &str) -> Result<(), E> {
        if text.contains('\0') {
            *self.found.borrow_mut() = Some(member.to_owned());
            return Err(E::custom("a NUL character"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for NulScan<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NulScan<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.text(text, self.member)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<(), A::Error> {
        while sequence
            .next_element_seed(NulScan {
                found: self.found,
                member: self.member,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            self.text::<A::Error>(&name, &name)?;
            map.next_value_seed(NulScan {
                found: self.found,
                member: &name,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_text_pass_unchanged() {
        for form in [
            "",
            "id=0190&title=Hello+world",
            "name=na%C3%AFve&path=src%2Fmain.rs&content=%F0%9F%A6%80",
            "draft%5Bname%5D=x&flag",
            "percent=100%&odd=%G1%2",
            "a==b&&c",
        ] {
            assert_eq!(check_form(form), Ok(()), "{form}");
        }
    }

    #[test]
    fn forms_with_bytes_that_are_not_text_are_refused_naming_the_field() {
        for (form, field, reason) in [
            ("id=1&title=a%FFb", "\"title\"", "not UTF-8"),
            ("title=%C3", "\"title\"", "not UTF-8"),
            ("ti%FFtle=x", "\"ti\u{FFFD}tle\"", "not UTF-8"),
            ("id=1&name=a%00b", "\"name\"", "NUL"),
            ("na%00me=x", "\"na\\0me\"", "NUL"),
            ("content=a\0b", "\"content\"", "NUL"),
        ] {
            let message = check_form(form).unwrap_err();
            assert!(
                message.contains(field) && message.contains(reason),
                "{form}: {message}"
            );
        }
    }

    #[test]
    fn json_without_nul_passes_and_with_nul_is_refused_naming_the_member() {
        for body in [
            r#"{"conversation_id":"x","text":"a\u0001b %FF %00","context":null}"#,
            r#"{"draft":{"name":"n","models":["a","b"],"max_context_tokens":4294967295}}"#,
            r#"[1, -2, 3.5, true, null, "x", 123456789012345678901234567890]"#,
            " \"text\" ",
        ] {
            assert_eq!(check_json(body.as_bytes()), Ok(()), "{body}");
        }
        for (body, shown) in [
            (r#"{"text":"a\u0000b"}"#, "\"text\""),
            (r#"{"draft":{"name":"x\u0000"}}"#, "\"name\""),
            (r#"{"list":["ok","\u0000"]}"#, "\"list\""),
            (r#"{"na\u0000me":1}"#, "\"na\\0me\""),
        ] {
            let message = check_json(body.as_bytes()).unwrap_err();
            assert!(
                message.contains(shown) && message.contains("NUL"),
                "{body}: {message}"
            );
        }
        let message = check_json(br#""\u0000""#).unwrap_err();
        assert!(message.contains("NUL"), "{message}");
    }

    #[test]
    fn malformed_json_is_refused_saying_so() {
        for body in [
            &b""[..],
            b"{",
            b"{\"text\":",
            b"{\"text\":\"a\"} trailing",
            b"{\"text\":\"\xFF\"}",
            b"{\"text\":\"\\ud800\"}",
            b"text=hello",
        ] {
            let message = check_json(body).unwrap_err();
            assert!(
                message.starts_with("The request's body is not valid JSON"),
                "{body:?}: {message}"
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(check_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn form_decoding_follows_the_form_encoding() {
        assert_eq!(form_decode("a+b%20c%2B%zz%4"), b"a b c+%zz%4");
        assert_eq!(form_decode("%ff%FF"), [0xFF, 0xFF]);
    }
}
