fn main() {
    slint_build::compile("ui/panel.slint").expect("ui/panel.slint compiles");
}
