fn main() {
    // Element debug info lets the accessibility test walk the element tree (Slint's search
    // API); release builds leave it out.
    let debug_build = std::env::var("PROFILE").as_deref() == Ok("debug");
    let config = slint_build::CompilerConfiguration::new().with_debug_info(debug_build);
    slint_build::compile_with_config("ui/panel.slint", config).expect("ui/panel.slint compiles");
}
