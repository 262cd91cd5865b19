//! Following a task's timeline in the browser: an `EventSource` on `/api/tasks/<id>/events`.
//! The browser reconnects by itself after a network error and sends `Last-Event-ID` (the
//! journal's number of the last entry applied), so nothing is applied twice; the stream ends with
//! a `state` event once the task stops running.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::types::{TaskSummary, TaskTimelineEntry};

/// An open stream; dropping it closes it.
pub struct TaskFollower {
    source: web_sys::EventSource,
    _on_entry: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_state: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for TaskFollower {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// Follows task `id` from after entry `after`: `on_entry` gets each new entry, `on_state` the
/// task once it stopped running, `on_lost` a note when the stream was refused for good.
pub fn follow(
    id: &str,
    after: i64,
    on_entry: impl Fn(TaskTimelineEntry) + 'static,
    on_state: impl Fn(TaskSummary) + 'static,
    on_lost: impl Fn(String) + 'static,
) -> Result<TaskFollower, String> {
    let url = format!("/api/tasks/{id}/events?after={after}");
    let source = web_sys::EventSource::new(&url)
        .map_err(|_| "The browser could not open the task's stream.".to_owned())?;
    let on_entry =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<TaskTimelineEntry>(&text) {
                Ok(entry) => on_entry(entry),
                Err(error) => leptos::logging::warn!("a task entry could not be read: {error}"),
            }
        });
    let on_state =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(source) = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::EventSource>().ok())
            {
                source.close();
            }
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<TaskSummary>(&text) {
                Ok(task) => on_state(task),
                Err(error) => leptos::logging::warn!("a task state could not be read: {error}"),
            }
        });
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        let closed = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::EventSource>().ok())
            .is_some_and(|source| source.ready_state() == web_sys::EventSource::CLOSED);
        // While connecting again the browser retries by itself; closed means refused or over.
        if closed {
            on_lost("Lost the connection to this task; reload the page to see where it is.".into());
        }
    });
    let listening = source
        .add_event_listener_with_callback("entry", on_entry.as_ref().unchecked_ref())
        .and_then(|()| {
            source.add_event_listener_with_callback("state", on_state.as_ref().unchecked_ref())
        });
    if listening.is_err() {
        source.close();
        return Err("The browser could not listen to the task's stream.".into());
    }
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok(TaskFollower {
        source,
        _on_entry: on_entry,
        _on_state: on_state,
        _on_error: on_error,
    })
}
