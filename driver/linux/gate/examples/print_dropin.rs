//! Prints the drop-in for a plugin path (default: where the .deb installs it):
//! `cargo run -p hardmute-linux-gate --example print_dropin > installer/linux/debian/50-hardmute.conf`.
fn main() {
    let plugin = std::env::args()
        .nth(1)
        .unwrap_or_else(|| hardmute_linux_gate::dropin::PACKAGED_PLUGIN.to_owned());
    print!("{}", hardmute_linux_gate::dropin::render(&plugin, false));
}
