//! The image: the Dockerfile's stages, its COPY sources and build context, hadolint and the
//! house rules, and the runtime packages against the binary's shared libraries.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use manifold::config::{Config, Sources};

use super::dockerfile;
use super::tools::*;

/// Every bind mount and every `COPY` source exists, the COPY sources are in the build context,
/// and the build stage copies every directory the code `include_str!`s from.
#[test]
fn every_mounted_path_and_copy_source_exists() {
    let mut missing = Vec::new();
    for (name, svc) in services() {
        for (source, target) in binds(svc) {
            if !source.exists() {
                missing.push(format!("service `{name}` mounts {} (at {target}), which does not exist", source.display()));
            }
        }
    }
    let stages = dockerfile::stages(&std::fs::read_to_string(repo().join("Dockerfile")).unwrap());
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for stage in &stages {
        for (sources, _) in stage.context_copies() {
            for source in sources {
                let rel = source.trim_start_matches("./").trim_end_matches('/');
                if !repo().join(rel).exists() {
                    missing.push(format!("Dockerfile: COPY {source} does not exist"));
                } else if !dockerfile::in_context(&ignore, Path::new(rel)) {
                    missing.push(format!("Dockerfile: COPY {source} is excluded by .dockerignore"));
                }
            }
        }
    }
    for private in ["target", ".stack", ".git", ".env", "node_modules"] {
        assert!(!dockerfile::in_context(&ignore, Path::new(private)), ".dockerignore must keep {private} out of the build context");
    }
    let copied: Vec<String> = stages[0].context_copies().into_iter().flat_map(|(s, _)| s).map(|s| s.trim_start_matches("./").trim_end_matches('/').to_owned()).collect();
    for dir in included_dirs(&repo().join("src")) {
        if !copied.iter().any(|c| dir == *c || dir.starts_with(&format!("{c}/"))) {
            missing.push(format!("the code include_str!s from {dir}/, which the build stage does not COPY"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Top-level directories of the repository that files under `dir` embed with include_str!/include_bytes!.
fn included_dirs(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(included_dirs(&path));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for part in text.split("include_").skip(1) {
            let Some(arg) = part.strip_prefix("str!(\"").or_else(|| part.strip_prefix("bytes!(\"")) else { continue };
            let rel = &arg[..arg.find('"').unwrap()];
            let target = path.parent().unwrap().join(rel);
            let normal: std::path::PathBuf = target.components().fold(std::path::PathBuf::new(), |mut acc, c| {
                if c == std::path::Component::ParentDir { acc.pop(); } else { acc.push(c); }
                acc
            });
            if let Ok(inside) = normal.strip_prefix(repo()) {
                found.push(inside.components().next().unwrap().as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn dockerfile_passes_hadolint_and_the_house_rules() {
    let out = checker(&["hadolint", repo().join("Dockerfile").to_str().unwrap()], &[]);
    assert!(out.status.success(), "hadolint:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let stages = dockerfile::stages(&std::fs::read_to_string(repo().join("Dockerfile")).unwrap());
    assert!(stages.len() >= 2, "a multi-stage build");
    for stage in &stages {
        let tag = stage.base.rsplit_once(':').map(|(_, t)| t);
        assert!(tag.is_some_and(|t| t != "latest" && t.chars().any(|c| c.is_ascii_digit())), "FROM {} is not pinned to a version", stage.base);
        for run in stage.all("RUN").filter(|r| r.contains("apt-get install")) {
            assert!(run.contains("--no-install-recommends") && run.contains("rm -rf /var/lib/apt/lists"), "RUN {run}: install without recommends and clean the lists");
        }
        assert!(stage.all("ADD").all(|a| !a.contains("://")), "no ADD of URLs");
    }
    for (at, stage) in stages.iter().enumerate() {
        for copy in stage.all("COPY") {
            let Some(from) = copy.split(' ').find_map(|w| w.strip_prefix("--from=")) else { continue };
            assert!(stages[..at].iter().any(|s| s.name.as_deref() == Some(from)), "COPY --from={from} names no earlier stage");
        }
    }
    let runtime = stages.last().unwrap();
    assert!(runtime.base.contains("slim"), "the runtime image is a slim one: {}", runtime.base);
    let user = runtime.all("USER").last().expect("the runtime stage sets USER");
    assert!(!matches!(user.split(':').next(), Some("root" | "0")), "runs as root: USER {user}");
    assert!(runtime.all("ENTRYPOINT").last().is_some_and(|e| e.contains("manifold")), "ENTRYPOINT is manifold");
    // What the binary reads from disk at run time is copied next to it: the model directory,
    // relative to WORKDIR, as infer's environment in compose resolves it.
    let workdir = runtime.all("WORKDIR").last().expect("WORKDIR");
    let config = Config::load(&Sources::default(), &environment(service("infer"))).unwrap();
    let model = config.infer.model_dir.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    let copies = runtime.context_copies();
    assert!(
        copies.iter().any(|(s, d)| s.iter().any(|s| s.trim_end_matches('/') == model) && (d.trim_end_matches('/') == format!("./{model}") || d.trim_end_matches('/') == format!("{workdir}/{model}"))),
        "the runtime stage must COPY {model} into {workdir} (infer.model_dir = {})",
        config.infer.model_dir.display()
    );
}

/// `ldd` of the binary, each library mapped to its Debian package, each package installed by the
/// runtime stage (libc6 is the base image). The test runs on the runtime image's Debian release.
#[test]
fn runtime_packages_cover_the_binarys_shared_libraries() {
    let stages = dockerfile::stages(&std::fs::read_to_string(repo().join("Dockerfile")).unwrap());
    let runtime = stages.last().unwrap();
    let release = std::fs::read_to_string("/etc/os-release").unwrap();
    let field = |name: &str| release.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("?").trim_matches('"').to_owned();
    let (codename, version) = (field("VERSION_CODENAME="), field("VERSION_ID="));
    // Both stages on the host's release: the libraries ldd finds here are the ones the builder
    // links and the runtime image must hold.
    for stage in &stages {
        let tag = stage.base.rsplit_once(':').map_or("", |(_, t)| t);
        assert!(
            tag.contains(&codename) || tag.starts_with(&format!("{version}.")) || tag.starts_with(&format!("{version}-")),
            "this host is Debian {version} ({codename}), stage FROM {}: ldd here says nothing about it", stage.base
        );
    }
    let mut installed = runtime.apt_packages();
    installed.push("libc6".into());
    let out = Command::new("ldd").arg(env!("CARGO_BIN_EXE_manifold")).output().expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut packages = BTreeMap::new();
    for line in text.lines().filter(|l| !l.contains("linux-vdso")) {
        assert!(!line.contains("not found"), "the binary needs a library this host lacks: {line}");
        let path = line.split("=>").nth(1).unwrap_or(line).split_whitespace().next().unwrap();
        packages.insert(path.to_owned(), debian_package(path));
    }
    assert!(packages.len() >= 3, "ldd found too little: {text}");
    let uncovered: Vec<String> = packages.iter().filter(|(_, p)| !installed.contains(p)).map(|(l, p)| format!("{l} ({p})")).collect();
    assert!(uncovered.is_empty(), "the runtime image lacks: {uncovered:?}; it installs {installed:?}");
    // The builder links against the same libraries: the development package that owns each
    // one's link name (libssl.so → libssl-dev) is installed there; the C library and the
    // compiler's own come with the toolchain image.
    let toolchain = ["libc6", "libgcc-s1"];
    let build_packages = stages[0].apt_packages();
    for (library, package) in packages.iter().filter(|(_, p)| !toolchain.contains(&p.as_str())) {
        let file = Path::new(library).file_name().unwrap().to_string_lossy().into_owned();
        let link = format!("/usr/lib/x86_64-linux-gnu/{}", &file[..file.find(".so").unwrap() + 3]);
        let dev = debian_package(&link);
        assert!(build_packages.contains(&dev), "the build stage must install {dev} (link name of {library}, {package}); it installs {build_packages:?}");
    }
}

/// The package owning a library path; `/lib` and `/usr/lib` are one directory (usrmerge) but
/// dpkg knows each file under one of the two names.
fn debian_package(path: &str) -> String {
    let real = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{path}: {e}")).to_string_lossy().into_owned();
    let mut candidates = vec![path.to_owned(), real.clone()];
    for p in [path, real.as_str()] {
        if let Some(rest) = p.strip_prefix("/usr") { candidates.push(rest.to_owned()) } else { candidates.push(format!("/usr{p}")) }
    }
    for candidate in candidates {
        let out = Command::new("dpkg").args(["-S", &candidate]).output().expect("dpkg");
        if out.status.success() {
            let line = String::from_utf8_lossy(&out.stdout).into_owned();
            let package = line.split(':').next().unwrap().trim().to_owned();
            return package;
        }
    }
    panic!("no Debian package holds {path}")
}

