//! Takes the TLS parameters out of a connection string, in either of libpq's forms, and gives
//! back the rest as written (so tokio-postgres reads it exactly as before).

use super::TlsParams;

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

pub fn split(connection: &str) -> Result<(TlsParams, String), String> {
    let trimmed = connection.trim_start();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        split_url(connection)
    } else {
        split_key_values(connection)
    }
}

pub(super) fn record(params: &mut TlsParams, key: &str, value: String) {
    let slot = match key {
        "sslmode" => &mut params.sslmode,
        "sslrootcert" => &mut params.sslrootcert,
        "sslcert" => &mut params.sslcert,
        _ => &mut params.sslkey,
    };
    // libpq: the last occurrence wins.
    *slot = Some(value);
}

fn split_url(url: &str) -> Result<(TlsParams, String), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((TlsParams::default(), url.to_owned()));
    };
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        if TLS_KEYS.contains(&key.as_str()) {
            record(&mut params, &key, percent_decode(value)?);
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((params, rest))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(|| format!("a truncated %-escape in {text:?}"))?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("an invalid %-escape in {text:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} does not decode to UTF-8"))
}

fn split_key_values(text: &str) -> Result<(TlsParams, String), String> {
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for (key, value, raw) in key_value_pairs(text)? {
        if TLS_KEYS.contains(&key) {
            record(&mut params, key, value);
        } else {
            kept.push(raw);
        }
    }
    Ok((params, kept.join(" ")))
}

/// `key = value` pairs as (key, unescaped value, the pair as written); a value is bare up to
/// whitespace or single-quoted, `\` escapes a character in both.
pub fn key_value_pairs(text: &str) -> Result<Vec<(&str, String, &str)>, String> {
    let mut pairs = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let (key, value, len) = one_pair(rest)?;
        pairs.push((key, value, &rest[..len]));
        rest = &rest[len..];
    }
}

/// The key, the unescaped value, and how many bytes of `text` the pair spans.
fn one_pair(text: &str) -> Result<(&str, String, usize), String> {
    let key_end = text.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(text.len());
    let key = &text[..key_end];
    let after_key = &text[key_end..];
    let spaced = after_key.trim_start();
    let Some(after_eq) = spaced.strip_prefix('=') else {
        return Err(format!("missing \"=\" after {key:?} in the connection string"));
    };
    let value_text = after_eq.trim_start();
    let value_start = text.len() - value_text.len();
    let mut value = String::new();
    let mut chars = value_text.char_indices().peekable();
    let quoted = value_text.starts_with('\'');
    if quoted {
        chars.next();
    }
    let mut end = value_text.len();
    let mut closed = !quoted;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '\'' if quoted => {
                end = i + 1;
                closed = true;
                break;
            }
            c if !quoted && c.is_whitespace() => {
                end = i;
                break;
            }
            c => value.push(c),
        }
    }
    if !closed {
        return Err(format!("unterminated quoted value for {key:?} in the connection string"));
    }
    Ok((key, value, value_start + end))
}
