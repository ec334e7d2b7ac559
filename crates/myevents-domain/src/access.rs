//! Who may do what: the authenticated caller ([`Principal`]) and the rules of access that belong to
//! the domain, not to a transport.
//!
//! - Reading events and locations is public.
//! - Creating locations and events needs the organiser role; an event is edited and cancelled, and
//!   its bookings are listed, by the organiser who created it (and by administrators).
//! - A booking is its buyer's: only the buyer, or an administrator, may read, list or cancel it.

use crate::booking::UserId;

/// The roles a caller can hold, as the services name them (an identity provider's own role names
/// are mapped onto these by configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// May create locations and events, and see the bookings of the events it created.
    pub organiser: bool,
    /// May read, list and cancel anyone's bookings.
    pub admin: bool,
}

/// An authenticated caller: a user id (a token's `sub`, or `X-User-Id` when authentication is off)
/// and its [`Roles`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user: UserId,
    roles: Roles,
}

impl Principal {
    /// The caller `user` with `roles`.
    pub fn new(user: UserId, roles: Roles) -> Self {
        Self { user, roles }
    }

    /// The caller's user id.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The caller's roles.
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// Whether the caller may create locations and events.
    pub fn is_organiser(&self) -> bool {
        self.roles.organiser
    }

    /// Whether the caller may list the bookings of an event `organiser` organises: the same callers
    /// as [`Principal::may_manage_event`].
    pub fn may_see_bookings_of(&self, organiser: Option<&UserId>) -> bool {
        self.may_manage_event(organiser)
    }

    /// Whether the caller may edit and cancel an event `organiser` organises: that organiser
    /// (holding the organiser role), or an administrator; nobody else, and for an event without a
    /// known organiser only administrators.
    pub fn may_manage_event(&self, organiser: Option<&UserId>) -> bool {
        self.roles.admin || (self.roles.organiser && organiser == Some(&self.user))
    }

    /// Whether the caller may rename, extend and delete a location `organiser` created: as
    /// [`Principal::may_manage_event`].
    pub fn may_manage_location(&self, organiser: Option<&UserId>) -> bool {
        self.may_manage_event(organiser)
    }

    /// Whether the caller may read, list and cancel the bookings of `owner`: its own, or anyone's
    /// for an administrator.
    pub fn may_act_for(&self, owner: &UserId) -> bool {
        self.roles.admin || &self.user == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).expect("user")
    }

    #[test]
    fn a_user_acts_for_itself_only_and_an_administrator_for_everyone() {
        let alice = Principal::new(user("alice"), Roles::default());
        assert!(alice.may_act_for(&user("alice")));
        assert!(!alice.may_act_for(&user("bob")));
        assert!(!alice.is_organiser());
        let admin = Principal::new(
            user("root"),
            Roles {
                admin: true,
                ..Roles::default()
            },
        );
        assert!(admin.may_act_for(&user("bob")));
        assert!(
            !admin.is_organiser(),
            "administrators do not organise by default"
        );
    }

    #[test]
    fn an_events_bookings_are_its_organisers_and_the_administrators() {
        let organiser = |name: &str| {
            Principal::new(
                user(name),
                Roles {
                    organiser: true,
                    ..Roles::default()
                },
            )
        };
        let alice = user("alice");
        assert!(organiser("alice").may_see_bookings_of(Some(&alice)));
        assert!(!organiser("bob").may_see_bookings_of(Some(&alice)));
        assert!(!organiser("alice").may_see_bookings_of(None));
        let plain_alice = Principal::new(alice.clone(), Roles::default());
        assert!(
            !plain_alice.may_see_bookings_of(Some(&alice)),
            "without the organiser role"
        );
        let admin = Principal::new(
            user("root"),
            Roles {
                admin: true,
                ..Roles::default()
            },
        );
        assert!(admin.may_see_bookings_of(Some(&alice)));
        assert!(admin.may_see_bookings_of(None));
    }
}
