//! The `westtek` binary: telemetry, then the command line.

fn main() -> std::process::ExitCode {
    westtek::cli::main()
}
