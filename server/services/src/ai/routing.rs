//! Routing: which of a user's credentials answers a model name (a pure function of the name, the
//! credentials, the catalog and the local servers' model lists).

use super::*;

/// Which of the user's credentials answers the model `name`, and under which model name (a pure
/// function, table-tested below):
/// - `openai/…`, `anthropic/…`, `gemini/…`: that provider's credential (`default`, else the
///   first), the rest of the name being the model;
/// - `<label>/…`: the credential of that label (a local server's, say);
/// - a name the catalog knows: its provider's credential;
/// - else a local server: the only one, or the one whose model list (as last read,
///   `local_lists`) has the name.
///
/// `None` when nothing answers it, or the model name left is empty.
pub(super) fn route_model<'credentials>(
    name: &str,
    credentials: &'credentials [provider_credentials::Model],
    catalog: &llm::Catalog,
    local_lists: impl Fn(ProviderCredentialId, &str) -> bool,
) -> Option<(&'credentials provider_credentials::Model, String)> {
    let mut chosen: Option<(&provider_credentials::Model, String)> = None;
    if let Some((prefix, rest)) = name.split_once('/') {
        // A cloud provider's name routes to that provider; any other prefix (a local
        // server's included) is a credential's label.
        let by_provider = match prefix.parse::<ProviderKind>() {
            Ok(ProviderKind::OpenAiCompatible) | Err(_) => None,
            Ok(kind) => Some(stored_kind(kind)),
        };
        chosen = match by_provider {
            Some(kind) => preferred(credentials, kind),
            None => credentials
                .iter()
                .find(|credential| credential.label == prefix),
        }
        .map(|credential| (credential, rest.to_owned()));
    }
    if chosen.is_none() {
        chosen = match catalog.provider_of(name) {
            Some(ProviderKind::OpenAiCompatible) | None => None,
            Some(kind) => preferred(credentials, stored_kind(kind)),
        }
        .map(|credential| (credential, name.to_owned()));
    }
    if chosen.is_none() {
        let locals: Vec<&provider_credentials::Model> = credentials
            .iter()
            .filter(|credential| credential.provider == StoredKind::OpenAiCompatible)
            .collect();
        chosen = match locals.as_slice() {
            [only] => Some((*only, name.to_owned())),
            [] => None,
            several => several
                .iter()
                .find(|credential| local_lists(credential.id, name))
                .map(|credential| (*credential, name.to_owned())),
        };
    }
    chosen.filter(|(_, model)| !model.is_empty())
}

/// The credential of a provider kind to use: the one labelled `default`, else the first.
pub(super) fn preferred(
    credentials: &[provider_credentials::Model],
    kind: StoredKind,
) -> Option<&provider_credentials::Model> {
    let mut of_kind = credentials
        .iter()
        .filter(|credential| credential.provider == kind);
    let all: Vec<&provider_credentials::Model> = of_kind.by_ref().collect();
    all.iter()
        .find(|credential| credential.label == "default")
        .or_else(|| all.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn credential(provider: StoredKind, label: &str) -> provider_credentials::Model {
        provider_credentials::Model {
            id: ProviderCredentialId::new(),
            user_id: db::ids::UserId::new(),
            provider,
            label: label.to_owned(),
            base_url: None,
            encrypted_key: None,
            key_last_four: None,
            status: CredentialStatus::Valid,
            last_verified_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn catalog() -> llm::Catalog {
        let entry = |id: &str, provider: &str| {
            format!(
                "[[models]]\nid = \"{id}\"\nprovider = \"{provider}\"\nname = \"{id}\"\n\
                 context_window = 1000\nmax_output_tokens = 100\ntools = true\nreasoning = false\n\
                 input = 1.0\noutput = 2.0\ncache_read = 0.1\ncache_write = 0\n"
            )
        };
        llm::Catalog::parse(&format!(
            "checked = \"today\"\nsource = \"a test\"\n{}{}",
            entry("gpt-test", "openai"),
            entry("claude-test", "anthropic")
        ))
        .expect("the test catalog parses")
    }

    /// A model name, the credentials, and the (label, model) it routes to.
    type RouteCase<'a> = (
        &'a str,
        &'a [provider_credentials::Model],
        Option<(&'a str, &'a str)>,
    );

    #[test]
    fn each_model_name_routes_to_the_credential_that_answers_it() {
        let openai_first = credential(StoredKind::OpenAi, "work");
        let openai_default = credential(StoredKind::OpenAi, "default");
        let anthropic = credential(StoredKind::Anthropic, "default");
        let ollama = credential(StoredKind::OpenAiCompatible, "ollama");
        let vllm = credential(StoredKind::OpenAiCompatible, "vllm");
        let everything = vec![
            openai_first.clone(),
            openai_default.clone(),
            anthropic.clone(),
            ollama.clone(),
            vllm.clone(),
        ];
        let one_local = vec![anthropic.clone(), ollama.clone()];
        // vLLM's list (as last read) has "qwen3-coder"; Ollama's none of these.
        let lists = |credential: ProviderCredentialId, model: &str| {
            credential == vllm.id && model == "qwen3-coder"
        };
        let catalog = catalog();
        let cases: [RouteCase; 12] = [
            // A provider's prefix: its `default` credential, the rest is the model.
            (
                "openai/gpt-anything",
                &everything,
                Some(("default", "gpt-anything")),
            ),
            (
                "anthropic/claude-x",
                &everything,
                Some(("default", "claude-x")),
            ),
            // A label's prefix.
            ("work/gpt-test", &everything, Some(("work", "gpt-test"))),
            ("ollama/llama3", &everything, Some(("ollama", "llama3"))),
            // A local server's kind name is no routing prefix.
            ("openai_compatible/llama3", &everything, None),
            // Known to the catalog: its provider.
            ("gpt-test", &everything, Some(("default", "gpt-test"))),
            ("claude-test", &one_local, Some(("default", "claude-test"))),
            // Unknown: the only local server, or the one listing it.
            ("llama3", &one_local, Some(("ollama", "llama3"))),
            ("qwen3-coder", &everything, Some(("vllm", "qwen3-coder"))),
            ("mystery", &everything, None),
            // A provider with no credential, an empty model name.
            ("gemini/gemini-x", &everything, None),
            ("ollama/", &everything, None),
        ];
        for (name, credentials, expected) in cases {
            let routed = route_model(name, credentials, &catalog, lists)
                .map(|(credential, model)| (credential.label.as_str(), model));
            assert_eq!(
                routed,
                expected.map(|(label, model)| (label, model.to_owned())),
                "{name}"
            );
        }
        // The first credential of a kind when none is labelled `default`.
        let no_default = vec![openai_first.clone()];
        assert_eq!(
            route_model("gpt-test", &no_default, &catalog, lists)
                .map(|(credential, _)| credential.id),
            Some(openai_first.id)
        );
    }
}
