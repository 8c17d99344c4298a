use clap::Parser;

fn main() {
    cap_malloc_arenas();
    let cli = manifold::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime");
    let code = runtime.block_on(manifold::cli::run(cli, std::env::vars().collect()));
    drop(runtime);
    std::process::exit(code);
}

/// glibc gives each thread that allocates under contention an arena of its own, up to eight per
/// core, and memory freed in one arena is not reused by another: with tokio's workers, the
/// blocking pool and librdkafka's threads that fragmentation was 4 MB of `ingest`'s and 7 MB of
/// `run`'s peak (benches/rss/run). Two arenas keep the peak down at no measurable cost on two
/// cores. It must happen before the first thread starts; `MALLOC_ARENA_MAX` still overrides it.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tunables; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
