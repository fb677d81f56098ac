//! `tappaas-installer`: a thin dispatcher into the library (see `cli.rs`).

fn main() -> std::process::ExitCode {
    tappaas_installer::cli::main()
}
