//! Equipment topology: components, the sensors on them, and the hydraulic connections between
//! components. `Topology::validate` is the only way to get one, so a stored topology is a
//! connected graph whose references all resolve.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::text::echo;
use super::{ComponentId, DomainError, SensorId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    #[schema(value_type = String)]
    pub id: ComponentId,
    /// pump, valve, cooler, accumulator, cylinder, filter, motor, tank, … (see `COMPONENT_KINDS`).
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sensor {
    #[schema(value_type = String)]
    pub id: SensorId,
    /// pressure, temperature, flow, vibration, power, efficiency, …
    pub kind: String,
    pub unit: String,
    pub sample_rate_hz: f64,
    pub min: f64,
    pub max: f64,
    /// The component the sensor observes.
    #[schema(value_type = String)]
    pub component: ComponentId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    #[schema(value_type = String)]
    pub from: ComponentId,
    #[schema(value_type = String)]
    pub to: ComponentId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub components: Vec<Component>,
    pub sensors: Vec<Sensor>,
    #[serde(default)]
    pub connections: Vec<Connection>,
}

pub const COMPONENT_KINDS: [&str; 12] = [
    "pump", "valve", "cooler", "accumulator", "cylinder", "filter", "motor", "tank", "heater", "pipe", "heat_exchanger",
    "other",
];

const MAX_NODES: usize = 512;
const MAX_SAMPLE_RATE_HZ: f64 = 100_000.0;
/// Display names of components.
const MAX_NAME_BYTES: usize = 200;
/// `kind` and `unit` of sensors.
const MAX_LABEL_BYTES: usize = 32;

impl Sensor {
    /// The largest magnitude a sensor's range (and so any accepted reading) may have. No
    /// hydraulic quantity comes near it in any customary unit (pressures in Pa reach 1e8, flows
    /// in ml/min 1e7), yet it keeps every sum the 1-minute aggregate forms finite: a bucket holds
    /// at most i64::MAX ≈ 9.2e18 readings, so |sum| ≤ 9.2e18 × 1e9 ≈ 9.2e27, far below f64::MAX
    /// ≈ 1.8e308 (and still exact to 1e-16 relative precision, as f64 sums are).
    pub const MAX_MAGNITUDE: f64 = 1e9;
}

/// Free text stored in jsonb and shown to people: not blank, bounded, and without control
/// characters (a NUL fails in jsonb with 22P05, the others break logs and CSV).
fn check_text(field: impl Fn() -> String, text: &str, max_bytes: usize) -> Result<(), DomainError> {
    if text.trim().is_empty() || text.len() > max_bytes {
        return Err(DomainError::invalid(field(), format!("must be 1 to {max_bytes} bytes, not blank")));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::invalid(field(), format!("{} contains control characters", echo(text))));
    }
    Ok(())
}

