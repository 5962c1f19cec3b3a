//! Every control of the panel can be found and operated by a screen reader: checked through
//! Slint's element search API (the accessibility tree AccessKit exports), no display needed.

use hardmute_panel::ui::{ListenerRow, PanelWindow};
use i_slint_backend_testing::{AccessibleRole, ElementHandle, ElementQuery};
use slint::{ComponentHandle, ModelRc, VecModel};
use std::cell::Cell;
use std::rc::Rc;

/// Roles a user interacts with or must be told about; each needs a label.
fn needs_label(role: AccessibleRole) -> bool {
    matches!(
        role,
        AccessibleRole::Button
            | AccessibleRole::Checkbox
            | AccessibleRole::Combobox
            | AccessibleRole::TextInput
            | AccessibleRole::ListItem
            | AccessibleRole::ProgressIndicator
            | AccessibleRole::Tab
            | AccessibleRole::Switch
            | AccessibleRole::Slider
            | AccessibleRole::Spinbox
            | AccessibleRole::RadioButton
    )
}

fn describe(element: &ElementHandle) -> String {
    format!(
        "{:?} {:?} (id {:?})",
        element.accessible_role(),
        element.type_name(),
        element.id()
    )
}

#[test]
fn every_control_has_an_accessible_label_and_the_state_button_is_operable() {
    i_slint_backend_testing::init_no_event_loop();
    let ui = PanelWindow::new().unwrap();
    ui.set_connected(true);
    ui.set_muted(false); // live: the meter is drawn
    ui.set_level_feed(true);
    ui.set_physical_open(true);
    ui.set_listeners(ModelRc::new(VecModel::from(vec![
        ListenerRow {
            app: "zoom (pid 4)".into(),
            target: "HardMute Microphone".into(),
            direct: false,
        },
        ListenerRow {
            app: "recorder (pid 9)".into(),
            target: "USB mic".into(),
            direct: true,
        },
    ])));
    ui.show().unwrap();

    let all = ElementQuery::from_root(&ui).find_all();
    let controls: Vec<&ElementHandle> = all
        .iter()
        .filter(|e| e.accessible_role().is_some_and(needs_label))
        .collect();
    let unlabelled: Vec<String> = controls
        .iter()
        .filter(|e| e.accessible_label().is_none_or(|l| l.trim().is_empty()))
        .map(|e| describe(e))
        .collect();
    assert!(
        unlabelled.is_empty(),
        "controls without an accessible label: {unlabelled:#?}"
    );
    // State button, device and mode choosers, hotkey field, Apply, two checkboxes, the meter
    // (the Settings tab is the visible one): the query must actually see them.
    let count = |role| {
        controls
            .iter()
            .filter(|e| e.accessible_role() == Some(role))
            .count()
    };
    assert!(
        count(AccessibleRole::Button) >= 2,
        "{controls:#?}",
        controls = controls.iter().map(|e| describe(e)).collect::<Vec<_>>()
    );
    assert_eq!(count(AccessibleRole::Checkbox), 2);
    assert!(count(AccessibleRole::Combobox) >= 2);
    assert_eq!(count(AccessibleRole::TextInput), 1);
    assert_eq!(count(AccessibleRole::ProgressIndicator), 1);

    // Muted: no meter; the line saying why has a label.
    ui.set_muted(true);
    ui.set_level_note("hidden while muted".into());
    let meters = ElementQuery::from_root(&ui)
        .find_all()
        .iter()
        .filter(|e| e.accessible_role() == Some(AccessibleRole::ProgressIndicator))
        .count();
    assert_eq!(meters, 0, "no meter while muted");
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, "Mic level: hidden while muted").count(),
        1
    );

    // The state is announced, and the screen reader's default action presses the button.
    let clicks = Rc::new(Cell::new(0));
    ui.on_state_clicked({
        let clicks = clicks.clone();
        move || clicks.set(clicks.get() + 1)
    });
    let muted: Vec<_> = ElementHandle::find_by_accessible_label(&ui, "Microphone muted").collect();
    assert_eq!(muted.len(), 1, "one element announces the muted state");
    assert_eq!(muted[0].accessible_role(), Some(AccessibleRole::Button));
    muted[0].invoke_accessible_default_action();
    assert_eq!(clicks.get(), 1, "the default action is a click");

    ui.set_muted(false);
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, "Microphone live").count(),
        1,
        "the label follows the state"
    );
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, "Microphone muted").count(),
        0
    );
}
