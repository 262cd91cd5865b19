//! The design system: small, accessible building blocks every page uses.

mod button;
mod card;
mod input;
mod layout;
mod modal;
mod select;
mod session;
mod time;
mod toast;

pub use button::{Button, ButtonVariant};
pub use card::Card;
pub use input::Input;
pub use layout::{AppLayout, ThemeToggle};
pub use modal::Modal;
pub use select::Select;
pub use session::{AccountMenu, Session, provide_session};
pub use time::{LocalTime, readable_utc};
pub use toast::{ToastKind, ToastRegion, Toaster, provide_toaster, use_toaster};

use leptos::prelude::*;

/// Sets the signal only when the value differs, so two effects that keep a pair of signals in
/// step (a dialog's `open` and what it shows) cannot wake each other forever.
pub fn set_if_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    signal.maybe_update(|current| {
        if *current == value {
            false
        } else {
            *current = value;
            true
        }
    });
}
