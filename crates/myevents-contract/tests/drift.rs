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
