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

/// The shipped code of the services: each package's `src/` under `crates/` and `services/`, but
/// not the test kit, the bench command or the contract generator (tools the test command runs).
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

// The variables the code reads are checked against `docs/configuration.md` and `.env.example` by
// the deployment checks (`scripts/deploy/check_manifests.py`), with compose's and the manifests'.

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
