//! `hardmute-leaktest`: runs the leak test and writes the report. Until the `hardmute` CLI has a
//! `leak-test` subcommand this binary is the entry point; the subcommand will call the same
//! [`hardmute_leaktest::cli_main`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(hardmute_leaktest::cli::main(&args));
}
