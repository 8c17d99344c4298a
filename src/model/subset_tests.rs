use std::path::Path;

use super::*;
use crate::domain::{ComponentId, Connection, Sensor, SensorId};
use crate::rig::rig_topology;

fn shipped() -> RigModel {
    RigModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::model::DEFAULT_MODEL_DIR)).unwrap()
}

fn window() -> HashMap<String, Vec<f64>> {
    crate::rig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::rig::SAMPLE_DATA)).unwrap()[0].window()
}

/// The rig without some sensors.
fn without(sensors: &[&str]) -> Topology {
    let mut t = rig_topology();
    t.sensors.retain(|s| !sensors.contains(&s.id.as_str()));
    t
}

fn sensor(id: &str, kind: &str, unit: &str, component: &str) -> Sensor {
    Sensor { id: SensorId::parse(id).unwrap(), kind: kind.into(), unit: unit.into(), sample_rate_hz: 1.0, min: 0.0, max: 100.0, component: ComponentId::parse(component).unwrap() }
}

fn confidence(score: &ComponentScore) -> f64 {
    score.features.as_ref().unwrap()[CONFIDENCE]
}

#[test]
fn the_shipped_artifact_knows_its_kinds_from_the_rig_topology_it_was_trained_on() {
    let model = shipped();
    assert_eq!(model.kinds(), Some(&Kinds::of(&rig_topology())));
    let map = model.map_topology(&rig_topology()).unwrap();
    assert!(map.sensors.iter().chain(&map.components).all(|(s, m)| s == m), "the rig maps onto itself id for id: {map:?}");
    for row in model.evidence() {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9 && row.iter().all(|w| *w > 0.0), "{row:?}");
    }
}

#[test]
fn a_press_without_its_cooler_circuit_is_scored_without_a_cooler_and_with_less_confidence() {
    let model = shipped();
    let mut topology = without(&["PS5", "PS6", "FS2", "TS3", "TS4", "CE", "CP"]);
    topology.components.retain(|c| c.id.as_str() != "cooler");
    topology.connections.retain(|k| k.from.as_str() != "cooler" && k.to.as_str() != "cooler");
    let map = model.map_topology(&topology).unwrap();
    let (full, _) = model.score_system(None, &window(), 60.0);
    let (subset, drivers) = model.score_system(Some(&map), &window(), 60.0);
    let ids: Vec<&str> = subset.iter().map(|s| s.component_id.as_str()).collect();
    assert_eq!(ids, ["valve", "pump", "accumulator"], "the model's targets the system has, in the model's order");
    assert!(!drivers.contains_key("cooler"));
    for score in &subset {
        let all = full.iter().find(|s| s.component_id == score.component_id).unwrap();
        assert!((confidence(all) - 1.0).abs() < 1e-9, "the whole rig holds all the evidence: {all:?}");
        assert!(confidence(score) > 0.0 && confidence(score) < confidence(all), "{score:?}");
        assert!(!score.features.as_ref().unwrap().keys().any(|k| k.starts_with("PS5.")), "nothing of a sensor the system lacks");
    }
}

#[test]
fn scores_and_drivers_come_back_under_the_systems_own_ids() {
    let model = shipped();
    let mut topology = without(&["PS3"]);
    fn rename(id: &str) -> &str {
        match id {
            "pump" => "MP1",
            "VS1" => "pump-vibration",
            other => other,
        }
    }
    for c in &mut topology.components {
        c.id = ComponentId::parse(rename(c.id.as_str())).unwrap();
    }
    for s in &mut topology.sensors {
        s.id = SensorId::parse(rename(s.id.as_str())).unwrap();
        s.component = ComponentId::parse(rename(s.component.as_str())).unwrap();
    }
    for k in &mut topology.connections {
        *k = Connection { from: ComponentId::parse(rename(k.from.as_str())).unwrap(), to: ComponentId::parse(rename(k.to.as_str())).unwrap() };
    }
    let map = model.map_topology(&topology).unwrap();
    assert!(map.sensors.contains(&("pump-vibration".into(), "VS1".into())), "the pump's one vibration sensor, whatever its id: {map:?}");
    let mut theirs = window();
    theirs.remove("PS3");
    let vibration = theirs.remove("VS1").unwrap();
    theirs.insert("pump-vibration".into(), vibration);
    let (renamed, drivers) = model.score_system(Some(&map), &theirs, 60.0);
    let (same, _) = model.score_system(Some(&model.map_topology(&without(&["PS3"])).unwrap()), &window(), 60.0);
    let pump = renamed.iter().find(|s| s.component_id == "MP1").expect("the pump under the system's id");
    let rig_pump = same.iter().find(|s| s.component_id == "pump").unwrap();
    assert_eq!((pump.score, &pump.condition), (rig_pump.score, &rig_pump.condition), "the same verdict as under the rig's ids");
    assert!(pump.features.as_ref().unwrap().contains_key("pump-vibration.mean"), "{pump:?}");
    assert!(drivers.keys().all(|c| c != "pump") && drivers.values().flatten().all(|d| d.sensor_id != "VS1"), "{drivers:?}");
}

