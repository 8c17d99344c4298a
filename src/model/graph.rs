//! The equipment graph as the model sees it, the architecture sizes, and the messages of the
//! graph network's relations: what both forward passes (plain Rust here, candle in training)
//! share.
//!
//! Nodes are the sensors (first, in input order) and the components (after them). Each layer
//! passes messages along three relations: sensor → its component, component ↔ connected
//! component, and component → its sensors.

use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::domain::Topology;

/// Relations of the message passing, in the order of the stacked adjacency.
pub const RELATIONS: usize = 3;

/// The equipment graph, stored in the manifest so an artifact is self-contained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GraphSpec {
    /// Sensor id and the component it sits on, in model input order.
    pub sensors: Vec<(String, String)>,
    pub components: Vec<String>,
    /// Undirected hydraulic connections between components.
    pub connections: Vec<(String, String)>,
}

impl GraphSpec {
    /// The graph of an equipment topology, nodes in the topology's order: the order of its
    /// sensors is the model's input order, so weights trained on one topology fit only a graph
    /// built from the same topology.
    pub fn from_topology(topology: &Topology) -> Self {
        GraphSpec {
            sensors: topology.sensors.iter().map(|s| (s.id.as_str().to_string(), s.component.as_str().to_string())).collect(),
            components: topology.components.iter().map(|c| c.id.as_str().to_string()).collect(),
            connections: topology.connections.iter().map(|c| (c.from.as_str().to_string(), c.to.as_str().to_string())).collect(),
        }
    }

    pub fn component_index(&self, id: &str) -> Result<usize, ModelError> {
        self.components.iter().position(|c| c == id).ok_or_else(|| ModelError::Artifact(format!("unknown component {id}")))
    }
}

/// Architecture sizes, stored in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Arch {
    /// Inputs per sensor node.
    pub features: usize,
    pub hidden: usize,
    pub layers: usize,
    pub head_hidden: usize,
    /// Whether heads also see the mean over all nodes.
    pub readout: bool,
    /// Hidden width of the baseline MLP.
    pub mlp_hidden: usize,
    /// Classes per head, in target order.
    pub classes: Vec<usize>,
}

impl Arch {
    /// Inputs of a GNN head: the target's state, and with the readout the mean of all nodes.
    pub fn head_inputs(&self) -> usize {
        if self.readout { 2 * self.hidden } else { self.hidden }
    }
}

/// One message of a relation: `dst` receives `weight · h[src]` (weights average over the
/// sources of `dst` in that relation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub relation: usize,
    pub dst: usize,
    pub src: usize,
    pub weight: f32,
}

/// The messages of every relation: 0 sensor → its component, 1 component ↔ connected
/// component, 2 component → its sensors. Node `i < S` is sensor `i`, node `S + k` component `k`.
pub fn edges(spec: &GraphSpec) -> Result<Vec<Edge>, ModelError> {
    let s = spec.sensors.len();
    let n = s + spec.components.len();
    let mut adj = vec![vec![vec![0f32; n]; n]; RELATIONS];
    for (i, (_, component)) in spec.sensors.iter().enumerate() {
        let k = s + spec.component_index(component)?;
        adj[0][k][i] = 1.0;
        adj[2][i][k] = 1.0;
    }
    for (a, b) in &spec.connections {
        let (a, b) = (s + spec.component_index(a)?, s + spec.component_index(b)?);
        adj[1][a][b] = 1.0;
        adj[1][b][a] = 1.0;
    }
    let mut out = Vec::new();
    for (relation, a) in adj.iter().enumerate() {
        for (dst, row) in a.iter().enumerate() {
            let deg: f32 = row.iter().sum();
            out.extend(row.iter().enumerate().filter(|(_, w)| **w > 0.0).map(|(src, w)| Edge { relation, dst, src, weight: w / deg }));
        }
    }
    Ok(out)
}
