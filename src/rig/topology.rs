//! The UCI hydraulic test rig as equipment: its components, the 17 sensors on them, and the
//! hydraulic connections (a working circuit and a cooling-filtration circuit joined by the
//! tank), after Helwig et al. 2015.

use crate::domain::{Component, ComponentId, Connection, Sensor, SensorId, Topology};

/// One sensor of the rig, as the data set and the topology describe it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigSensor {
    pub id: &'static str,
    /// The data set's file of this sensor, without `.txt`.
    pub file: &'static str,
    pub kind: &'static str,
    pub unit: &'static str,
    /// The valid range of a reading.
    pub min: f64,
    pub max: f64,
    /// The component the sensor observes.
    pub component: &'static str,
    /// The rate the real rig samples it at (Hz). The data set keeps 1 s means of the faster
    /// ones (its `_1hz` files), which is what the simulator replays and the model learnt from.
    pub native_rate_hz: f64,
}

/// The 17 sensors in the data set's order, which is also the model's input order.
pub const RIG_SENSORS: [RigSensor; 17] = [
    RigSensor { id: "PS1", file: "PS1_1hz", kind: "pressure", unit: "bar", min: 0.0, max: 250.0, component: "pump", native_rate_hz: 100.0 },
    RigSensor { id: "PS2", file: "PS2_1hz", kind: "pressure", unit: "bar", min: 0.0, max: 250.0, component: "valve", native_rate_hz: 100.0 },
    RigSensor { id: "PS3", file: "PS3_1hz", kind: "pressure", unit: "bar", min: 0.0, max: 25.0, component: "valve", native_rate_hz: 100.0 },
    RigSensor { id: "PS4", file: "PS4_1hz", kind: "pressure", unit: "bar", min: 0.0, max: 25.0, component: "accumulator", native_rate_hz: 100.0 },
    RigSensor { id: "PS5", file: "PS5_1hz", kind: "pressure", unit: "bar", min: 0.0, max: 25.0, component: "cooler", native_rate_hz: 100.0 },
    RigSensor { id: "PS6", file: "PS6_1hz", kind: "pressure", unit: "bar", min: 0.0, max: 25.0, component: "cooler", native_rate_hz: 100.0 },
    RigSensor { id: "EPS1", file: "EPS1_1hz", kind: "power", unit: "W", min: 0.0, max: 5000.0, component: "motor", native_rate_hz: 100.0 },
    RigSensor { id: "FS1", file: "FS1_1hz", kind: "flow", unit: "l/min", min: 0.0, max: 25.0, component: "pump", native_rate_hz: 10.0 },
    RigSensor { id: "FS2", file: "FS2_1hz", kind: "flow", unit: "l/min", min: 0.0, max: 25.0, component: "cooler", native_rate_hz: 10.0 },
    RigSensor { id: "TS1", file: "TS1", kind: "temperature", unit: "degC", min: -20.0, max: 100.0, component: "tank", native_rate_hz: 1.0 },
    RigSensor { id: "TS2", file: "TS2", kind: "temperature", unit: "degC", min: -20.0, max: 100.0, component: "tank", native_rate_hz: 1.0 },
    RigSensor { id: "TS3", file: "TS3", kind: "temperature", unit: "degC", min: -20.0, max: 100.0, component: "cooler", native_rate_hz: 1.0 },
    RigSensor { id: "TS4", file: "TS4", kind: "temperature", unit: "degC", min: -20.0, max: 100.0, component: "cooler", native_rate_hz: 1.0 },
    RigSensor { id: "VS1", file: "VS1", kind: "vibration", unit: "mm/s", min: 0.0, max: 20.0, component: "pump", native_rate_hz: 1.0 },
    RigSensor { id: "CE", file: "CE", kind: "efficiency", unit: "%", min: 0.0, max: 120.0, component: "cooler", native_rate_hz: 1.0 },
    RigSensor { id: "CP", file: "CP", kind: "power", unit: "kW", min: 0.0, max: 10.0, component: "cooler", native_rate_hz: 1.0 },
    RigSensor { id: "SE", file: "SE", kind: "efficiency", unit: "%", min: 0.0, max: 120.0, component: "pump", native_rate_hz: 1.0 },
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
            .map(|sensor| Sensor {
                id: id(SensorId::parse, sensor.id),
                kind: sensor.kind.into(),
                unit: sensor.unit.into(),
                sample_rate_hz: 1.0,
                min: sensor.min,
                max: sensor.max,
                component: id(ComponentId::parse, sensor.component),
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
