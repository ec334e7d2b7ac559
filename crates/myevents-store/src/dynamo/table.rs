//! Creating or checking a service's table at start-up (see [`TableSetup`]).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use super::{DynamoStore, Index, map_sdk};
use crate::config::TableSetup;

/// The TTL attribute: epoch seconds after which DynamoDB may delete the item (within days of it:
/// readers compare it themselves).
pub(crate) const TTL: &str = "ttl";

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| e.to_string())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())
}

/// Makes the table ready: creates it (on-demand, key `pk`, indexes `gsi1` and `gsi2` projecting every
/// attribute, TTL on [`TTL`]) when missing and `setup` allows, waits until it is active, checks
/// its key and indexes.
///
/// # Errors
/// What is not ready, as text for the log and the health check.
pub(crate) async fn prepare(store: &DynamoStore, setup: TableSetup) -> Result<(), String> {
    let client = store.client();
    let table = store.table();
    let described = client.describe_table().table_name(table).send().await;
    let description = match described {
        Ok(out) => out.table,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            if setup == TableSetup::Check {
                return Err(format!(
                    "the DynamoDB table {table} does not exist, and DYNAMODB_TABLE_SETUP=check does not create it: create it with key pk (S) and indexes gsi1 (g1pk, g1sk) and gsi2 (g2pk, g2sk), or set DYNAMODB_TABLE_SETUP=create"
                ));
            }
            create(store).await?;
            None
        }
        Err(error) => return Err(map_sdk("DescribeTable", error).to_string()),
    };
    let description = match description {
        Some(d) if d.table_status() == Some(&TableStatus::Active) => d,
        _ => wait_active(store).await?,
    };
    let mut missing = Vec::new();
    let key_ok = description
        .key_schema()
        .iter()
        .any(|k| k.attribute_name() == "pk" && k.key_type() == &KeyType::Hash);
    if !key_ok {
        missing.push("the partition key pk".to_owned());
    }
    for index in [Index::G1, Index::G2] {
        let (pk, sk) = index.keys();
        let found = description.global_secondary_indexes().iter().any(|g| {
            g.index_name() == Some(index.name())
                && g.key_schema()
                    .iter()
                    .any(|k| k.attribute_name() == pk && k.key_type() == &KeyType::Hash)
                && g.key_schema()
                    .iter()
                    .any(|k| k.attribute_name() == sk && k.key_type() == &KeyType::Range)
                && g.projection()
                    .and_then(|p| p.projection_type())
                    .is_some_and(|p| p == &ProjectionType::All)
        });
        if !found {
            missing.push(format!(
                "the index {} ({pk}, {sk}, projecting all attributes)",
                index.name()
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the DynamoDB table {table} lacks {}",
            missing.join(" and ")
        ))
    }
}

async fn create(store: &DynamoStore) -> Result<(), String> {
    let client = store.client();
    let mut request = client
        .create_table()
        .table_name(store.table())
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .attribute_definitions(string_attribute("pk")?);
    for index in [Index::G1, Index::G2] {
        let (pk, sk) = index.keys();
        request = request
            .attribute_definitions(string_attribute(pk)?)
            .attribute_definitions(string_attribute(sk)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name())
                    .key_schema(key(pk, KeyType::Hash)?)
                    .key_schema(key(sk, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|e| e.to_string())?,
            );
    }
    match request.send().await {
        Ok(_) => {}
        // Another replica created it first.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(map_sdk("CreateTable", error).to_string()),
    }
    wait_active(store).await?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(TTL)
        .enabled(true)
        .build()
        .map_err(|e| e.to_string())?;
    match client
        .update_time_to_live()
        .table_name(store.table())
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        Ok(_) => {}
        // Already enabled (by another replica).
        Err(error)
            if error.as_service_error().is_some_and(|e| {
                aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e)
                    == Some("ValidationException")
            }) => {}
        Err(error) => return Err(map_sdk("UpdateTimeToLive", error).to_string()),
    }
    tracing::info!(table = store.table(), "DynamoDB table created");
    Ok(())
}

/// Waits (up to a minute) until the table is active.
async fn wait_active(
    store: &DynamoStore,
) -> Result<aws_sdk_dynamodb::types::TableDescription, String> {
    for _ in 0..120 {
        let out = store
            .client()
            .describe_table()
            .table_name(store.table())
            .send()
            .await
            .map_err(|e| map_sdk("DescribeTable", e).to_string())?;
        if let Some(table) = out
            .table
            .filter(|t| t.table_status() == Some(&TableStatus::Active))
        {
            return Ok(table);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Err(format!(
        "the DynamoDB table {} did not become active within a minute",
        store.table()
    ))
}
