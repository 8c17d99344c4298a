//! Reads the module paths a Rust source file names: every `crate::` and `super::` path (in
//! `main.rs`, `manifold::`), resolved to an absolute module path from the crate root. A
//! hand-rolled reader, not `syn`: the crate does not depend on a parser, and these few forms
//! are all the architecture test needs.

/// The source with comments, string and char literals blanked (newlines kept, so line numbers
/// hold): a path in a doc comment or an `include_str!` is not a dependency.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r' && (next == Some('"') || next == Some('#')) && (i == 0 || !is_ident(c[i - 1]) || (c[i - 1] == 'b' && (i < 2 || !is_ident(c[i - 2])))) {
            // Raw string: r"…", r#"…"#, br"…".
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            while j < c.len() && !c[j..].iter().take(close.len()).copied().eq(close.chars()) {
                blank(&mut out, c[j]);
                j += 1;
            }
            i = j + close.len();
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = c.get(i) {
                    blank(&mut out, ch);
                }
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && (c.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime has no closing quote.
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// `src/api/auth.rs` → [api, auth]; `src/api/mod.rs` → [api]; `src/main.rs` → [main].
pub fn file_module(path: &str) -> Vec<String> {
    let inner = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// One reference: the line, and the module path it names (absolute, from the crate root).
pub fn references(path: &str, src: &str) -> Vec<(usize, Vec<String>)> {
    let code = strip(src);
    let chars: Vec<char> = code.chars().collect();
    let base = file_module(path);
    // Inline `mod name { … }` blocks shift what `super::` means; tracked by brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut line = 1;
    let mut found = Vec::new();
    let mut i = 0;
    let word_at = |i: usize, w: &str| {
        chars[i..].iter().take(w.len()).copied().eq(w.chars())
            && (i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '$'))
            && chars.get(i + w.len()).is_none_or(|c| !is_ident(*c))
    };
    while i < chars.len() {
        match chars[i] {
            '\n' => line += 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if word_at(i, "mod") {
            let rest: String = chars[i + 3..].iter().take(80).collect();
            let name: String = rest.trim_start().chars().take_while(|c| is_ident(*c)).collect();
            if rest.trim_start()[name.len()..].trim_start().starts_with('{') {
                inline.push((name, depth));
            }
        }
        let root = if path == "src/main.rs" { "manifold" } else { "crate" };
        if word_at(i, root) || word_at(i, "super") {
            let here: Vec<String> = base.iter().cloned().chain(inline.iter().map(|(n, _)| n.clone())).collect();
            let (segments, end) = path_at(&chars, i);
            for target in resolve(&here, &segments) {
                found.push((line, target));
            }
            // A group may span lines (and holds its own braces, which do not open blocks).
            line += chars[i..end].iter().filter(|c| **c == '\n').count();
            i = end;
            continue;
        }
        i += 1;
    }
    found
}

/// The path starting at `i`: segments up to the first group, then each group member's first
/// segment as an alternative (`crate::{a, b::c}` names a and b).
fn path_at(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        prefix.push(chars[start..i].iter().collect::<String>());
        let mut j = i;
        while chars.get(j).is_some_and(|c| c.is_whitespace()) {
            j += 1;
        }
        if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
            j += 2;
            while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            if chars.get(j) == Some(&'{') {
                // Members are split at the group's own commas; a nested group belongs to its member.
                let (mut level, mut k, mut members, mut member) = (0, j, Vec::new(), String::new());
                while k < chars.len() {
                    match chars[k] {
                        '{' => level += 1,
                        '}' => level -= 1,
                        ',' if level == 1 => members.push(std::mem::take(&mut member)),
                        ch if level == 1 => member.push(ch),
                        _ => {}
                    }
                    k += 1;
                    if level == 0 {
                        break;
                    }
                }
                members.push(member);
                let members = members
                    .iter()
                    .map(|m| m.trim().split(|c: char| !is_ident(c)).next().unwrap_or("").to_owned())
                    .filter(|m| !m.is_empty())
                    .map(|m| prefix.iter().cloned().chain(std::iter::once(m)).collect())
                    .collect();
                return (members, k);
            }
            if chars.get(j).is_some_and(|c| is_ident(*c)) {
                i = j;
                continue;
            }
        }
        return (vec![prefix], i);
    }
}

/// Absolute module path of `segments` seen from module `here` (leading `crate`, `manifold`
/// and `super`s resolved).
fn resolve(here: &[String], alternatives: &[Vec<String>]) -> Vec<Vec<String>> {
    alternatives
        .iter()
        .filter_map(|segments| {
            let mut at: Vec<String> = here.to_vec();
            let mut rest = segments.as_slice();
            if rest.first().is_some_and(|s| s == "crate" || s == "manifold") {
                at.clear();
                rest = &rest[1..];
            }
            while rest.first().is_some_and(|s| s == "super") {
                at.pop()?;
                rest = &rest[1..];
            }
            at.extend(rest.iter().filter(|s| !s.is_empty() && *s != "self").cloned());
            (!at.is_empty()).then_some(at)
        })
        .collect()
}

