//! The committed `frontend-contract/` documents are exactly what the code generates: a route, a
//! wire type or a message changed without regenerating them fails here.

#[test]
fn the_committed_contract_is_what_the_code_generates() {
    let stale = myevents_contract::stale(&myevents_contract::default_dir()).expect("read");
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the code: run `cargo run -p myevents-contract` and commit the result"
    );
}

#[test]
fn every_document_is_json_and_names_its_version() {
    for doc in myevents_contract::documents() {
        let value: serde_json::Value = serde_json::from_str(&doc.text).expect("json");
        let version = value["openapi"]
            .as_str()
            .or_else(|| value["asyncapi"].as_str())
            .or_else(|| value["$schema"].as_str());
        assert!(version.is_some(), "{} names no version", doc.path);
    }
}

fn examples_are_shown<S: myevents_host::Service>() {
    let document = myevents_host::api_document::<S>();
    let examples = S::response_examples();
    assert!(!examples.is_empty(), "{} shows no example", S::NAME);
    for example in examples {
        let shown = document["paths"]
            .as_object()
            .expect("paths")
            .values()
            .flat_map(|item| item.as_object().expect("a path item").values())
            .filter(|operation| operation["operationId"] == example.operation_id)
            .map(|operation| {
                &operation["responses"][example.status]["content"]["application/json"]["example"]
            })
            .next();
        assert_eq!(
            shown,
            Some(&example.body),
            "{} {} {}",
            S::NAME,
            example.operation_id,
            example.status
        );
    }
}

#[test]
fn every_response_example_is_shown_on_its_operation() {
    examples_are_shown::<myevents_event_service::EventServiceSpec>();
    examples_are_shown::<myevents_booking_service::BookingServiceSpec>();
}

/// The repository's root.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of every `.rs` file under `dir`, cut at its first `#[cfg(test)]` line (the tests come
/// last in a file).
fn shipped_sources(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            shipped_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let shipped = text.split("\n#[cfg(test)]\n").next().unwrap_or_default();
            out.push((path, shipped.to_owned()));
        }
    }
}

/// The string literals of `text` that read as environment variable names (`AMQP_BROKER_URL`: upper
/// case, digits and underscores, with an underscore unless passed to `var(` as `HOSTNAME` is),
/// except those read at build time (`env!`, `option_env!`), each with whether it is passed to
/// `credential(`, which also reads `<NAME>_FILE`.
fn variable_literals(text: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let (before, after) = rest.split_at(start);
        let after = &after[1..];
        let Some(end) = after.find('"') else { break };
        let literal = &after[..end];
        let is_name = (literal.contains('_') || before.ends_with("var("))
            && literal.starts_with(|c: char| c.is_ascii_uppercase())
            && literal
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let build_time = before.ends_with("env!(");
        if is_name && !build_time {
            found.push((
                literal.to_owned(),
                before.trim_end().ends_with("credential("),
            ));
        }
        rest = &after[end + 1..];
    }
    found
}

/// The shipped code of the services: each package's `src/` under `crates/` and `services/`, but
/// not the test kit, the bench command or the contract generator (tools the test command runs and
/// configures).
fn shipped_code() -> Vec<(std::path::PathBuf, String)> {
    let mut sources = Vec::new();
    for parent in ["crates", "services"] {
        for entry in std::fs::read_dir(root().join(parent)).expect("read the workspace") {
            let package = entry.expect("a package").path();
            let name = package.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if ["myevents-testkit", "myevents-bench", "myevents-contract"].contains(&name) {
                continue;
            }
            if package.join("src").is_dir() {
                shipped_sources(&package.join("src"), &mut sources);
            }
        }
    }
    sources
}

/// Variables the services read through a library rather than by name: `RUST_LOG`
/// (`tracing_subscriber::EnvFilter::from_default_env`).
const READ_BY_LIBRARIES: &[&str] = &["RUST_LOG"];

