use super::*;
use crate::domain::RejectKind;

fn sensor(id: &str, component: &str) -> Sensor {
    Sensor {
        id: SensorId::parse(id).unwrap(),
        kind: "pressure".into(),
        unit: "bar".into(),
        sample_rate_hz: 1.0,
        min: 0.0,
        max: 200.0,
        component: ComponentId::parse(component).unwrap(),
    }
}

fn component(id: &str, kind: &str) -> Component {
    Component { id: ComponentId::parse(id).unwrap(), kind: kind.into(), name: None }
}

fn link(a: &str, b: &str) -> Connection {
    Connection { from: ComponentId::parse(a).unwrap(), to: ComponentId::parse(b).unwrap() }
}

fn small() -> Topology {
    Topology {
        components: vec![component("pump", "pump"), component("valve", "valve"), component("cooler", "cooler")],
        sensors: vec![sensor("PS1", "pump"), sensor("PS2", "valve")],
        connections: vec![link("pump", "valve"), link("valve", "cooler")],
    }
}

#[test]
fn a_connected_topology_with_resolving_references_is_valid() {
    assert!(small().validate().is_ok());
}

#[test]
fn invalid_topologies_name_the_offending_field() {
    let mut t = small();
    t.sensors.push(sensor("PS1", "pump"));
    assert_eq!(t.validate().unwrap_err().field, "topology.sensors[2].id");

    let mut t = small();
    t.sensors[1].component = ComponentId::parse("ghost").unwrap();
    assert_eq!(t.validate().unwrap_err().field, "topology.sensors[1].component");

    let mut t = small();
    t.connections.pop();
    let err = t.validate().unwrap_err();
    assert_eq!(err.field, "topology.connections");
    assert!(err.message.contains("cooler"), "{err}");

    let mut t = small();
    t.sensors[0].min = 300.0;
    assert_eq!(t.validate().unwrap_err().field, "topology.sensors[0].min");

    let mut t = small();
    t.components[2].kind = "teapot".into();
    assert_eq!(t.validate().unwrap_err().field, "topology.components[2].kind");

    let mut t = small();
    t.connections.push(link("pump", "nowhere"));
    assert_eq!(t.validate().unwrap_err().field, "topology.connections[2].to");
}

#[test]
fn hash_ignores_order_and_names_but_not_shape() {
    let a = small();
    let mut b = small();
    b.components.reverse();
    b.components[0].name = Some("Main cooler".into());
    b.connections = vec![link("cooler", "valve"), link("valve", "pump")];
    assert_eq!(a.hash(), b.hash());
    let mut c = small();
    c.sensors[1].component = ComponentId::parse("pump").unwrap();
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn control_characters_in_free_text_are_refused_naming_the_field() {
    for (edit, field) in [
        ((|t: &mut Topology| t.sensors[0].unit = "b\u{0}ar".into()) as fn(&mut Topology), "topology.sensors[0].unit"),
        (|t: &mut Topology| t.sensors[1].kind = "pres\nsure".into(), "topology.sensors[1].kind"),
        (|t: &mut Topology| t.components[1].name = Some("Valve \u{1b}[31m".into()), "topology.components[1].name"),
        (|t: &mut Topology| t.components[0].name = Some("x".repeat(201)), "topology.components[0].name"),
        (|t: &mut Topology| t.components[0].name = Some("  ".into()), "topology.components[0].name"),
    ] {
        let mut t = small();
        edit(&mut t);
        let err = t.validate().unwrap_err();
        assert_eq!((err.kind, err.field.as_str()), (RejectKind::InvalidField, field));
        assert!(!err.message.contains('\u{0}') && !err.message.contains('\u{1b}'), "{err}");
    }
    let mut t = small();
    t.components[0].name = Some("Main pump — Ø 40 mm".into());
    assert!(t.validate().is_ok(), "printable non-ASCII names are fine");
}

#[test]
fn an_unknown_component_kind_is_echoed_bounded() {
    let mut t = small();
    t.components[0].kind = "k".repeat(600_000);
    let err = t.validate().unwrap_err();
    assert_eq!(err.field, "topology.components[0].kind");
    assert!(err.message.len() < 400, "{} bytes", err.message.len());
    assert!(err.message.contains("600000 bytes"));
}

#[test]
fn ranges_are_bounded_to_finite_physical_magnitudes() {
    for (min, max, field) in [
        (-1e308, 0.0, "topology.sensors[0].min"),
        (0.0, 1e308, "topology.sensors[0].max"),
        (0.0, f64::INFINITY, "topology.sensors[0].max"),
        (f64::NAN, 1.0, "topology.sensors[0].min"),
        (-1.000_001e9, 0.0, "topology.sensors[0].min"),
        (5.0, 5.0, "topology.sensors[0].min"),
    ] {
        let mut t = small();
        (t.sensors[0].min, t.sensors[0].max) = (min, max);
        assert_eq!(t.validate().unwrap_err().field, field, "[{min}, {max}]");
    }
    let mut t = small();
    (t.sensors[0].min, t.sensors[0].max) = (-Sensor::MAX_MAGNITUDE, Sensor::MAX_MAGNITUDE);
    assert!(t.validate().is_ok(), "the bound itself is allowed");
}

proptest::proptest! {
    /// Whatever a client sends, a topology that validates holds only text jsonb and every
    /// later consumer can store, and ranges whose sums cannot overflow.
    #[test]
    fn a_valid_topology_holds_only_storable_values(
        kind in proptest::prop_oneof!["[a-z]{1,10}", ".{0,40}"],
        unit in proptest::prop_oneof!["\\PC{1,3}", ".{0,40}"],
        name in proptest::option::of(proptest::prop_oneof!["\\PC{1,30}", ".{0,220}"]),
        min in proptest::prop_oneof![proptest::num::f64::ANY, -2e9..0.0f64, proptest::strategy::Just(-1e308)],
        max in proptest::prop_oneof![proptest::num::f64::ANY, 0.0..2e9f64, proptest::strategy::Just(1e308)],
    ) {
        let mut t = small();
        t.sensors[0].kind = kind;
        t.sensors[0].unit = unit;
        t.components[0].name = name;
        (t.sensors[0].min, t.sensors[0].max) = (min, max);
        if let Ok(t) = t.validate() {
            for s in &t.sensors {
                proptest::prop_assert!(crate::domain::text::is_clean(&s.kind, 32) && crate::domain::text::is_clean(&s.unit, 32));
                proptest::prop_assert!(s.min.is_finite() && s.max.is_finite() && s.min < s.max);
                proptest::prop_assert!(s.min.abs() <= Sensor::MAX_MAGNITUDE && s.max.abs() <= Sensor::MAX_MAGNITUDE);
                // The aggregate's worst case: as many readings at the bound as a bucket can count.
                proptest::prop_assert!((i64::MAX as f64 * s.max.abs().max(s.min.abs())).is_finite());
            }
            for c in &t.components {
                proptest::prop_assert!(c.name.as_deref().is_none_or(|n| crate::domain::text::is_clean(n, 200)));
            }
            proptest::prop_assert!(serde_json::to_string(&t).is_ok_and(|json| !json.contains("\\u0000")));
        }
    }
}
