use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = manifold::cli::Cli::parse();
    let code = manifold::cli::run(cli, std::env::vars().collect()).await;
    std::process::exit(code);
}
