//! Why a window was announced: the `closed_by` of `schemas/window_ready.avsc`. The names are
//! the schema's symbols and `ALL` is their order (the Avro enum index is the position in it).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CloseReason {
    /// The system's watermark passed the window's end.
    Watermark,
    /// No reading arrived for the idle timeout.
    Idle,
    /// Readings arrived after the window was announced: a new revision.
    LateData,
    /// A new revision requested by `manifold rescore` (a new model, a failed window).
    Rescore,
    /// Every sensor of the topology filled its sample slots: ready without waiting for the
    /// watermark. Added after the others: readers with an older schema decode the enum's
    /// default (`WATERMARK`) instead.
    Complete,
}

impl CloseReason {
    pub const ALL: [CloseReason; 5] =
        [CloseReason::Watermark, CloseReason::Idle, CloseReason::LateData, CloseReason::Rescore, CloseReason::Complete];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Watermark => "WATERMARK",
            CloseReason::Idle => "IDLE",
            CloseReason::LateData => "LATE_DATA",
            CloseReason::Rescore => "RESCORE",
            CloseReason::Complete => "COMPLETE",
        }
    }

    pub fn parse(text: &str) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The schema's enum index.
    pub fn index(self) -> u32 {
        CloseReason::ALL.iter().position(|r| *r == self).unwrap_or(0) as u32
    }

    /// What an announcement of `revision` says: a window announced again closed on late data,
    /// unless a rescore asked for the new revision.
    pub fn for_revision(self, revision: i32) -> CloseReason {
        match self {
            CloseReason::Rescore => CloseReason::Rescore,
            _ if revision > 0 => CloseReason::LateData,
            other => other,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CloseReason;

    #[test]
    fn names_are_the_serialized_form_and_read_back() {
        for reason in CloseReason::ALL {
            assert_eq!(serde_json::to_string(&reason).unwrap(), format!("\"{}\"", reason.as_str()));
            assert_eq!(CloseReason::parse(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn a_later_revision_is_late_data_unless_rescored() {
        assert_eq!(CloseReason::Watermark.for_revision(0), CloseReason::Watermark);
        assert_eq!(CloseReason::Idle.for_revision(0), CloseReason::Idle);
        assert_eq!(CloseReason::Watermark.for_revision(1), CloseReason::LateData);
        assert_eq!(CloseReason::Idle.for_revision(2), CloseReason::LateData);
        assert_eq!(CloseReason::Rescore.for_revision(0), CloseReason::Rescore);
        assert_eq!(CloseReason::Rescore.for_revision(3), CloseReason::Rescore);
        assert_eq!(CloseReason::Complete.for_revision(0), CloseReason::Complete);
        assert_eq!(CloseReason::Complete.for_revision(1), CloseReason::LateData);
    }
}
