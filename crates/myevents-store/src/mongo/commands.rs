//! The commands the driver sends to MongoDB, counted (the driver's command monitoring,
//! <https://specifications.readthedocs.io/en/latest/command-logging-and-monitoring/command-logging-and-monitoring/>):
//! `myevents_mongodb_commands_total{database, command}`, so that what a booking costs MongoDB (its
//! commands and writes) can be read off the metrics whatever the server's speed.

use std::sync::LazyLock;

use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use prometheus::{IntCounterVec, register_int_counter_vec};

/// The series of the commands the MongoDB stores send. Cheap to clone: every clone counts in the
/// same series.
#[derive(Debug, Clone)]
pub struct CommandMetrics {
    /// Commands sent, by `database` and `command` (the command's name: `insert`, `update`, `find`,
    /// `findAndModify`, `commitTransaction`, ...; a bounded set, the driver's).
    pub commands: IntCounterVec,
}

impl CommandMetrics {
    /// The process's series: registered in the default registry by the first call and shared by
    /// every later one, since the registry takes each name once.
    pub fn registered() -> Self {
        static METRICS: LazyLock<CommandMetrics> = LazyLock::new(|| CommandMetrics {
            commands: myevents_platform::metrics::registered(
                "myevents_mongodb_commands_total",
                register_int_counter_vec!(
                    "myevents_mongodb_commands_total",
                    "Commands sent to MongoDB, by database and command name.",
                    &["database", "command"]
                ),
            ),
        });
        METRICS.clone()
    }

    /// The driver's command-monitoring handler (`ClientOptions::command_event_handler`) that counts
    /// every command it starts in `database`'s series.
    pub(crate) fn handler(&self, database: &str) -> EventHandler<CommandEvent> {
        let commands = self.commands.clone();
        let database = database.to_owned();
        EventHandler::callback(move |event| {
            if let CommandEvent::Started(started) = event {
                commands
                    .with_label_values(&[database.as_str(), started.command_name.as_str()])
                    .inc();
            }
        })
    }
}
