use super::*;

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
