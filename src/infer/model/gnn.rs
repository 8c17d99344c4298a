//! The graph network and its non-graph baseline.
//!
//! Nodes are the rig's sensors (first, in manifest order) and components (after them). Sensor
//! nodes start from their window features through a per-sensor encoder (a pressure at the pump
//! and one at the cooler mean different things); component nodes start from a learned embedding
//! of the component. Each layer is a relation-typed GraphSAGE step with a residual:
//!
//! `h' = h + relu(W_type·h + Σ_r W_r·mean_{u ∈ N_r(v)} h_u + b)`
//!
//! with three relations: sensor → its component, component ↔ connected component, and component
//! → its sensors (so a sensor's state can be read in the light of its component's). Each labelled
//! component has a head over its final state, optionally joined with the mean of all nodes
//! (a global readout, so a target also sees sensors more hops away than there are layers).

use candle_core::{D, Device, IndexOp, Tensor};
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::params::{Head, Linear, Params, Rng, get, normal, zeros};

/// Relations of the message passing, in the order of the stacked adjacency.
pub(super) const RELATIONS: usize = 3;

/// The equipment graph as the model sees it, stored in the manifest so an artifact is
/// self-contained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GraphSpec {
    /// Sensor id and the component it sits on, in model input order.
    pub sensors: Vec<(String, String)>,
    pub components: Vec<String>,
    /// Undirected hydraulic connections between components.
    pub connections: Vec<(String, String)>,
}

