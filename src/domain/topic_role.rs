//! The part a topic plays in the design. One name per role: it is the key of the role's
//! `[topics.<role>]` section in the configuration, the `topic_role` of its outbox rows (a CHECK
//! constraint holds the outbox's set) and the relay's metric label; nothing else spells it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicRole {
    /// Sensor batches from devices: ingest's input.
    Batches,
    DeadLetters,
    WindowsReady,
    Scores,
    /// Condition alerts derived from the scores, published by infer with them.
    Alerts,
    /// The relay's own compacted record of how far it has published.
    RelayPosition,
}

impl TopicRole {
    /// In the order `manifold topics create` reports them.
    pub const ALL: [TopicRole; 6] =
        [TopicRole::Batches, TopicRole::DeadLetters, TopicRole::WindowsReady, TopicRole::Scores, TopicRole::Alerts, TopicRole::RelayPosition];

    /// The roles whose events go through the outbox and the relay.
    pub const OUTBOX: [TopicRole; 3] = [TopicRole::DeadLetters, TopicRole::WindowsReady, TopicRole::Scores];

    pub fn as_str(self) -> &'static str {
        match self {
            TopicRole::Batches => "batches",
            TopicRole::DeadLetters => "dead_letters",
            TopicRole::WindowsReady => "windows_ready",
            TopicRole::Scores => "scores",
            TopicRole::Alerts => "alerts",
            TopicRole::RelayPosition => "relay_position",
        }
    }

    pub fn parse(text: &str) -> Option<TopicRole> {
        TopicRole::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn is_outbox(self) -> bool {
        TopicRole::OUTBOX.contains(&self)
    }
}

impl fmt::Display for TopicRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::TopicRole;

    #[test]
    fn every_role_reads_back_from_its_name() {
        for role in TopicRole::ALL {
            assert_eq!(TopicRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(TopicRole::parse("Dead_Letters"), None);
    }

    /// The outbox's CHECK constraint is the database's copy of the outbox roles: a role the
    /// database refuses, or one it accepts that the relay does not know, is a bug.
    #[test]
    fn the_outbox_roles_are_the_ones_the_database_accepts() {
        let sql = include_str!("../../migrations/0002_delivery.up.sql");
        let check = sql.split("CHECK (topic_role IN (").nth(1).and_then(|rest| rest.split("))").next()).expect("the outbox's role CHECK");
        let accepted: Vec<&str> = check.split(',').map(|s| s.trim().trim_matches('\'')).collect();
        let outbox: Vec<&str> = TopicRole::OUTBOX.iter().map(|r| r.as_str()).collect();
        assert_eq!(accepted, outbox);
    }
}