#[test]
fn a_sensor_without_a_counterpart_or_with_several_refuses_the_mapping() {
    let model = shipped();
    let refusal = |t: &Topology| model.map_topology(t).unwrap_err();
    // One pressure on the cooler, named as neither of the model's two there.
    let mut t = without(&["PS6"]);
    t.sensors.iter_mut().find(|s| s.id.as_str() == "PS5").unwrap().id = SensorId::parse("cooler-pressure").unwrap();
    assert!(matches!(refusal(&t), Unmapped::Ambiguous { ref candidates, .. } if candidates == &["PS5", "PS6"]), "{:?}", refusal(&t));
    assert_eq!(refusal(&t).reason(), "ambiguous");
    // The same kind in another unit, a kind the model has not on that component, a component
    // kind it has not.
    let mut t = without(&[]);
    t.sensors.iter_mut().find(|s| s.id.as_str() == "PS1").unwrap().unit = "psi".into();
    assert!(matches!(refusal(&t), Unmapped::NoSensor { ref id, .. } if id == "PS1"));
    let mut t = without(&[]);
    t.sensors.push(sensor("TS9", "temperature", "degC", "valve"));
    assert_eq!(refusal(&t).reason(), "no_counterpart");
    let mut t = without(&[]);
    t.components.push(crate::domain::Component { id: ComponentId::parse("filter").unwrap(), kind: "filter".into(), name: None });
    assert!(matches!(refusal(&t), Unmapped::NoComponent { .. }));
    // A connection the rig does not have: another machine, whatever its parts.
    let mut t = without(&[]);
    t.connections.push(Connection { from: ComponentId::parse("pump").unwrap(), to: ComponentId::parse("accumulator").unwrap() });
    assert!(matches!(refusal(&t), Unmapped::NoConnection { .. }));
    // Two pumps on the model's one.
    let mut t = without(&[]);
    t.components.push(crate::domain::Component { id: ComponentId::parse("pump2").unwrap(), kind: "pump".into(), name: None });
    assert!(matches!(refusal(&t), Unmapped::Twice { ref model, .. } if model == "pump"));
    // Only a motor and a tank: nothing the model diagnoses.
    let mut t = without(&[]);
    t.components.retain(|c| ["motor", "tank"].contains(&c.id.as_str()));
    t.sensors.retain(|s| ["motor", "tank"].contains(&s.component.as_str()));
    t.connections.retain(|k| k.from.as_str() == "motor" && k.to.as_str() == "tank");
    assert_eq!(refusal(&t), Unmapped::NoTarget);
}

#[test]
fn a_manifest_declaring_kinds_that_do_not_cover_its_graph_does_not_load() {
    let model = shipped();
    let mut manifest = model.manifest().clone();
    manifest.kinds = Some(Kinds::of(&rig_topology()));
    let declared = RigModel::new(manifest.clone(), model.weights().clone()).unwrap();
    assert_eq!(declared.kinds(), model.kinds());
    manifest.kinds.as_mut().unwrap().sensors.remove("PS3");
    assert!(RigModel::new(manifest, model.weights().clone()).is_err());
}

#[test]
fn confidence_falls_as_a_components_sensors_go_missing() {
    let model = shipped();
    let valve = |w: &HashMap<String, Vec<f64>>| confidence(&model.score_system(None, w, 60.0).0[1]);
    let mut w = window();
    let whole = valve(&w);
    w.remove("TS1");
    let far = valve(&w);
    w.remove("PS3");
    let own = valve(&w);
    assert!(whole > far && far > own, "{whole} {far} {own}");
    assert!(whole - far < far - own, "a sensor on the valve counts more than one on its neighbour");
}
