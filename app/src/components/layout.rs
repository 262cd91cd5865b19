use leptos::prelude::*;
use leptos_router::components::A;

use crate::preferences::{choose_theme, use_preferences};
use crate::types::Theme;

/// The application frame: header, sidebar navigation and the main area pages fill.
#[component]
pub fn AppLayout(children: Children) -> impl IntoView {
    view! {
        <div class="app-shell">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="app-header">
                <a class="brand" href="/">
                    <img src="/icons/icon.svg" alt="" width="24" height="24"/>
                    <span>"Async Coder"</span>
                </a>
                <div class="header-actions">
                    <ThemeToggle/>
                    <super::AccountMenu/>
                </div>
            </header>
            <div class="app-body">
                <nav class="sidebar" aria-label="Main">
                    <ul>
                        <li>
                            <A href="/" exact=true>"Home"</A>
                        </li>
                        <li>
                            <A href="/projects">"Projects"</A>
                        </li>
                        <li>
                            <A href="/chat">"Chat"</A>
                        </li>
                        <li>
                            <A href="/account">"Account"</A>
                        </li>
                        <li>
                            <A href="/settings/providers">"AI providers"</A>
                        </li>
                        <li>
                            <A href="/settings" exact=true>"Settings"</A>
                        </li>
                        <li>
                            <A href="/admin">"Administration"</A>
                        </li>
                    </ul>
                </nav>
                <main id="main" class="app-main" tabindex="-1">
                    {children()}
                </main>
            </div>
        </div>
    }
}

/// Cycles light → dark → system and saves the choice.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let preferences = use_preferences();
    let label = move || {
        let theme = preferences.theme.get();
        format!(
            "Theme: {}. Switch to {}.",
            theme.label(),
            theme.next().label()
        )
    };
    let icon = move || match preferences.theme.get() {
        Theme::Light => "☀",
        Theme::Dark => "☾",
        Theme::System => "◐",
    };
    view! {
        <button
            type="button"
            id="theme-toggle"
            class="button button-ghost theme-toggle"
            aria-label=label
            title=label
            data-theme-choice=move || preferences.theme.get().as_str()
            on:click=move |_| choose_theme(preferences.theme.get_untracked().next(), false)
        >
            <span aria-hidden="true">{icon}</span>
            <span class="theme-toggle-text">{move || preferences.theme.get().label()}</span>
        </button>
    }
}