impl GraphSpec {
    /// The UCI rig: sensors in `RIG_SENSORS` order (the dataset's order).
    pub fn rig() -> Self {
        let topology = crate::rig::rig_topology();
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

/// Graph constants derived from a `GraphSpec`.
#[derive(Debug, Clone)]
struct Graph {
    sensors: usize,
    components: usize,
    /// `[N, R·N]`: the transposed row-normalised adjacency of each relation, side by side, so one
    /// matmul computes every relation's neighbour means.
    agg_t: Tensor,
    sensor_mask: Tensor,
    component_mask: Tensor,
}

impl Graph {
    fn new(spec: &GraphSpec) -> Result<Self, ModelError> {
        let (s, c) = (spec.sensors.len(), spec.components.len());
        let n = s + c;
        let mut agg_t = vec![0f32; n * RELATIONS * n];
        for e in edges(spec)? {
            agg_t[e.src * RELATIONS * n + e.relation * n + e.dst] = e.weight;
        }
        let mask = |sensor: bool| (0..n).map(|i| if (i < s) == sensor { 1f32 } else { 0.0 }).collect::<Vec<_>>();
        Ok(Graph {
            sensors: s,
            components: c,
            agg_t: Tensor::from_vec(agg_t, (n, RELATIONS * n), &Device::Cpu)?,
            sensor_mask: Tensor::from_vec(mask(true), (1, n, 1), &Device::Cpu)?,
            component_mask: Tensor::from_vec(mask(false), (1, n, 1), &Device::Cpu)?,
        })
    }
}

/// One message of a relation: `dst` receives `weight · h[src]` (weights average over the
/// sources of `dst` in that relation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Edge {
    pub relation: usize,
    pub dst: usize,
    pub src: usize,
    pub weight: f32,
}

/// The messages of every relation: 0 sensor → its component, 1 component ↔ connected
/// component, 2 component → its sensors. Node `i < S` is sensor `i`, node `S + k` component `k`.
pub(super) fn edges(spec: &GraphSpec) -> Result<Vec<Edge>, ModelError> {
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

#[derive(Debug, Clone)]
struct Layer {
    w_sensor: Tensor,
    w_component: Tensor,
    neighbours: Linear,
}

/// The graph network. Input `[B, S, F]`, output logits per target.
#[derive(Debug, Clone)]
pub struct Gnn {
    graph: Graph,
    arch: Arch,
    encoder_w: Tensor,
    encoder_b: Tensor,
    embedding: Tensor,
    layers: Vec<Layer>,
    heads: Vec<Head>,
    /// Node index of each target's component.
    target_nodes: Vec<usize>,
}

impl Gnn {
    pub fn init(params: &mut Params, rng: &mut Rng, spec: &GraphSpec, arch: &Arch) -> Result<(), ModelError> {
        let (s, c, h) = (spec.sensors.len(), spec.components.len(), arch.hidden);
        normal(params, rng, "gnn.encoder.w", &[s, arch.features, h], arch.features, 2f64.sqrt())?;
        zeros(params, "gnn.encoder.b", &[s, h])?;
        normal(params, rng, "gnn.embedding", &[c, h], 1, 1.0)?;
        for l in 0..arch.layers {
            // Small gains keep the residual stream stable at initialisation.
            normal(params, rng, &format!("gnn.layer{l}.w_sensor"), &[h, h], h, 1.0)?;
            normal(params, rng, &format!("gnn.layer{l}.w_component"), &[h, h], h, 1.0)?;
            Linear::init(params, rng, &format!("gnn.layer{l}.neighbours"), RELATIONS * h, h, 1.0)?;
        }
        for t in 0..arch.classes.len() {
            Head::init(params, rng, &format!("gnn.head{t}"), head_inputs(arch), arch.head_hidden, arch.classes[t])?;
        }
        Ok(())
    }

    pub fn load(params: &Params, spec: &GraphSpec, arch: &Arch, targets: &[String]) -> Result<Self, ModelError> {
        let (s, c, h) = (spec.sensors.len(), spec.components.len(), arch.hidden);
        let layers = (0..arch.layers)
            .map(|l| {
                Ok(Layer {
                    w_sensor: get(params, &format!("gnn.layer{l}.w_sensor"), &[h, h])?,
                    w_component: get(params, &format!("gnn.layer{l}.w_component"), &[h, h])?,
                    neighbours: Linear::load(params, &format!("gnn.layer{l}.neighbours"), RELATIONS * h, h)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        let heads = (0..arch.classes.len())
            .map(|t| Head::load(params, &format!("gnn.head{t}"), head_inputs(arch), arch.head_hidden, arch.classes[t]))
            .collect::<Result<_, _>>()?;
        let target_nodes = targets.iter().map(|t| Ok(s + spec.component_index(t)?)).collect::<Result<_, ModelError>>()?;
        Ok(Gnn {
            graph: Graph::new(spec)?,
            arch: arch.clone(),
            encoder_w: get(params, "gnn.encoder.w", &[s, arch.features, h])?,
            encoder_b: get(params, "gnn.encoder.b", &[s, h])?,
            embedding: get(params, "gnn.embedding", &[c, h])?,
            layers,
            heads,
            target_nodes,
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let (b, _, _) = x.dims3()?;
        let (s, c, h) = (self.graph.sensors, self.graph.components, self.arch.hidden);
        let n = s + c;
        // Per-sensor encoder as one batched matmul over sensors: [S, B, F] × [S, F, H].
        let sensors = x.transpose(0, 1)?.contiguous()?.matmul(&self.encoder_w)?.broadcast_add(&self.encoder_b.unsqueeze(1)?)?.relu()?;
        let components = self.embedding.unsqueeze(0)?.broadcast_as((b, c, h))?;
        let mut nodes = Tensor::cat(&[&sensors.transpose(0, 1)?, &components], 1)?.contiguous()?;
        for layer in &self.layers {
            // Neighbour means of every relation in one matmul on the node dimension.
            let flat = nodes.transpose(1, 2)?.contiguous()?.reshape((b * h, n))?;
            let means = flat.matmul(&self.graph.agg_t)?.reshape((b, h, RELATIONS, n))?.permute((0, 3, 2, 1))?.contiguous()?.reshape((
                b,
                n,
                RELATIONS * h,
            ))?;
            let own = nodes
                .broadcast_matmul(&layer.w_sensor)?
                .broadcast_mul(&self.graph.sensor_mask)?
                .add(&nodes.broadcast_matmul(&layer.w_component)?.broadcast_mul(&self.graph.component_mask)?)?;
            nodes = nodes.add(&own.add(&layer.neighbours.forward(&means)?)?.relu()?)?;
        }
        let global = if self.arch.readout { Some(nodes.mean(1)?) } else { None };
        self.target_nodes
            .iter()
            .zip(&self.heads)
            .map(|(node, head)| {
                let state = nodes.i((.., *node, ..))?;
                let input = match &global {
                    Some(g) => Tensor::cat(&[&state, g], D::Minus1)?,
                    None => state,
                };
                head.forward(&input)
            })
            .collect()
    }
}

fn head_inputs(arch: &Arch) -> usize {
    if arch.readout { 2 * arch.hidden } else { arch.hidden }
}

/// The baseline: the same features concatenated, two dense layers, the same kind of heads,
/// and no message passing.
#[derive(Debug, Clone)]
pub struct Mlp {
    l1: Linear,
    l2: Linear,
    heads: Vec<Head>,
}

impl Mlp {
    pub fn init(params: &mut Params, rng: &mut Rng, sensors: usize, arch: &Arch) -> Result<(), ModelError> {
        let inputs = sensors * arch.features;
        Linear::init(params, rng, "mlp.l1", inputs, arch.mlp_hidden, 2f64.sqrt())?;
        Linear::init(params, rng, "mlp.l2", arch.mlp_hidden, arch.mlp_hidden, 2f64.sqrt())?;
        for t in 0..arch.classes.len() {
            Head::init(params, rng, &format!("mlp.head{t}"), arch.mlp_hidden, arch.head_hidden, arch.classes[t])?;
        }
        Ok(())
    }

    pub fn load(params: &Params, sensors: usize, arch: &Arch) -> Result<Self, ModelError> {
        let inputs = sensors * arch.features;
        let heads = (0..arch.classes.len())
            .map(|t| Head::load(params, &format!("mlp.head{t}"), arch.mlp_hidden, arch.head_hidden, arch.classes[t]))
            .collect::<Result<_, _>>()?;
        Ok(Mlp { l1: Linear::load(params, "mlp.l1", inputs, arch.mlp_hidden)?, l2: Linear::load(params, "mlp.l2", arch.mlp_hidden, arch.mlp_hidden)?, heads })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let (b, s, f) = x.dims3()?;
        let hidden = self.l2.forward(&self.l1.forward(&x.reshape((b, s * f))?)?.relu()?)?.relu()?;
        self.heads.iter().map(|head| head.forward(&hidden)).collect()
    }
}

/// Either network, so training and evaluation treat them alike.
#[derive(Debug, Clone)]
pub enum Net {
    Gnn(Gnn),
    Mlp(Mlp),
}

impl Net {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        match self {
            Net::Gnn(g) => g.forward(x),
            Net::Mlp(m) => m.forward(x),
        }
    }
}
