//! `hardmute-leak-test`: runs the leak test and writes the report. `hardmute leak-test ARGS`
//! runs this program (found beside `hardmute`, else on PATH) with the same arguments.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(hardmute_leaktest::cli::main(&args));
}
