//! What a record costs on the wire, what the broker takes, and how a dead letter is cut to fit.
//!
//! librdkafka refuses a record over its `message.max.bytes` at once, and the broker refuses a
//! record batch over the topic's `max.message.bytes`; either way the record can never be
//! published as it is. The relay checks before it sends, so a too-large dead letter goes out cut
//! (the original bytes stay in `dead_letters`) instead of failing the transaction.

use std::collections::BTreeMap;

use crate::domain::text;

/// librdkafka's default `message.max.bytes`.
pub const PRODUCER_DEFAULT_MAX_BYTES: usize = 1_000_000;
/// A record batch's header (61 bytes) plus one record's varint framing, rounded up: the broker
/// counts the whole batch against `max.message.bytes`, and a relay record travels alone at worst.
pub const RECORD_OVERHEAD: usize = 128;
/// The varint lengths in front of one header's key and value.
pub const HEADER_OVERHEAD: usize = 10;
/// Header keys come from jsonb too; no key manifold writes is near this long.
const MAX_HEADER_KEY_BYTES: usize = 128;

pub const SEQ_HEADER: &str = "manifold.outbox.seq";
pub const TRUNCATED_HEADER: &str = "manifold.value.truncated";
pub const ORIGINAL_SIZE_HEADER: &str = "manifold.value.original_size";

/// One record as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// Bytes the broker counts for this record sent alone (key + value + headers + framing).
    pub fn wire_size(&self) -> usize {
        RECORD_OVERHEAD
            + self.key.as_ref().map_or(0, Vec::len)
            + self.value.len()
            + self.headers.iter().map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD).sum::<usize>()
    }
}

/// How a record was made to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    AsIs(Record),
    /// The value was cut; `original` is its size before.
    Cut { record: Record, original: usize },
}

/// The record cannot fit even with an empty value (its key and headers alone are too large),
/// or it may not be cut (a window-ready event cut is not an event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub size: usize,
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the record takes {} bytes on the wire, the limit is {}", self.size, self.limit)
    }
}

/// The outbox's headers (from jsonb, so any text) made publishable: keys and values sanitized
/// and bounded, in key order, then the outbox sequence.
pub fn headers(raw: &BTreeMap<String, String>, seq: i64) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = raw
        .iter()
        .filter(|(key, _)| key.as_str() != SEQ_HEADER)
        .map(|(key, value)| (text::sanitize(key, MAX_HEADER_KEY_BYTES), text::message(value)))
        .collect();
    out.push((SEQ_HEADER.to_owned(), seq.to_string()));
    out
}

/// Fits `record` under `limit`: as it is when it fits; else, when `cuttable`, with its value cut
/// to what fits beside two headers saying so; else [`TooLarge`].
pub fn fit(mut record: Record, limit: usize, cuttable: bool) -> Result<Fit, TooLarge> {
    let size = record.wire_size();
    if size <= limit {
        return Ok(Fit::AsIs(record));
    }
    if !cuttable {
        return Err(TooLarge { size, limit });
    }
    let original = record.value.len();
    record.headers.retain(|(k, _)| k != TRUNCATED_HEADER && k != ORIGINAL_SIZE_HEADER);
    record.headers.push((TRUNCATED_HEADER.to_owned(), "true".to_owned()));
    record.headers.push((ORIGINAL_SIZE_HEADER.to_owned(), original.to_string()));
    let fixed = record.wire_size() - original;
    let Some(room) = limit.checked_sub(fixed) else {
        return Err(TooLarge { size: fixed, limit });
    };
    record.value.truncate(room);
    Ok(Fit::Cut { record, original })
}

/// The limit for one topic: the producer's and the topic's, whichever is smaller; the producer's
/// alone when the topic's could not be read.
pub fn effective(producer: usize, topic: Option<usize>) -> usize {
    topic.map_or(producer, |t| t.min(producer))
}

/// A bounded reason code for an event refused for its content (`outbox_failures.reason`, and
/// the failure metric's label).
pub fn reason(error: &rdkafka::error::KafkaError) -> &'static str {
    use rdkafka::types::RDKafkaErrorCode as K;
    match error.rdkafka_error_code() {
        Some(K::MessageSizeTooLarge | K::InvalidMessageSize | K::MessageBatchTooLarge) => "record_too_large",
        Some(K::InvalidRecord | K::InvalidMessage | K::BadMessage) => "invalid_record",
        Some(K::InvalidTimestamp) => "invalid_timestamp",
        Some(K::KeySerialization | K::ValueSerialization | K::UnsupportedForMessageFormat) => "unsupported_record",
        _ => "refused",
    }
}

