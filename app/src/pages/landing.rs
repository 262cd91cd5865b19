use leptos::prelude::*;
use leptos_meta::{Meta, Title};

use crate::components::{AccountMenu, ThemeToggle};

struct Mode {
    name: &'static str,
    summary: &'static str,
}

const MODES: [Mode; 7] = [
    Mode {
        name: "Chat",
        summary: "Talk through an idea with a model that sees your project.",
    },
    Mode {
        name: "Ask",
        summary: "Read-only questions about the codebase, answered from the code itself.",
    },
    Mode {
        name: "Debug",
        summary: "Paste errors, logs or failing test output; get the cause and a fix.",
    },
    Mode {
        name: "Documentation",
        summary: "Write and update docs that match what the code really does.",
    },
    Mode {
        name: "Architect",
        summary: "Plan a change across files before a single line is written.",
    },
    Mode {
        name: "Review",
        summary: "Comments on a diff or a set of files, like a careful colleague.",
    },
    Mode {
        name: "Async",
        summary: "An agent works on a task in the background, in its own copy of the project, and hands back a change set you review hunk by hunk.",
    },
];

/// The public front page: what Async Coder is, for someone who has never seen it.
#[component]
pub fn LandingPage() -> impl IntoView {
    crate::mark_hydrated();
    view! {
        <Title text="Async Coder: a self-hosted AI coding workspace"/>
        <Meta
            name="description"
            content="Async Coder is a self-hostable, multi-user AI coding workspace in the browser."
        />
        <div class="landing">
            <header class="landing-header">
                <a class="brand" href="/">
                    <img src="/icons/icon.svg" alt="" width="28" height="28"/>
                    <span>"Async Coder"</span>
                </a>
                <nav class="landing-nav" aria-label="Site">
                    <a href="/settings">"Settings"</a>
                    <ThemeToggle/>
                    <AccountMenu/>
                </nav>
            </header>
            <main id="main" class="landing-main">
                <section class="hero">
                    <h1>"Your AI coding workspace, on your own server."</h1>
                    <p class="hero-lead">
                        "Async Coder is a self-hostable, multi-user workspace in the browser: open a project, "
                        "edit it in a full code editor, and work with AI models that see the code that matters."
                    </p>
                    <p class="hero-actions">
                        <a class="button button-primary" href="/projects">"Open your projects"</a>
                        <a class="button button-secondary" href="#modes">"See the modes"</a>
                    </p>
                </section>

                <section class="features" aria-labelledby="features-title">
                    <h2 id="features-title">"Why teams run it themselves"</h2>
                    <ul class="feature-grid">
                        <li>
                            <h3>"Your keys, your models"</h3>
                            <p>
                                "Bring keys for OpenAI, Anthropic or Google Gemini, or point it at a local "
                                "OpenAI-compatible server such as Ollama, llama.cpp or vLLM. Keys are encrypted at rest."
                            </p>
                        </li>
                        <li>
                            <h3>"Context that fits"</h3>
                            <p>
                                "A repository map ranks the files related to your request and fits them into the "
                                "model's budget, and shows you what was sent and why."
                            </p>
                        </li>
                        <li>
                            <h3>"Every token accounted for"</h3>
                            <p>
                                "Each call records its input, output, cached and reasoning tokens and its cost, "
                                "per person and per conversation."
                            </p>
                        </li>
                        <li>
                            <h3>"Built for many people"</h3>
                            <p>
                                "Accounts and plan tiers, with each person's projects and keys kept to themselves. "
                                "Runs on an embedded SQLite database or on Postgres."
                            </p>
                        </li>
                    </ul>
                </section>

                <section class="modes" id="modes" aria-labelledby="modes-title">
                    <h2 id="modes-title">"Ways to work with AI"</h2>
                    <dl class="mode-list">
                        {MODES
                            .iter()
                            .map(|mode| {
                                view! {
                                    <div class="mode">
                                        <dt>{mode.name}</dt>
                                        <dd>{mode.summary}</dd>
                                    </div>
                                }
                            })
                            .collect_view()}
                    </dl>
                </section>

                <section class="install" aria-labelledby="install-title">
                    <h2 id="install-title">"Installable"</h2>
                    <p>
                        "Add Async Coder to your home screen or dock from your browser's menu: it opens in its "
                        "own window and starts instantly."
                    </p>
                </section>
            </main>
            <footer class="landing-footer">
                <p>"Async Coder is free software you host yourself."</p>
            </footer>
        </div>
    }
}