/// Every environment variable the shipped code reads.
fn variables_the_code_reads() -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> = READ_BY_LIBRARIES
        .iter()
        .map(|&name| name.to_owned())
        .collect();
    for (_, text) in &shipped_code() {
        for (name, credential) in variable_literals(text) {
            if credential {
                names.insert(format!("{name}_FILE"));
            }
            names.insert(name);
        }
    }
    names
}

/// The names `.env.example` sets or shows commented out (`NAME=` or `# NAME=` at a line's start).
fn env_example_names() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(".env.example")).expect("read .env.example");
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('#').trim_start();
            let (name, _) = line.split_once('=')?;
            let is_name = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| name.to_owned())
        })
        .collect()
}

/// The names in the first column of `docs/configuration.md`'s table (`` | `NAME` | ``).
fn configuration_table_names() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/configuration.md"))
        .expect("read docs/configuration.md");
    text.lines()
        .filter_map(|line| line.strip_prefix("| `")?.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

fn differences(
    code: &std::collections::BTreeSet<String>,
    listed: &std::collections::BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    (
        code.difference(listed).cloned().collect(),
        listed.difference(code).cloned().collect(),
    )
}

#[test]
fn env_example_and_the_configuration_table_name_every_variable_the_code_reads_and_nothing_else() {
    let code = variables_the_code_reads();
    assert!(
        code.contains("MONGO_URL") && code.contains("MONGO_URL_FILE") && code.contains("HOSTNAME"),
        "the scan missed variables: {code:?}"
    );
    for (file, listed) in [
        (".env.example", env_example_names()),
        ("docs/configuration.md", configuration_table_names()),
    ] {
        let (missing, extra) = differences(&code, &listed);
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{file} lacks {missing:?} and names {extra:?}, which the code does not read"
        );
    }
}

#[test]
fn the_metrics_table_names_every_series_the_services_register() {
    let series: std::collections::BTreeSet<String> = shipped_code()
        .iter()
        .flat_map(|(_, text)| {
            text.split('"')
                .skip(1)
                .step_by(2)
                .filter(|literal| {
                    literal.starts_with("myevents_")
                        && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        // The booking service's default database, the one such literal that
                        // names no series.
                        && *literal != "myevents_booking"
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        series.contains("myevents_http_requests_total"),
        "{series:?}"
    );
    let operations = std::fs::read_to_string(root().join("docs/operations.md"))
        .expect("read docs/operations.md");
    let missing: Vec<&String> = series
        .iter()
        .filter(|name| !operations.contains(&format!("`{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md's metrics table lacks {missing:?}"
    );
}

#[test]
fn with_authentication_off_the_served_x_user_id_schema_is_what_the_services_accept() {
    use myevents_http::auth::AuthMode;
    let both = myevents_host::api_document::<myevents_booking_service::BookingServiceSpec>();
    let off = myevents_http::openapi::for_auth_mode(&both, AuthMode::Off);
    let schema = &off["components"]["parameters"]["XUserId"]["schema"];
    let validator = jsonschema::draft202012::new(schema).expect("a valid schema");
    let long = "x".repeat(128);
    let too_long = "x".repeat(129);
    for value in [
        "alice",
        "a",
        "Olga M",
        "",
        " a",
        "a ",
        "tab\there",
        "M\u{fc}ller",
        long.as_str(),
        too_long.as_str(),
    ] {
        // What a header value carries as text (RFC 9110 section 5.5), and what the service takes.
        let header_text = value.bytes().all(|b| (0x20..0x7f).contains(&b));
        let accepted = header_text && myevents_domain::booking::UserId::parse(value).is_ok();
        assert_eq!(
            validator.is_valid(&serde_json::json!(value)),
            accepted,
            "{value:?}"
        );
    }
    let jwt = myevents_http::openapi::for_auth_mode(&both, AuthMode::Jwt);
    assert!(jwt["components"]["parameters"].get("XUserId").is_none());
}
