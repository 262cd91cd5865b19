//! The sandbox helper as a binary of its own, for this crate's tests and bench (the server
//! re-executes itself instead): `sandbox-helper --async-coder-sandbox-helper <configuration>`.

fn main() {
    if sandbox::is_helper_invocation() {
        sandbox::helper_main();
    }
    eprintln!("this is the sandbox helper; it is started by the sandbox, not by hand");
    std::process::exit(2);
}
