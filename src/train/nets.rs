//! The graph network and its non-graph baseline in candle, for training and evaluation; scoring
//! runs the same networks in plain Rust (`crate::model`).
//!
//! Nodes are the sensors (first, in manifest order) and components (after them). Sensor
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

use std::collections::HashMap;

use candle_core::{D, Device, IndexOp, Tensor};

use super::TrainError;
use super::params::{Head, Linear, Params, Rng, from_weights, get, normal, zeros};
use crate::model::{Arch, GraphSpec, Network, RELATIONS, RigModel, edges};

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
    fn new(spec: &GraphSpec) -> Result<Self, TrainError> {
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
    pub fn init(params: &mut Params, rng: &mut Rng, spec: &GraphSpec, arch: &Arch) -> Result<(), TrainError> {
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
            Head::init(params, rng, &format!("gnn.head{t}"), arch.head_inputs(), arch.head_hidden, arch.classes[t])?;
        }
        Ok(())
    }

    pub fn load(params: &Params, spec: &GraphSpec, arch: &Arch, targets: &[String]) -> Result<Self, TrainError> {
        let (s, c, h) = (spec.sensors.len(), spec.components.len(), arch.hidden);
        let layers = (0..arch.layers)
            .map(|l| {
                Ok(Layer {
                    w_sensor: get(params, &format!("gnn.layer{l}.w_sensor"), &[h, h])?,
                    w_component: get(params, &format!("gnn.layer{l}.w_component"), &[h, h])?,
                    neighbours: Linear::load(params, &format!("gnn.layer{l}.neighbours"), RELATIONS * h, h)?,
                })
            })
            .collect::<Result<_, TrainError>>()?;
        let heads = (0..arch.classes.len())
            .map(|t| Head::load(params, &format!("gnn.head{t}"), arch.head_inputs(), arch.head_hidden, arch.classes[t]))
            .collect::<Result<_, _>>()?;
        let target_nodes = targets.iter().map(|t| Ok(s + spec.component_index(t)?)).collect::<Result<_, TrainError>>()?;
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

/// The baseline: the same features concatenated, two dense layers, the same kind of heads,
/// and no message passing.
#[derive(Debug, Clone)]
pub struct Mlp {
    l1: Linear,
    l2: Linear,
    heads: Vec<Head>,
}

impl Mlp {
    pub fn init(params: &mut Params, rng: &mut Rng, sensors: usize, arch: &Arch) -> Result<(), TrainError> {
        let inputs = sensors * arch.features;
        Linear::init(params, rng, "mlp.l1", inputs, arch.mlp_hidden, 2f64.sqrt())?;
        Linear::init(params, rng, "mlp.l2", arch.mlp_hidden, arch.mlp_hidden, 2f64.sqrt())?;
        for t in 0..arch.classes.len() {
            Head::init(params, rng, &format!("mlp.head{t}"), arch.mlp_hidden, arch.head_hidden, arch.classes[t])?;
        }
        Ok(())
    }

    pub fn load(params: &Params, sensors: usize, arch: &Arch) -> Result<Self, TrainError> {
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

/// Both networks of one model, in candle.
#[derive(Debug, Clone)]
pub struct Networks {
    gnn: Net,
    mlp: Net,
}

impl Networks {
    pub fn load(params: &Params, spec: &GraphSpec, arch: &Arch, targets: &[String]) -> Result<Self, TrainError> {
        Ok(Networks { gnn: Net::Gnn(Gnn::load(params, spec, arch, targets)?), mlp: Net::Mlp(Mlp::load(params, spec.sensors.len(), arch)?) })
    }

    /// The networks of a model, checked against its plain forward pass on a window with every
    /// sensor missing, so what candle evaluates is what scoring computes.
    pub fn of(model: &RigModel) -> Result<Self, TrainError> {
        let manifest = model.manifest();
        let targets: Vec<String> = manifest.targets.iter().map(|t| t.component.clone()).collect();
        let networks = Networks::load(&from_weights(model.weights())?, &manifest.graph, &manifest.arch, &targets)?;
        networks.check_agreement(model, &HashMap::new())?;
        Ok(networks)
    }

    pub fn get(&self, network: Network) -> &Net {
        match network {
            Network::Gnn => &self.gnn,
            Network::Mlp => &self.mlp,
        }
    }

    /// Class probabilities per target for one window (as `RigModel::probabilities`), through candle.
    pub fn probabilities(&self, model: &RigModel, window: &HashMap<String, Vec<f64>>, network: Network) -> Result<Vec<Vec<f32>>, TrainError> {
        let x = Tensor::from_vec(model.inputs(window), (1, model.manifest().graph.sensors.len(), model.node_features()), &Device::Cpu)?;
        self.get(network).forward(&x)?.iter().map(|logits| Ok(candle_nn::ops::softmax_last_dim(logits)?.flatten_all()?.to_vec1::<f32>()?)).collect()
    }

    /// Fails when candle and the model's plain forward pass disagree on `window`.
    pub fn check_agreement(&self, model: &RigModel, window: &HashMap<String, Vec<f64>>) -> Result<(), TrainError> {
        for network in [Network::Gnn, Network::Mlp] {
            let plain = model.probabilities(window, network)?;
            let candle = self.probabilities(model, window, network)?;
            let diff = plain.iter().flatten().zip(candle.iter().flatten()).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            if diff > 1e-4 {
                return Err(TrainError::ForwardPassesDiffer { network, diff });
            }
        }
        Ok(())
    }
}
