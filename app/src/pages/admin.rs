use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::admin::{admin_audit, admin_update_user, admin_users};
use crate::api::runner::admin_sandbox;
use crate::components::{
    AppLayout, Button, ButtonVariant, Card, LocalTime, ToastKind, use_toaster,
};
use crate::error::AppError;
use crate::types::{AdminUser, UserRole, UserTier};

/// Administration: accounts (role, tier, disabled) and the audit log.
#[component]
pub fn AdminPage() -> impl IntoView {
    let users = Resource::new(|| (), |()| admin_users());
    let audit = Resource::new(|| (), |()| admin_audit());
    let sandbox = Resource::new(|| (), |()| admin_sandbox());
    let refresh = move || {
        users.refetch();
        audit.refetch();
    };
    view! {
        <Title text="Administration · Async Coder"/>
        <AppLayout>
            <div class="page wide">
                <h1>"Administration"</h1>
                <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match users.await {
                            Ok(list) => {
                                view! {
                                    <Card title="Accounts">
                                        <table class="table" id="admin-users">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"Name"</th>
                                                    <th scope="col">"Email"</th>
                                                    <th scope="col">"Role"</th>
                                                    <th scope="col">"Tier"</th>
                                                    <th scope="col">"Status"</th>
                                                    <th scope="col">"Since"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {list
                                                    .into_iter()
                                                    .map(|user| view! { <UserRow user on_change=Callback::new(move |()| refresh())/> })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </Card>
                                }
                                    .into_any()
                            }
                            Err(AppError::Forbidden) => {
                                view! { <p role="alert">"Only administrators can see this page."</p> }.into_any()
                            }
                            Err(AppError::Unauthorized) => {
                                view! { <p>"Sign in as an administrator. " <a href="/sign-in?next=/admin">"Sign in"</a></p> }.into_any()
                            }
                            Err(error) => view! { <p role="alert">{error.to_string()}</p> }.into_any(),
                        }
                    })}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        sandbox.await.ok().map(|info| view! { <SandboxCard info/> })
                    })}
                </Suspense>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        audit
                            .await
                            .ok()
                            .map(|entries| {
                                view! {
                                    <Card title="Audit log" description="The newest 200 events.">
                                        <table class="table" id="audit-log">
                                            <thead>
                                                <tr>
                                                    <th scope="col">"When"</th>
                                                    <th scope="col">"Action"</th>
                                                    <th scope="col">"Actor"</th>
                                                    <th scope="col">"Target"</th>
                                                    <th scope="col">"Address"</th>
                                                    <th scope="col">"User agent"</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {entries
                                                    .into_iter()
                                                    .map(|entry| {
                                                        view! {
                                                            <tr>
                                                                <td><LocalTime at=entry.created_at/></td>
                                                                <td>{entry.action}</td>
                                                                <td class="mono">{entry.actor_id.unwrap_or_default()}</td>
                                                                <td class="mono">{entry.target.unwrap_or_default()}</td>
                                                                <td>{entry.ip_address.unwrap_or_default()}</td>
                                                                <td>{entry.user_agent.unwrap_or_default()}</td>
                                                            </tr>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    </Card>
                                }
                            })
                    })}
                </Suspense>
            </div>
        </AppLayout>
    }
}

/// The command sandbox's layers as probed at start, and whether projects' commands may run.
#[component]
fn SandboxCard(info: crate::types::RunnerInfo) -> impl IntoView {
    let status = if info.available {
        format!(
            "Project commands run sandboxed ({}, as {}).",
            info.isolation.clone().unwrap_or_default(),
            info.identity.clone().unwrap_or_default()
        )
    } else {
        format!(
            "Running project commands is disabled: {}",
            info.reason.clone().unwrap_or_default()
        )
    };
    view! {
        <Card title="Command sandbox" description="Each layer as the server found it at start.">
            <p id="sandbox-status" role=if info.available { "status" } else { "alert" }>{status}</p>
            {info.fix.clone().map(|fix| view! { <p id="sandbox-fix">"Fix: " {fix}</p> })}
            <table class="table" id="sandbox-layers">
                <thead>
                    <tr>
                        <th scope="col">"Layer"</th>
                        <th scope="col">"Available"</th>
                        <th scope="col">"Detail"</th>
                    </tr>
                </thead>
                <tbody>
                    {info
                        .layers
                        .into_iter()
                        .map(|layer| {
                            view! {
                                <tr>
                                    <td>{layer.name}</td>
                                    <td>{if layer.available { "yes" } else { "no" }}</td>
                                    <td>{layer.detail}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </Card>
    }
}

#[component]
fn UserRow(user: AdminUser, on_change: Callback<()>) -> impl IntoView {
    let toaster = use_toaster();
    let apply = {
        let user = user.clone();
        move |role: UserRole, tier: UserTier, disabled: bool| {
            let request = admin_update_user(
                user.id.clone(),
                role.as_str().to_owned(),
                tier.as_str().to_owned(),
                disabled,
            );
            let email = user.email.clone();
            leptos::task::spawn_local(async move {
                match request.await {
                    Ok(_) => toaster.show(ToastKind::Success, format!("{email} updated.")),
                    Err(error) => toaster.show(
                        ToastKind::Error,
                        format!("{email} was not changed. {error}"),
                    ),
                }
                on_change.run(());
            });
        }
    };
    let (role, tier, disabled) = (user.role, user.tier, user.disabled);
    let on_role = {
        let apply = apply.clone();
        move |event: leptos::ev::Event| {
            let role = if event_target_value(&event) == "admin" {
                UserRole::Admin
            } else {
                UserRole::User
            };
            apply(role, tier, disabled);
        }
    };
    let on_tier = {
        let apply = apply.clone();
        move |event: leptos::ev::Event| {
            let value = event_target_value(&event);
            let tier = UserTier::ALL
                .into_iter()
                .find(|tier| tier.as_str() == value)
                .unwrap_or(tier);
            apply(role, tier, disabled);
        }
    };
    let toggle = move |_| apply(role, tier, !disabled);
    let email = user.email.clone();
    view! {
        <tr data-email=user.email.clone()>
            <td>{user.name.clone()}</td>
            <td>{user.email.clone()}</td>
            <td>
                <select class="select" aria-label=format!("Role of {email}") on:change=on_role>
                    <option value="user" selected=role == UserRole::User>"user"</option>
                    <option value="admin" selected=role == UserRole::Admin>"admin"</option>
                </select>
            </td>
            <td>
                <select class="select" aria-label=format!("Tier of {}", user.email) on:change=on_tier>
                    {UserTier::ALL
                        .into_iter()
                        .map(|option| view! { <option value=option.as_str() selected=option == tier>{option.as_str()}</option> })
                        .collect_view()}
                </select>
            </td>
            <td>
                {if disabled { "disabled" } else { "active" }} " "
                <Button
                    variant=ButtonVariant::Secondary
                    aria_label=format!("{} {}", if disabled { "Enable" } else { "Disable" }, user.email)
                    on_click=Callback::new(toggle)
                >
                    {if disabled { "Enable" } else { "Disable" }}
                </Button>
            </td>
            <td><LocalTime at=user.created_at.clone()/></td>
        </tr>
    }
}
