//! The UCI hydraulic test rig as equipment: its components, the 17 sensors on them, and the
//! hydraulic connections (a working circuit and a cooling-filtration circuit joined by the
//! tank), after Helwig et al. 2015.

use crate::domain::{Component, ComponentId, Connection, Sensor, SensorId, Topology};

/// Sensor id, data file, kind, unit, valid range, component.
pub const RIG_SENSORS: [(&str, &str, &str, &str, f64, f64, &str); 17] = [
    ("PS1", "PS1_1hz", "pressure", "bar", 0.0, 250.0, "pump"),
    ("PS2", "PS2_1hz", "pressure", "bar", 0.0, 250.0, "valve"),
    ("PS3", "PS3_1hz", "pressure", "bar", 0.0, 25.0, "valve"),
    ("PS4", "PS4_1hz", "pressure", "bar", 0.0, 25.0, "accumulator"),
    ("PS5", "PS5_1hz", "pressure", "bar", 0.0, 25.0, "cooler"),
    ("PS6", "PS6_1hz", "pressure", "bar", 0.0, 25.0, "cooler"),
    ("EPS1", "EPS1_1hz", "power", "W", 0.0, 5000.0, "motor"),
    ("FS1", "FS1_1hz", "flow", "l/min", 0.0, 25.0, "pump"),
    ("FS2", "FS2_1hz", "flow", "l/min", 0.0, 25.0, "cooler"),
    ("TS1", "TS1", "temperature", "degC", -20.0, 100.0, "tank"),
    ("TS2", "TS2", "temperature", "degC", -20.0, 100.0, "tank"),
    ("TS3", "TS3", "temperature", "degC", -20.0, 100.0, "cooler"),
    ("TS4", "TS4", "temperature", "degC", -20.0, 100.0, "cooler"),
    ("VS1", "VS1", "vibration", "mm/s", 0.0, 20.0, "pump"),
    ("CE", "CE", "efficiency", "%", 0.0, 120.0, "cooler"),
    ("CP", "CP", "power", "kW", 0.0, 10.0, "cooler"),
    ("SE", "SE", "efficiency", "%", 0.0, 120.0, "pump"),
];

const COMPONENTS: [(&str, &str, &str); 6] = [
    ("motor", "motor", "Main motor M1"),
    ("pump", "pump", "Main pump MP1"),
    ("valve", "valve", "Switching valve V10"),
    ("accumulator", "accumulator", "Hydraulic accumulators A1-A4"),
    ("cooler", "cooler", "Cooler C1 (cooling-filtration circuit)"),
    ("tank", "tank", "Oil tank"),
];

const CONNECTIONS: [(&str, &str); 6] = [
    ("motor", "pump"),
    ("tank", "pump"),
    ("pump", "valve"),
    ("valve", "accumulator"),
    ("valve", "tank"),
    ("tank", "cooler"),
];

fn id<T>(parse: fn(&str) -> Result<T, crate::domain::DomainError>, text: &str) -> T {
    parse(text).expect("rig ids are constant and valid")
}

/// The rig's topology; valid by construction (a unit test proves it).
pub fn rig_topology() -> Topology {
    Topology {
        components: COMPONENTS
            .iter()
            .map(|(cid, kind, name)| Component { id: id(ComponentId::parse, cid), kind: (*kind).into(), name: Some((*name).into()) })
            .collect(),
        sensors: RIG_SENSORS
            .iter()
            .map(|(sid, _, kind, unit, min, max, component)| Sensor {
                id: id(SensorId::parse, sid),
                kind: (*kind).into(),
                unit: (*unit).into(),
                sample_rate_hz: 1.0,
                min: *min,
                max: *max,
                component: id(ComponentId::parse, component),
            })
            .collect(),
        connections: CONNECTIONS
            .iter()
            .map(|(a, b)| Connection { from: id(ComponentId::parse, a), to: id(ComponentId::parse, b) })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rig_topology_is_valid() {
        let topology = super::rig_topology().validate().unwrap();
        assert_eq!(topology.sensors.len(), 17);
    }
}