/// True when the refusal was about size: the topic's limit may have changed under the relay.
pub fn is_size_refusal(error: &rdkafka::error::KafkaError) -> bool {
    reason(error) == "record_too_large"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: usize, value: usize, headers: &[(&str, &str)]) -> Record {
        Record {
            key: Some(vec![b'k'; key]),
            value: vec![b'v'; value],
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn wire_size_counts_key_value_headers_and_framing() {
        let r = record(10, 100, &[("ab", "cde")]);
        assert_eq!(r.wire_size(), RECORD_OVERHEAD + 10 + 100 + 2 + 3 + HEADER_OVERHEAD);
        let bare = Record { key: None, value: vec![], headers: vec![] };
        assert_eq!(bare.wire_size(), RECORD_OVERHEAD);
    }

    #[test]
    fn a_record_within_the_limit_is_sent_as_it_is() {
        let r = record(10, 100, &[("a", "b")]);
        let limit = r.wire_size();
        assert_eq!(fit(r.clone(), limit, true), Ok(Fit::AsIs(r)));
    }

    #[test]
    fn a_dead_letter_over_the_limit_is_cut_to_exactly_fit_and_says_so() {
        let r = record(16, 1_500_000, &[("manifold.error.kind", "malformed")]);
        let Ok(Fit::Cut { record: cut, original }) = fit(r.clone(), 1_000_000, true) else { panic!("cut expected") };
        assert_eq!(original, 1_500_000);
        assert_eq!(cut.wire_size(), 1_000_000, "the cut uses all the room there is");
        assert!(cut.value.iter().all(|b| *b == b'v') && cut.value.len() < 1_000_000);
        assert_eq!(cut.key, r.key, "the key is never cut");
        let header = |name: &str| cut.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(header(TRUNCATED_HEADER).as_deref(), Some("true"));
        assert_eq!(header(ORIGINAL_SIZE_HEADER).as_deref(), Some("1500000"));
        assert_eq!(header("manifold.error.kind").as_deref(), Some("malformed"));
    }

    #[test]
    fn a_record_whose_key_and_headers_alone_exceed_the_limit_cannot_fit() {
        let r = record(10, 50, &[("manifold.error.message", &"x".repeat(900))]);
        let err = fit(r, 500, true).unwrap_err();
        assert!(err.size > 500 && err.limit == 500, "{err:?}");
    }

    #[test]
    fn a_window_event_is_never_cut() {
        let r = record(10, 600, &[]);
        assert_eq!(fit(r.clone(), 500, false), Err(TooLarge { size: r.wire_size(), limit: 500 }));
    }

    #[test]
    fn the_limit_is_the_smaller_of_producer_and_topic() {
        assert_eq!(effective(1_000_000, Some(1_114_124)), 1_000_000);
        assert_eq!(effective(2_000_000, Some(1_114_124)), 1_114_124);
        assert_eq!(effective(1_000_000, None), 1_000_000);
    }

    #[test]
    fn refusals_get_a_bounded_reason() {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode as K};
        assert_eq!(reason(&KafkaError::MessageProduction(K::MessageSizeTooLarge)), "record_too_large");
        assert!(is_size_refusal(&KafkaError::MessageProduction(K::MessageSizeTooLarge)));
        assert_eq!(reason(&KafkaError::MessageProduction(K::InvalidRecord)), "invalid_record");
        assert_eq!(reason(&KafkaError::MessageProduction(K::InvalidTimestamp)), "invalid_timestamp");
        assert!(!is_size_refusal(&KafkaError::MessageProduction(K::InvalidRecord)));
    }

    #[test]
    fn headers_from_the_outbox_are_sanitized_bounded_and_end_with_the_sequence() {
        let mut raw = BTreeMap::new();
        raw.insert("manifold.error.message".to_owned(), format!("bad\u{1}name {}", "n".repeat(600_000)));
        raw.insert("manifold.error.kind".to_owned(), "malformed".to_owned());
        raw.insert("odd\nkey".to_owned(), "v".to_owned());
        raw.insert(SEQ_HEADER.to_owned(), "forged".to_owned());
        let out = headers(&raw, 42);
        assert!(out.iter().all(|(k, v)| !k.chars().any(char::is_control) && !v.chars().any(char::is_control)));
        assert!(out.iter().all(|(_, v)| v.len() <= text::MAX_MESSAGE_BYTES));
        assert_eq!(out.last(), Some(&(SEQ_HEADER.to_owned(), "42".to_owned())));
        assert_eq!(out.iter().filter(|(k, _)| k == SEQ_HEADER).count(), 1, "the outbox cannot forge the sequence");
        let message = &out.iter().find(|(k, _)| k == "manifold.error.message").unwrap().1;
        assert!(message.starts_with("bad\u{fffd}name"));
    }
}
