//! Who may do what: the authenticated caller ([`Principal`]) and the rules of access that belong to
//! the domain, not to a transport.
//!
//! - Reading events and locations is public.
//! - Creating locations and events, and listing an event's bookings, needs the organiser role.
//! - A booking is its buyer's: only the buyer, or an administrator, may read, list or cancel it.

use crate::booking::UserId;

/// The roles a caller can hold, as the services name them (an identity provider's own role names
/// are mapped onto these by configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// May create locations and events and see an event's bookings.
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

    /// Whether the caller may create locations and events and list an event's bookings.
    pub fn is_organiser(&self) -> bool {
        self.roles.organiser
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
}
