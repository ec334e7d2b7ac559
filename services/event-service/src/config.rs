//! The event service's defaults: it has no settings of its own beyond the host's
//! (`myevents_host::HostConfig`).

use myevents_host::HostDefaults;

/// The event service's defaults: listens on `0.0.0.0:8181`, metrics on `127.0.0.1:9100`, consumes
/// queue (or group) `EVENTS_QUEUE` (default `events-service`), database `myevents`.
pub const DEFAULTS: HostDefaults = HostDefaults {
    listen: "0.0.0.0:8181",
    metrics: "127.0.0.1:9100",
    queue_variable: myevents_domain::messages::EVENT_SERVICE_SUBSCRIBER.queue_variable,
    queue: myevents_domain::messages::EVENT_SERVICE_SUBSCRIBER.queue,
    database: "myevents",
};
