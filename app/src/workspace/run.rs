//! The Run panel: a project's commands (saved, or suggested by its files and never run
//! unasked), a run's output streamed live (numbered events through an `EventSource`, which
//! reconnects with `Last-Event-ID`), stop, how it ended (exit code, signal, duration,
//! truncation), `file:line` locations as links that open the file at that line, "Send to chat",
//! and the last runs. A run uses the saved files: unsaved editor changes are named as not
//! included.

use leptos::prelude::*;

use super::ansi::{Style, styled_runs};
use super::state::Workspace;
use crate::api::runner::{load_project_runner, save_project_command, start_run, stop_run};
use crate::components::{Button, ButtonVariant, ToastKind, use_toaster};
use crate::types::{CommandRunEvent, CommandRunOutcome, TreeFile};

/// One line of output, split into styled text and locations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLine {
    pub number: usize,
    pub stderr: bool,
    pub parts: Vec<StyledPart>,
}

/// A piece of an output line with its ANSI style, as CSS classes (empty: plain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StyledPart {
    pub classes: String,
    pub part: Part,
}

/// A line as shown: its ANSI colours (starting in `style`, which it leaves as the line ends)
/// and the locations each coloured piece names.
pub fn styled_line(line: &str, style: &mut Style, files: &[TreeFile]) -> Vec<StyledPart> {
    let runs = styled_runs(line, style);
    if runs.is_empty() {
        return vec![StyledPart {
            classes: String::new(),
            part: Part::Text(String::new()),
        }];
    }
    runs.into_iter()
        .flat_map(|(style, text)| {
            let classes = style.classes();
            split_locations(&text, files)
                .into_iter()
                .map(move |part| StyledPart {
                    classes: classes.clone(),
                    part,
                })
        })
        .collect()
}

/// A piece of an output line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A location in a project file: the text shown, the file's id, the line.
    Location {
        text: String,
        file_id: String,
        line: u32,
    },
}

/// What the panel shows of the run it follows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Shown {
    run_id: Option<String>,
    command: String,
    revision: String,
    running: bool,
    outcome: Option<CommandRunOutcome>,
    failure: Option<String>,
    /// Bytes left out, by stream, as they were reported.
    omitted: u64,
}

/// Removes ANSI escape sequences (colours, cursor movement) from `text`.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        if character == '\u{1b}' {
            if characters.peek() == Some(&'[') {
                characters.next();
                // Parameters and intermediates, then one final byte in @..~.
                for next in characters.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            } else {
                characters.next();
            }
            continue;
        }
        if character != '\r' {
            out.push(character);
        }
    }
    out
}

fn is_path_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '/' | '-' | '+' | '@')
}

/// The project file a path printed by a tool names: the same path, or the longest project
/// path that the printed one ends with (tools print absolute or worktree-relative paths).
pub fn resolve<'a>(printed: &str, files: &'a [TreeFile]) -> Option<&'a TreeFile> {
    let printed = printed.trim_start_matches("./");
    files
        .iter()
        .filter(|file| {
            printed == file.path
                || (printed.len() > file.path.len()
                    && printed.ends_with(&file.path)
                    && printed.as_bytes()[printed.len() - file.path.len() - 1] == b'/')
        })
        .max_by_key(|file| file.path.len())
}

/// Splits a line into text and the locations it names that resolve to project files:
/// `path:line[:column]` (rustc, tsc, eslint, pytest, Go, Node) and `File "path", line N`
/// (Python tracebacks).
pub fn split_locations(line: &str, files: &[TreeFile]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text_start = 0;
    let bytes = line.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let character = bytes[index] as char;
        let at_boundary = index == 0 || !is_path_character(bytes[index - 1] as char);
        if !(at_boundary && is_path_character(character)) {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = start;
        while end < bytes.len() && is_path_character(bytes[end] as char) {
            end += 1;
        }
        let path = &line[start..end];
        // `:12` or `", line 12`.
        let rest = &line[end..];
        let (digits_at, shown_end) = if let Some(after) = rest.strip_prefix(':') {
            let count = after.bytes().take_while(u8::is_ascii_digit).count();
            (Some((end + 1, count)), end + 1 + count)
        } else if let Some(after) = rest.strip_prefix("\", line ") {
            let count = after.bytes().take_while(u8::is_ascii_digit).count();
            (Some((end + 8, count)), end + 8 + count)
        } else {
            (None, end)
        };
        let location = digits_at
            .filter(|(_, count)| *count > 0 && path.contains('.'))
            .and_then(|(digits_start, count)| {
                let line_number: u32 = line[digits_start..digits_start + count].parse().ok()?;
                let file = resolve(path, files)?;
                Some((file.id.clone(), line_number.max(1)))
            });
        match location {
            Some((file_id, line_number)) => {
                if text_start < start {
                    parts.push(Part::Text(line[text_start..start].to_owned()));
                }
                parts.push(Part::Location {
                    text: line[start..shown_end].to_owned(),
                    file_id,
                    line: line_number,
                });
                text_start = shown_end;
                index = shown_end;
            }
            None => index = end.max(start + 1),
        }
    }
    if text_start < line.len() || parts.is_empty() {
        parts.push(Part::Text(line[text_start..].to_owned()));
    }
    parts
}

