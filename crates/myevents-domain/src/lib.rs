//! # myevents-domain
//!
//! The MyEvents domain: entities (events, locations, halls, bookings, seat inventory), validated value
//! types and the domain-event contracts (the messages the services exchange). This crate does no I/O:
//! no runtime, no database and no broker types appear here.
//!
//! - [`id`]: 12-byte identifiers shown as 24 lower-case hex characters (MongoDB ObjectIds).
//! - [`location`], [`event`], [`booking`]: entities and the rules that build them.
//! - [`messages`]: [`messages::DomainEvent`] with its wire names and JSON bodies.
//! - [`access`]: the authenticated caller ([`access::Principal`]) and who may do what.
//!
//! ```
//! use myevents_domain::id::EventId;
//! use myevents_domain::seats::SeatCount;
//!
//! let id = EventId::parse("6b026ab2686c822a56b0fe36").expect("24 hex characters");
//! assert_eq!(id.to_string(), "6b026ab2686c822a56b0fe36");
//! assert!(SeatCount::new(0).is_zero());
//! ```

pub mod access;
pub mod booking;
pub mod cancellation;
pub mod event;
pub mod id;
pub mod location;
pub mod messages;
pub mod seats;
pub mod validation;