impl Topology {
    /// Checks ids, references, ranges and connectivity; errors name the offending field.
    pub fn validate(self) -> Result<Topology, DomainError> {
        if self.components.is_empty() {
            return Err(DomainError::invalid("topology.components", "at least one component is required"));
        }
        if self.sensors.is_empty() {
            return Err(DomainError::invalid("topology.sensors", "at least one sensor is required"));
        }
        if self.components.len() + self.sensors.len() > MAX_NODES {
            return Err(DomainError::invalid("topology", format!("at most {MAX_NODES} components and sensors")));
        }
        let mut component_ids = HashSet::new();
        for (i, c) in self.components.iter().enumerate() {
            if !component_ids.insert(c.id.as_str()) {
                return Err(DomainError::invalid(format!("topology.components[{i}].id"), format!("{} is used twice", c.id)));
            }
            if !COMPONENT_KINDS.contains(&c.kind.as_str()) {
                return Err(DomainError::invalid(
                    format!("topology.components[{i}].kind"),
                    format!("{} is not one of {}", echo(&c.kind), COMPONENT_KINDS.join(", ")),
                ));
            }
            if let Some(name) = &c.name {
                check_text(|| format!("topology.components[{i}].name"), name, MAX_NAME_BYTES)?;
            }
        }
        let mut sensor_ids = HashSet::new();
        for (i, s) in self.sensors.iter().enumerate() {
            let field = |name: &str| format!("topology.sensors[{i}].{name}");
            if !sensor_ids.insert(s.id.as_str()) {
                return Err(DomainError::invalid(field("id"), format!("{} is used twice", s.id)));
            }
            if component_ids.contains(s.id.as_str()) {
                return Err(DomainError::invalid(field("id"), format!("{} is already a component id", s.id)));
            }
            if !component_ids.contains(s.component.as_str()) {
                return Err(DomainError::invalid(field("component"), format!("no component {}", s.component)));
            }
            for (name, bound) in [("min", s.min), ("max", s.max)] {
                if !(bound.is_finite() && bound.abs() <= Sensor::MAX_MAGNITUDE) {
                    return Err(DomainError::invalid(
                        field(name),
                        format!("must be a finite number within ±{:e} (the bound that keeps aggregates finite)", Sensor::MAX_MAGNITUDE),
                    ));
                }
            }
            if s.min >= s.max {
                return Err(DomainError::invalid(field("min"), "must be less than max"));
            }
            if !(s.sample_rate_hz > 0.0 && s.sample_rate_hz <= MAX_SAMPLE_RATE_HZ) {
                return Err(DomainError::invalid(field("sample_rate_hz"), format!("must be in (0, {MAX_SAMPLE_RATE_HZ}]")));
            }
            for (name, text) in [("kind", &s.kind), ("unit", &s.unit)] {
                check_text(|| field(name), text, MAX_LABEL_BYTES)?;
            }
        }
        for (i, c) in self.connections.iter().enumerate() {
            for (name, end) in [("from", &c.from), ("to", &c.to)] {
                if !component_ids.contains(end.as_str()) {
                    return Err(DomainError::invalid(format!("topology.connections[{i}].{name}"), format!("no component {end}")));
                }
            }
            if c.from == c.to {
                return Err(DomainError::invalid(format!("topology.connections[{i}].to"), "a component cannot connect to itself"));
            }
        }
        if let Some(island) = self.disconnected_component() {
            return Err(DomainError::invalid(
                "topology.connections",
                format!("the graph is not connected: component {island} cannot be reached"),
            ));
        }
        Ok(self)
    }

    /// A component not reachable from the first one over connections, if any.
    fn disconnected_component(&self) -> Option<&ComponentId> {
        let mut adjacent: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &self.connections {
            adjacent.entry(c.from.as_str()).or_default().push(c.to.as_str());
            adjacent.entry(c.to.as_str()).or_default().push(c.from.as_str());
        }
        let mut seen = HashSet::from([self.components[0].id.as_str()]);
        let mut stack = vec![self.components[0].id.as_str()];
        while let Some(node) = stack.pop() {
            for next in adjacent.get(node).into_iter().flatten() {
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        self.components.iter().map(|c| &c.id).find(|id| !seen.contains(id.as_str()))
    }

    /// A hash of the graph's shape (ids, kinds, edges), independent of listing order and of
    /// display fields, so a model trained for one topology can recognise it.
    pub fn hash(&self) -> String {
        let components: BTreeMap<&str, &str> = self.components.iter().map(|c| (c.id.as_str(), c.kind.as_str())).collect();
        let sensors: BTreeMap<&str, (&str, &str)> =
            self.sensors.iter().map(|s| (s.id.as_str(), (s.kind.as_str(), s.component.as_str()))).collect();
        let mut edges: Vec<(&str, &str)> = self
            .connections
            .iter()
            .map(|c| if c.from <= c.to { (c.from.as_str(), c.to.as_str()) } else { (c.to.as_str(), c.from.as_str()) })
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let canonical = serde_json::json!({ "components": components, "sensors": sensors, "edges": edges });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    pub fn sensor(&self, id: &str) -> Option<&Sensor> {
        self.sensors.iter().find(|s| s.id.as_str() == id)
    }
}

#[cfg(test)]
mod tests;