/// How a run ended, in words.
pub fn describe_outcome(outcome: &CommandRunOutcome) -> String {
    let mut words = Vec::new();
    match (outcome.exit_code, outcome.signal) {
        (Some(code), _) => words.push(format!("exit code {code}")),
        (None, Some(signal)) => words.push(format!("killed by signal {signal}")),
        (None, None) => words.push("ended".to_owned()),
    }
    if let (Some(_), Some(signal)) = (outcome.exit_code, outcome.signal) {
        words.push(format!("signal {signal}"));
    }
    words.push(format!("{:.2} s", outcome.duration_ms as f64 / 1000.0));
    if outcome.timed_out {
        words.push("timed out".to_owned());
    }
    if outcome.stopped {
        words.push("stopped".to_owned());
    }
    if outcome.omitted_bytes > 0 {
        words.push(format!(
            "output truncated: {} bytes left out",
            outcome.omitted_bytes
        ));
    }
    words.join(" · ")
}

/// The Run panel of the workspace's side column. `to_chat` receives text to attach to the
/// chat's message.
#[component]
pub fn RunPanel(workspace: Workspace, to_chat: Callback<String>) -> impl IntoView {
    let toaster = use_toaster();
    let refresh = RwSignal::new(0_u32);
    let runner = Resource::new(
        move || (workspace.project_id(), refresh.get()),
        |(project_id, _)| load_project_runner(project_id),
    );
    let chosen = RwSignal::new(String::new());
    let free_text = RwSignal::new(String::new());
    let new_name = RwSignal::new(String::new());
    let new_line = RwSignal::new(String::new());
    let lines = RwSignal::new(Vec::<OutputLine>::new());
    let shown = RwSignal::new(Shown::default());
    let follower = StoredValue::new_local(None::<follow::Follower>);
    // The partial last line of each stream, each stream's ANSI style where its last line ended,
    // and every line's text without escapes (for "send to chat").
    let partial = StoredValue::new([String::new(), String::new()]);
    let styles = StoredValue::new([Style::default(); 2]);
    let raw_lines = StoredValue::new(Vec::<String>::new());

    let apply_event = move |event: CommandRunEvent| match event {
        CommandRunEvent::Started {
            command_name,
            command_line,
            revision,
            ..
        } => shown.update(|shown| {
            shown.command = if command_name.is_empty() {
                command_line
            } else {
                format!("{command_name}: {command_line}")
            };
            shown.revision = revision;
            shown.running = true;
        }),
        CommandRunEvent::Output { stream, text } => {
            let stderr = stream == "stderr";
            let files = workspace.tree.with_untracked(|tree| tree.files.clone());
            let mut complete = Vec::new();
            partial.update_value(|partial| {
                let pending = &mut partial[usize::from(stderr)];
                pending.push_str(&text);
                while let Some(end) = pending.find('\n') {
                    complete.push(pending[..end].to_owned());
                    pending.replace_range(..=end, "");
                }
            });
            push_lines(lines, raw_lines, styles, complete, stderr, &files);
        }
        CommandRunEvent::Omitted { stream, bytes } => {
            let files = Vec::new();
            push_lines(
                lines,
                raw_lines,
                styles,
                vec![format!("… {bytes} bytes of {stream} left out …")],
                stream == "stderr",
                &files,
            );
            shown.update(|shown| shown.omitted += bytes);
        }
        CommandRunEvent::Finished(outcome) => {
            flush_partial(lines, raw_lines, styles, partial, workspace);
            shown.update(|shown| {
                shown.running = false;
                shown.outcome = Some(outcome);
            });
            refresh.update(|count| *count += 1);
        }
        CommandRunEvent::Failed { message } => {
            flush_partial(lines, raw_lines, styles, partial, workspace);
            shown.update(|shown| {
                shown.running = false;
                shown.failure = Some(message);
            });
            refresh.update(|count| *count += 1);
        }
    };

    // Shows a run from its first event (a finished one is replayed whole).
    let show_run = move |run_id: String| {
        lines.set(Vec::new());
        raw_lines.set_value(Vec::new());
        partial.set_value([String::new(), String::new()]);
        styles.set_value([Style::default(); 2]);
        shown.set(Shown {
            run_id: Some(run_id.clone()),
            running: true,
            ..Shown::default()
        });
        follower.update_value(|current| {
            *current = follow::start(&run_id, Callback::new(apply_event));
        });
    };

    let unsaved = move || {
        workspace.tabs.with(|tabs| {
            tabs.iter()
                .filter(|tab| tab.dirty)
                .map(|tab| tab.path.clone())
                .collect::<Vec<_>>()
        })
    };

    let run = move |_| {
        let name = chosen.get_untracked();
        let line = free_text.get_untracked();
        if name.is_empty() && line.trim().is_empty() {
            toaster.show(ToastKind::Error, "Choose a command first.".to_owned());
            return;
        }
        let project_id = workspace.project_id();
        leptos::task::spawn_local(async move {
            let line = (!line.trim().is_empty()).then_some(line);
            match start_run(project_id, name, line).await {
                Ok(run_id) => {
                    show_run(run_id);
                    refresh.update(|count| *count += 1);
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let stop = move |_| {
        if let Some(run_id) = shown.with_untracked(|shown| shown.run_id.clone()) {
            leptos::task::spawn_local(async move {
                if let Err(error) = stop_run(run_id).await {
                    toaster.show(ToastKind::Error, error.to_string());
                }
            });
        }
    };
    let save_command = move |name: String, line: String| {
        let project_id = workspace.project_id();
        leptos::task::spawn_local(async move {
            match save_project_command(project_id, name.clone(), line).await {
                Ok(()) => {
                    toaster.show(ToastKind::Success, format!("Command {name} saved."));
                    chosen.set(name);
                    new_name.set(String::new());
                    new_line.set(String::new());
                    refresh.update(|count| *count += 1);
                }
                Err(error) => toaster.show(ToastKind::Error, error.to_string()),
            }
        });
    };
    let send_to_chat = move |_| {
        let text = raw_lines.with_value(|lines| {
            // The end of the output says most about a failure; keep the chat's message short.
            let start = lines.len().saturating_sub(200);
            lines[start..].join("\n")
        });
        let command = shown.with_untracked(|shown| shown.command.clone());
        let ending = shown.with_untracked(|shown| {
            shown
                .outcome
                .as_ref()
                .map(describe_outcome)
                .or_else(|| shown.failure.clone())
                .unwrap_or_default()
        });
        to_chat.run(format!(
            "Output of `{command}` ({ending}):\n```\n{text}\n```\n"
        ));
    };

    view! {
        <div class="run-panel" id="run-panel">
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match runner.await {
                        Err(error) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                        Ok(state) => {
                            let commands = state.commands.clone();
                            if chosen.get_untracked().is_empty()
                                && let Some(first) = commands.first()
                            {
                                chosen.set(first.name.clone());
                            }
                            let described = {
                                let commands = commands.clone();
                                move || {
                                    let name = chosen.get();
                                    commands
                                        .iter()
                                        .find(|command| command.name == name)
                                        .map(|command| {
                                            let source = command
                                                .source
                                                .as_ref()
                                                .map(|source| format!(" (suggested by {source}; not saved)"))
                                                .unwrap_or_default();
                                            format!("{}{source}", command.command_line)
                                        })
                                        .unwrap_or_default()
                                }
                            };
                            let suggested = {
                                let commands = commands.clone();
                                move || {
                                    let name = chosen.get();
                                    commands
                                        .iter()
                                        .find(|command| command.name == name && command.suggested)
                                        .cloned()
                                }
                            };
                            view! {
                                {(!state.runner.available).then(|| view! {
                                    <p class="run-disabled" role="alert" id="run-disabled">
                                        "Running commands is disabled on this server: "
                                        {state.runner.reason.clone().unwrap_or_default()}
                                        " Fix: "
                                        {state.runner.fix.clone().unwrap_or_default()}
                                    </p>
                                })}
                                <label class="field-label" for="run-command">"Command"</label>
                                <select
                                    id="run-command"
                                    class="select"
                                    prop:value=move || chosen.get()
                                    on:change=move |event| chosen.set(event_target_value(&event))
                                >
                                    {commands
                                        .iter()
                                        .map(|command| {
                                            let label = if command.suggested {
                                                format!("{} (suggested)", command.name)
                                            } else {
                                                command.name.clone()
                                            };
                                            view! { <option value=command.name.clone()>{label}</option> }
                                        })
                                        .collect_view()}
                                </select>
                                <p class="run-command-line mono" id="run-command-line">{described}</p>
                                {move || suggested().map(|command| view! {
                                    <Button
                                        variant=ButtonVariant::Ghost
                                        id="save-suggested"
                                        on_click=Callback::new(move |_| save_command(command.name.clone(), command.command_line.clone()))
                                    >
                                        "Save this command"
                                    </Button>
                                })}
                                {state.free_text_allowed.then(|| view! {
                                    <label class="field-label" for="run-free-text">"Or a command line (administrators)"</label>
                                    <input
                                        id="run-free-text"
                                        class="input mono"
                                        placeholder="e.g. ls -la"
                                        prop:value=move || free_text.get()
                                        on:input=move |event| free_text.set(event_target_value(&event))
                                    />
                                })}
                                <div class="run-actions">
                                    <Button
                                        id="run-start"
                                        disabled=Signal::derive({
                                            let available = state.runner.available;
                                            move || !available || shown.with(|shown| shown.running)
                                        })
                                        on_click=Callback::new(run)
                                    >
                                        "Run"
                                    </Button>
                                    <Button
                                        id="run-stop"
                                        variant=ButtonVariant::Secondary
                                        disabled=Signal::derive(move || !shown.with(|shown| shown.running))
                                        on_click=Callback::new(stop)
                                    >
                                        "Stop"
                                    </Button>
                                </div>
                                <details class="run-new-command">
                                    <summary>"New command"</summary>
                                    <input
                                        id="new-command-name"
                                        class="input"
                                        aria-label="Name"
                                        placeholder="test"
                                        prop:value=move || new_name.get()
                                        on:input=move |event| new_name.set(event_target_value(&event))
                                    />
                                    <input
                                        id="new-command-line"
                                        class="input mono"
                                        aria-label="Command line"
                                        placeholder="python3 -m pytest"
                                        prop:value=move || new_line.get()
                                        on:input=move |event| new_line.set(event_target_value(&event))
                                    />
                                    <Button
                                        id="new-command-save"
                                        variant=ButtonVariant::Secondary
                                        on_click=Callback::new(move |_| save_command(new_name.get_untracked(), new_line.get_untracked()))
                                    >
                                        "Save command"
                                    </Button>
                                </details>
                                <RunHistory runs=state.runs.clone() on_show=Callback::new(show_run)/>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
            {move || {
                let unsaved = unsaved();
                (!unsaved.is_empty()).then(|| view! {
                    <p class="run-unsaved" id="run-unsaved">
                        "Runs use the saved files; not included: " {unsaved.join(", ")}
                    </p>
                })
            }}
            <div class="run-status" id="run-status" role="status">
                {move || shown.with(|shown| {
                    if shown.run_id.is_none() {
                        return String::new();
                    }
                    let head = if shown.command.is_empty() { "Starting…".to_owned() } else { shown.command.clone() };
                    let state = match (&shown.outcome, &shown.failure, shown.running) {
                        (Some(outcome), _, _) => describe_outcome(outcome),
                        (None, Some(failure), _) => format!("failed: {failure}"),
                        (None, None, true) => "running…".to_owned(),
                        (None, None, false) => String::new(),
                    };
                    let revision = if shown.revision.is_empty() { String::new() } else { format!(" @ {}", shown.revision) };
                    format!("{head}{revision} — {state}")
                })}
            </div>
            <pre class="run-output" id="run-output" aria-label="Output" tabindex="0">
                <For each=move || lines.get() key=|line| line.number let(line)>
                    <div class="run-line" class:run-stderr=line.stderr>
                        {line
                            .parts
                            .into_iter()
                            .map(|StyledPart { classes, part }| match part {
                                Part::Text(text) => view! { <span class=classes>{text}</span> }.into_any(),
                                Part::Location { text, file_id, line } => view! {
                                    <a
                                        href="#"
                                        class=format!("run-location {classes}")
                                        on:click=move |event| {
                                            event.prevent_default();
                                            super::open_in_tab(workspace, file_id.clone(), Some((line, 1)));
                                        }
                                    >
                                        {text}
                                    </a>
                                }
                                    .into_any(),
                            })
                            .collect_view()}
                    </div>
                </For>
            </pre>
            <Button
                id="run-to-chat"
                variant=ButtonVariant::Ghost
                disabled=Signal::derive(move || lines.with(Vec::is_empty))
                on_click=Callback::new(send_to_chat)
            >
                "Send to chat"
            </Button>
        </div>
    }
}

fn push_lines(
    lines: RwSignal<Vec<OutputLine>>,
    raw_lines: StoredValue<Vec<String>>,
    styles: StoredValue<[Style; 2]>,
    complete: Vec<String>,
    stderr: bool,
    files: &[TreeFile],
) {
    if complete.is_empty() {
        return;
    }
    lines.update(|lines| {
        for text in complete {
            let number = lines.len();
            let mut parts = Vec::new();
            styles.update_value(|styles| {
                parts = styled_line(&text, &mut styles[usize::from(stderr)], files);
            });
            lines.push(OutputLine {
                number,
                stderr,
                parts,
            });
            raw_lines.update_value(|raw| raw.push(strip_ansi(&text)));
        }
    });
}

fn flush_partial(
    lines: RwSignal<Vec<OutputLine>>,
    raw_lines: StoredValue<Vec<String>>,
    styles: StoredValue<[Style; 2]>,
    partial: StoredValue<[String; 2]>,
    workspace: Workspace,
) {
    let files = workspace.tree.with_untracked(|tree| tree.files.clone());
    let rests = partial.with_value(|partial| partial.clone());
    partial.set_value([String::new(), String::new()]);
    for (index, rest) in rests.into_iter().enumerate() {
        if !rest.is_empty() {
            push_lines(lines, raw_lines, styles, vec![rest], index == 1, &files);
        }
    }
}

/// The project's last runs; choosing one shows its output.
#[component]
fn RunHistory(
    runs: Vec<crate::types::CommandRunSummary>,
    on_show: Callback<String>,
) -> impl IntoView {
    (!runs.is_empty()).then(|| {
        view! {
            <details class="run-history" id="run-history">
                <summary>"Last runs"</summary>
                <ul>
                    {runs
                        .into_iter()
                        .map(|run| {
                            let ending = run
                                .outcome
                                .as_ref()
                                .map(describe_outcome)
                                .or(run.failure.clone())
                                .unwrap_or_else(|| run.state.clone());
                            let id = run.id.clone();
                            view! {
                                <li>
                                    <button type="button" class="link-button" on:click=move |_| on_show.run(id.clone())>
                                        {if run.command_name.is_empty() { run.command_line.clone() } else { run.command_name.clone() }}
                                    </button>
                                    " " <span class="muted">{ending}</span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </details>
        }
    })
}

/// Following a run in the browser.
mod follow {
    use leptos::prelude::*;

    use crate::types::CommandRunEvent;

    /// An open `EventSource` on a run's events; closed when dropped.
    pub struct Follower {
        #[cfg(feature = "hydrate")]
        source: web_sys::EventSource,
        #[cfg(feature = "hydrate")]
        _on_event: wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)>,
    }

    impl Drop for Follower {
        fn drop(&mut self) {
            #[cfg(feature = "hydrate")]
            self.source.close();
        }
    }

    /// Follows the run from its first event; `None` where there is no browser.
    #[cfg(feature = "hydrate")]
    pub fn start(run_id: &str, on_event: Callback<CommandRunEvent>) -> Option<Follower> {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let source = web_sys::EventSource::new(&format!("/api/runs/{run_id}/events")).ok()?;
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let Some(text) = event.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<CommandRunEvent>(&text) {
                    Ok(run_event) => {
                        let ended = matches!(
                            run_event,
                            CommandRunEvent::Finished(_) | CommandRunEvent::Failed { .. }
                        );
                        on_event.run(run_event);
                        if ended
                            && let Some(source) = event
                                .target()
                                .and_then(|target| target.dyn_into::<web_sys::EventSource>().ok())
                        {
                            source.close();
                        }
                    }
                    Err(_) => leptos::logging::warn!("a run event could not be read: {text}"),
                }
            },
        );
        if source
            .add_event_listener_with_callback("run", on_message.as_ref().unchecked_ref())
            .is_err()
        {
            source.close();
            return None;
        }
        Some(Follower {
            source,
            _on_event: on_message,
        })
    }

    /// Follows the run from its first event; `None` where there is no browser.
    #[cfg(not(feature = "hydrate"))]
    pub fn start(_run_id: &str, _on_event: Callback<CommandRunEvent>) -> Option<Follower> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, path: &str) -> TreeFile {
        TreeFile {
            id: id.to_owned(),
            path: path.to_owned(),
            version: 1,
            size_bytes: 1,
            binary: false,
        }
    }

    #[test]
    fn locations_in_output_become_links_to_project_files() {
        let files = vec![
            file("1", "calc.py"),
            file("2", "src/main.rs"),
            file("3", "test_calc.py"),
        ];
        let parts = split_locations(
            "  File \"/srv/data/worktrees/x/test_calc.py\", line 8, in test_add",
            &files,
        );
        assert_eq!(
            parts[1],
            Part::Location {
                text: "/srv/data/worktrees/x/test_calc.py\", line 8".to_owned(),
                file_id: "3".to_owned(),
                line: 8
            }
        );
        let parts = split_locations("error[E0308]: --> src/main.rs:12:5 and other.rs:3", &files);
        assert!(parts.contains(&Part::Location {
            text: "src/main.rs:12".to_owned(),
            file_id: "2".to_owned(),
            line: 12
        }));
        assert!(
            !parts.iter().any(
                |part| matches!(part, Part::Location { text, .. } if text.starts_with("other"))
            ),
            "a file outside the project is text"
        );
        assert_eq!(
            split_locations("no location here: 12", &files),
            vec![Part::Text("no location here: 12".to_owned())]
        );
    }

    #[test]
    fn colours_are_removed_and_endings_described() {
        assert_eq!(strip_ansi("\u{1b}[31mFAILED\u{1b}[0m\r"), "FAILED");
    }

    #[test]
    fn a_coloured_line_keeps_its_colours_and_its_locations() {
        let files = vec![file("f1", "src/main.rs")];
        let mut style = Style::default();
        let parts = styled_line(
            "\u{1b}[1;31merror\u{1b}[0m: at src/main.rs:4:2 \u{1b}[33mhere",
            &mut style,
            &files,
        );
        assert_eq!(
            parts,
            vec![
                StyledPart {
                    classes: "ansi-red ansi-bold".into(),
                    part: Part::Text("error".into())
                },
                StyledPart {
                    classes: String::new(),
                    part: Part::Text(": at ".into())
                },
                StyledPart {
                    classes: String::new(),
                    part: Part::Location {
                        text: "src/main.rs:4".into(),
                        file_id: "f1".into(),
                        line: 4
                    }
                },
                StyledPart {
                    classes: String::new(),
                    part: Part::Text(":2 ".into())
                },
                StyledPart {
                    classes: "ansi-yellow".into(),
                    part: Part::Text("here".into())
                },
            ]
        );
        // The yellow goes on into the next line; an empty line is one empty piece.
        assert_eq!(styled_line("", &mut style, &files).len(), 1);
        assert_eq!(
            styled_line("more", &mut style, &files)[0].classes,
            "ansi-yellow"
        );
        let outcome = CommandRunOutcome {
            exit_code: Some(1),
            signal: None,
            duration_ms: 1500,
            timed_out: false,
            stopped: false,
            omitted_bytes: 10,
        };
        let text = describe_outcome(&outcome);
        assert!(
            text.contains("exit code 1") && text.contains("1.50 s") && text.contains("10 bytes")
        );
    }
}
