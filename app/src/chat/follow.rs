//! Following an answer in the browser: an `EventSource` on the answer's events endpoint. The
//! browser reconnects by itself after a network error and sends `Last-Event-ID`, so the server
//! goes on from the last event this page applied; nothing is applied twice.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use super::{ChatState, Slot};
use crate::types::{AnswerEvent, ChatMessage};

pub struct Follower {
    source: web_sys::EventSource,
    _on_answer: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
    ticker: Option<leptos::prelude::IntervalHandle>,
}

impl Follower {
    pub fn close(self) {
        drop(self);
    }
}

/// However a follower goes (closed, replaced, or dropped because the panel went away), its
/// stream stops: an EventSource left open would reconnect for the rest of the session.
impl Drop for Follower {
    fn drop(&mut self) {
        self.source.close();
        if let Some(ticker) = self.ticker.take() {
            ticker.clear();
        }
    }
}

/// Applies one event to the message on screen; `true` when the answer is over.
pub fn apply(message: &mut ChatMessage, event: AnswerEvent) -> bool {
    match event {
        AnswerEvent::Resumed { text } => message.content = text,
        AnswerEvent::Answering {
            provider,
            model,
            fallback,
        } => {
            message.provider = Some(provider);
            message.model = Some(model);
            message.fallback = fallback;
        }
        AnswerEvent::Text { text } => message.content.push_str(&text),
        AnswerEvent::Reasoning { text } => message
            .reasoning
            .get_or_insert_with(String::new)
            .push_str(&text),
        AnswerEvent::Finished {
            status,
            reason,
            tokens,
            cost,
            system_prompt,
        } => {
            message.system_prompt = system_prompt;
            message.status = status;
            message.reason = reason;
            message.tokens = tokens;
            message.cost = cost;
            return true;
        }
        AnswerEvent::Stored { message: stored } => {
            *message = stored;
            return true;
        }
    }
    false
}

/// Forgets (and closes) the follower of `id` once the current event handler has returned.
fn forget_later(state: ChatState, id: String) {
    leptos::task::spawn_local(async move {
        state.followers.update_value(|followers| {
            if let Some(follower) = followers.remove(&id) {
                follower.close();
            }
        });
    });
}

pub fn start(state: ChatState, slot: Slot, after: u64) {
    let id = slot.id.clone();
    state.followers.update_value(|followers| {
        if let Some(previous) = followers.remove(&id) {
            previous.close();
        }
    });
    let url = format!("/api/chat/answers/{id}/events?after={after}");
    let source = match web_sys::EventSource::new(&url) {
        Ok(source) => source,
        Err(_) => {
            state.error.set(Some(
                "The browser could not open the answer's stream.".into(),
            ));
            return;
        }
    };
    let data = slot.data;
    let waited = slot.waited;
    let on_answer = {
        let id = id.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            let Ok(answer_event) = serde_json::from_str::<AnswerEvent>(&text) else {
                leptos::logging::warn!("an answer event could not be read: {text}");
                return;
            };
            let mut finished = false;
            data.update(|message| finished = apply(message, answer_event));
            if finished {
                if let Some(source) = event
                    .target()
                    .and_then(|target| target.dyn_into::<web_sys::EventSource>().ok())
                {
                    source.close();
                }
                forget_later(state, id.clone());
            }
        })
    };
    let on_error = {
        let id = id.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let closed = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::EventSource>().ok())
                .is_some_and(|source| source.ready_state() == web_sys::EventSource::CLOSED);
            // While connecting again the browser retries by itself; closed means refused.
            if closed {
                data.update(|message| {
                    if message.status == "streaming" {
                        message.reason = Some(
                            "Lost the connection to this answer; reload the page to see it.".into(),
                        );
                    }
                });
                forget_later(state, id.clone());
            }
        })
    };
    if source
        .add_event_listener_with_callback("answer", on_answer.as_ref().unchecked_ref())
        .is_err()
    {
        source.close();
        return;
    }
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let ticker = leptos::prelude::set_interval_with_handle(
        move || {
            let waiting = data.with_untracked(|message| {
                message.status == "streaming" && message.content.is_empty()
            });
            if waiting {
                waited.update(|seconds| *seconds += 1);
            }
        },
        std::time::Duration::from_secs(1),
    )
    .ok();
    state.followers.update_value(|followers| {
        followers.insert(
            id,
            Follower {
                source,
                _on_answer: on_answer,
                _on_error: on_error,
                ticker,
            },
        );
    });
}
