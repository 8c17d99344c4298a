//! A reader for this repository's Dockerfile and .dockerignore: enough to check them, not a
//! general parser (an instruction or pattern it does not know fails the test that meets it).

use std::path::Path;

#[derive(Debug)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

#[derive(Debug)]
pub struct Stage {
    pub base: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    pub fn all(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions.iter().filter(move |i| i.keyword == keyword).map(|i| i.args.as_str())
    }

    /// (sources, destination) of each `COPY` from the build context (not `--from=`).
    pub fn context_copies(&self) -> Vec<(Vec<String>, String)> {
        self.all("COPY")
            .filter(|args| !args.contains("--from="))
            .map(|args| {
                let mut words: Vec<String> = args.split_whitespace().filter(|w| !w.starts_with("--")).map(str::to_owned).collect();
                let dest = words.pop().expect("COPY has a destination");
                (words, dest)
            })
            .collect()
    }

    /// Packages of every `apt-get install` in the stage.
    pub fn apt_packages(&self) -> Vec<String> {
        let mut packages = Vec::new();
        for run in self.all("RUN") {
            for command in run.split("&&") {
                let words: Vec<&str> = command.split_whitespace().collect();
                if let Some(at) = words.windows(2).position(|w| w == ["apt-get", "install"]) {
                    packages.extend(words[at + 2..].iter().filter(|w| !w.starts_with('-')).map(|w| (*w).to_owned()));
                }
            }
        }
        packages
    }
}

pub fn stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
        if keyword == "FROM" {
            let words: Vec<&str> = args.split(' ').filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                [_] => None,
                _ => panic!("cannot read `FROM {args}`"),
            };
            stages.push(Stage { base: words[0].to_owned(), name, instructions: Vec::new() });
        } else {
            let stage = stages.last_mut().unwrap_or_else(|| panic!("{keyword} before the first FROM"));
            stage.instructions.push(Instruction { keyword, args });
        }
    }
    stages
}

/// Whether `.dockerignore` leaves `path` (relative to the context) in the build context. Knows
/// `*`, `name`, `name/`, `name/*` and their `!` negations; the last matching pattern wins.
pub fn in_context(dockerignore: &str, path: &Path) -> bool {
    let mut included = true;
    for line in dockerignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (negated, pattern) = line.strip_prefix('!').map_or((false, line), |p| (true, p));
        let pattern = pattern.trim_start_matches("./").trim_end_matches("/*").trim_end_matches('/');
        assert!(
            pattern == "*" || !pattern.contains(['*', '?', '[']),
            ".dockerignore pattern `{line}` is beyond what this check reads"
        );
        if pattern == "*" || path.starts_with(pattern) {
            included = negated;
        }
    }
    included
}
