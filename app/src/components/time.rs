use leptos::prelude::*;

/// A readable form of an RFC 3339 UTC instant, as the server renders it before the browser
/// knows the reader's time zone: `2026-12-06 21:50 UTC`. Anything else is shown as it is.
pub fn readable_utc(at: &str) -> String {
    match (at.get(..10), at.get(11..16)) {
        (Some(date), Some(time)) if at.len() >= 16 && at.as_bytes().get(10) == Some(&b'T') => {
            format!("{date} {time} UTC")
        }
        _ => at.to_owned(),
    }
}

/// An instant shown in the reader's own time zone and language (`6 Dec 2026, 22:50`), with the
/// exact UTC instant in `datetime` and as the tooltip. The server renders it in UTC; the
/// browser rewrites it after hydration, so the two renders agree.
#[component]
pub fn LocalTime(
    /// RFC 3339 (`2026-12-06T21:50:12Z`).
    #[prop(into)]
    at: String,
) -> impl IntoView {
    let text = RwSignal::new(readable_utc(&at));
    #[cfg(feature = "hydrate")]
    {
        let at = at.clone();
        Effect::new(move |_| {
            let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&at));
            if !date.get_time().is_nan() {
                let options = js_sys::Object::new();
                for (key, value) in [("dateStyle", "medium"), ("timeStyle", "short")] {
                    if js_sys::Reflect::set(&options, &key.into(), &value.into()).is_err() {
                        return;
                    }
                }
                let local: String = date.to_locale_string("default", &options).into();
                text.set(local);
            }
        });
    }
    view! {
        <time datetime=at.clone() title=readable_utc(&at)>
            {move || text.get()}
        </time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_instants_read_as_date_and_minute() {
        assert_eq!(readable_utc("2026-12-06T21:50:12Z"), "2026-12-06 21:50 UTC");
        assert_eq!(
            readable_utc("2026-12-06T21:50:12.123+00:00"),
            "2026-12-06 21:50 UTC"
        );
        assert_eq!(readable_utc("yesterday"), "yesterday");
    }
}
