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

/// The protection banners (default input not protected, another user owns the mic) and the
/// "Check protection" table are told to a screen reader, and their buttons work from it.
#[test]
fn protection_banners_and_the_check_table_are_announced_and_operable() {
    use hardmute_panel::ui::CheckRow;
    i_slint_backend_testing::init_no_event_loop();
    let ui = PanelWindow::new().unwrap();
    ui.set_connected(true);
    ui.set_muted(true);
    ui.show().unwrap();
    let default_note = "⚠ Apps on the default input are NOT protected: the default input is usb";
    let owner_note =
        "Another user of this computer owns the HardMute Microphone: only that user can unmute it.";
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, default_note).count(),
        0,
        "no banner while protected"
    );
    ui.set_default_note(default_note.into());
    ui.set_owner_note(owner_note.into());
    ui.set_can_unmute(false);
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, default_note).count(),
        1
    );
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, owner_note).count(),
        1
    );

    let protects = Rc::new(Cell::new(0));
    ui.on_protect_clicked({
        let protects = protects.clone();
        move || protects.set(protects.get() + 1)
    });
    let protect: Vec<_> = ElementHandle::find_by_accessible_label(
        &ui,
        "Make the HardMute Microphone the default input again",
    )
    .collect();
    assert_eq!(protect.len(), 1, "the banner's Protect button");
    protect[0].invoke_accessible_default_action();
    assert_eq!(protects.get(), 1);

    ui.set_check_rows(ModelRc::new(VecModel::from(vec![CheckRow {
        route: "default input".into(),
        status: "OPEN".into(),
        open: true,
        detail: "the default input is usb".into(),
        fix: "run `hardmute protect`".into(),
        fixable: true,
    }])));
    ui.set_current_tab(2); // Protection
    let checks = Rc::new(Cell::new(0));
    ui.on_check_clicked({
        let checks = checks.clone();
        move || checks.set(checks.get() + 1)
    });
    let button: Vec<_> = ElementQuery::from_root(&ui)
        .find_all()
        .into_iter()
        .filter(|e| {
            e.accessible_label()
                .is_some_and(|l| l.starts_with("Check protection"))
        })
        .collect();
    assert_eq!(button.len(), 1, "the Check protection button");
    button[0].invoke_accessible_default_action();
    assert_eq!(checks.get(), 1);
    let row =
        "default input: OPEN. the default input is usb. How to close it: run `hardmute protect`";
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, row).count(),
        1,
        "the table's row is one announced list item"
    );
}

/// The guard's toggle (macOS, Windows: the daemon's state carries `guard`) is found and
/// operated from a screen reader; without it (Linux) only the line saying what to do is there.
#[test]
fn the_guard_toggle_is_announced_and_operable_and_absent_without_a_daemon_held_guard() {
    i_slint_backend_testing::init_no_event_loop();
    let ui = PanelWindow::new().unwrap();
    ui.set_connected(true);
    ui.set_current_tab(2); // Protection
    ui.show().unwrap();
    let toggles = || -> Vec<ElementHandle> {
        ElementQuery::from_root(&ui)
            .find_all()
            .into_iter()
            .filter(|e| {
                e.accessible_role() == Some(AccessibleRole::Checkbox)
                    && e.accessible_label()
                        .is_some_and(|l| l.starts_with("Block other apps from the physical"))
            })
            .collect()
    };
    assert!(toggles().is_empty(), "no state yet: no guard control");

    // Linux: no toggle, the line saying to use the CLI.
    let linux = hardmute_panel::view::GUARD_LINUX_NOTE;
    ui.set_guard_line(linux.into());
    assert!(
        toggles().is_empty(),
        "no toggle without a daemon-held guard"
    );
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, &format!("Guard: {linux}")).count(),
        1
    );

    // macOS / Windows: the toggle; the screen reader's default action flips it and asks.
    let asked = Rc::new(Cell::new(None));
    ui.on_guard_toggled({
        let asked = asked.clone();
        move |on| asked.set(Some(on))
    });
    ui.set_guard_shown(true);
    ui.set_guard_line("Off: any app may open a physical mic directly, around the mute.".into());
    let found = toggles();
    assert_eq!(found.len(), 1, "the guard's toggle");
    found[0].invoke_accessible_default_action();
    assert_eq!(asked.get(), Some(true), "a click asks for the guard on");
    assert!(ui.get_guard_on());
    let error = "⚠ The guard was not changed: hardmuted: refused";
    ui.set_guard_error(error.into());
    assert_eq!(
        ElementHandle::find_by_accessible_label(&ui, error).count(),
        1,
        "a refusal is announced"
    );
}
