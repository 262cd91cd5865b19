//! The display preferences of the page being shown, as signals, kept in step with the `<html>`
//! element's `data-theme` and `--editor-font-size` and with the cookies on the server.

use leptos::prelude::*;

use crate::api::settings::{reset_preferences, set_editor_font_size, set_theme};
use crate::components::{ToastKind, use_toaster};
use crate::error::AppError;
use crate::types::{Preferences, Theme};

#[derive(Clone, Copy)]
pub struct PreferencesState {
    pub theme: RwSignal<Theme>,
    pub editor_font_size: RwSignal<u8>,
}

/// Provides the preferences to the app: on the server from the request's cookies, in the browser
/// from what the server rendered into `<html>` (so hydration sees the same values).
pub fn provide_preferences() -> PreferencesState {
    let initial = initial_preferences();
    let state = PreferencesState {
        theme: RwSignal::new(initial.theme),
        editor_font_size: RwSignal::new(initial.editor_font_size),
    };
    Effect::new(move |_| {
        let theme = state.theme.get();
        let font_size = state.editor_font_size.get();
        if let Some(root) = document().document_element() {
            let applied = root
                .set_attribute("data-theme", theme.as_str())
                .and_then(|()| {
                    root.set_attribute("style", &format!("--editor-font-size: {font_size}px"))
                });
            if let Err(error) = applied {
                leptos::logging::error!("could not apply the preferences: {error:?}");
            }
        }
    });
    provide_context(state);
    state
}

pub fn use_preferences() -> PreferencesState {
    expect_context::<PreferencesState>()
}

#[cfg(feature = "ssr")]
fn initial_preferences() -> Preferences {
    crate::api::settings::preferences_of_request()
}

#[cfg(not(feature = "ssr"))]
fn initial_preferences() -> Preferences {
    let mut preferences = Preferences::default();
    if let Some(root) = document().document_element() {
        if let Some(theme) = root
            .get_attribute("data-theme")
            .and_then(|text| text.parse().ok())
        {
            preferences.theme = theme;
        }
        if let Some(size) = root
            .get_attribute("data-editor-font-size")
            .and_then(|text| crate::types::parse_editor_font_size(&text).ok())
        {
            preferences.editor_font_size = size;
        }
    }
    preferences
}

/// Applies `theme` at once and saves it; on failure the previous theme comes back and a toast
/// says why.
pub fn choose_theme(theme: Theme, announce: bool) {
    let state = use_preferences();
    let toaster = use_toaster();
    let previous = state.theme.get_untracked();
    state.theme.set(theme);
    leptos::task::spawn_local(async move {
        match set_theme(theme.as_str().to_owned()).await {
            Ok(saved) => {
                if announce {
                    toaster.show(
                        ToastKind::Success,
                        format!("Theme set to {}.", saved.label()),
                    );
                }
            }
            Err(error) => {
                state.theme.set(previous);
                toaster.show(
                    ToastKind::Error,
                    format!("The theme was not saved. {error}"),
                );
            }
        }
    });
}

/// Saves the editor font size typed by a person. Returns the server's refusal, if any, for the
/// form to show next to the field.
pub async fn save_editor_font_size(text: String) -> Result<u8, AppError> {
    let state = use_preferences();
    let size = set_editor_font_size(text).await?;
    state.editor_font_size.set(size);
    Ok(size)
}

pub async fn reset() -> Result<Preferences, AppError> {
    let state = use_preferences();
    let preferences = reset_preferences().await?;
    state.theme.set(preferences.theme);
    state.editor_font_size.set(preferences.editor_font_size);
    Ok(preferences)
}
