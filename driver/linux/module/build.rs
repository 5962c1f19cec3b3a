//! Links libpipewire-0.3 (Debian: `libpipewire-0.3-dev`, installed by scripts/deps.sh). The
//! bindings themselves are hand-written (src/ffi.rs); only the library is looked up here.
fn main() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("0.3.65")
        .probe("libpipewire-0.3")
    {
        panic!("libpipewire-0.3 >= 0.3.65 not found (apt-get install libpipewire-0.3-dev): {e}");
    }
}
