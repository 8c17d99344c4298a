//! The forward pass of both networks for one window, in plain Rust over the same weights.
//!
//! Why a second forward pass: candle 0.11 asks `num_cpus::get_physical()` (which parses
//! `/proc/cpuinfo`, uncached) on every matmul unless `RAYON_NUM_THREADS` is set. For one window
//! the GNN does about twenty small matmuls, so that lookup, not arithmetic, dominated scoring
//! (≈0.7 ms per window, ≈0.1 ms with the variable set). A library cannot safely set the
//! variable in a process that already runs threads, so scoring uses this copy instead: the same
//! weights, the same operations, no allocation per layer beyond a few small vectors, and no
//! threads. Training and evaluation keep using candle (`crate::train`), which checks that both
//! forward passes agree whenever it builds its networks from an artifact; a test checks it on
//! real windows.

use super::ModelError;
use super::graph::{Arch, Edge, GraphSpec, RELATIONS, edges};
use super::weights::Weights;

/// `y = x·W + b` with `W` row-major `[inputs, outputs]`.
#[derive(Debug, Clone)]
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Dense {
    fn load(weights: &Weights, name: &str, inputs: usize, outputs: usize) -> Result<Self, ModelError> {
        Ok(Dense { w: values(weights, &format!("{name}.w"), &[inputs, outputs])?, b: values(weights, &format!("{name}.b"), &[outputs])? })
    }

    /// Adds `x·W` (no bias) to `out`.
    fn add_product(w: &[f32], x: &[f32], out: &mut [f32]) {
        let n = out.len();
        for (i, xi) in x.iter().enumerate() {
            if *xi != 0.0 {
                for (o, wij) in out.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                    *o += xi * wij;
                }
            }
        }
    }

    fn forward(&self, x: &[f32], relu: bool) -> Vec<f32> {
        let mut out = self.b.clone();
        Self::add_product(&self.w, x, &mut out);
        if relu {
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        out
    }
}

fn values(weights: &Weights, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
    Ok(weights.get(name, shape)?.to_vec())
}

#[derive(Debug, Clone)]
struct Head {
    hidden: Dense,
    out: Dense,
}

impl Head {
    fn load(weights: &Weights, name: &str, inputs: usize, hidden: usize, classes: usize) -> Result<Self, ModelError> {
        Ok(Head { hidden: Dense::load(weights, &format!("{name}.hidden"), inputs, hidden)?, out: Dense::load(weights, &format!("{name}.out"), hidden, classes)? })
    }

    fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.out.forward(&self.hidden.forward(x, true), false)
    }
}

/// Class probabilities from logits.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

#[derive(Debug, Clone)]
struct Layer {
    w_sensor: Vec<f32>,
    w_component: Vec<f32>,
    neighbours: Dense,
}

#[derive(Debug, Clone)]
pub(super) struct FastGnn {
    sensors: usize,
    hidden: usize,
    features: usize,
    encoder_w: Vec<f32>,
    encoder_b: Vec<f32>,
    embedding: Vec<f32>,
    edges: Vec<Edge>,
    layers: Vec<Layer>,
    heads: Vec<Head>,
    target_nodes: Vec<usize>,
    readout: bool,
}

impl FastGnn {
    pub fn load(weights: &Weights, spec: &GraphSpec, arch: &Arch, targets: &[String]) -> Result<Self, ModelError> {
        let (s, c, h, f) = (spec.sensors.len(), spec.components.len(), arch.hidden, arch.features);
        Ok(FastGnn {
            sensors: s,
            hidden: h,
            features: f,
            encoder_w: values(weights, "gnn.encoder.w", &[s, f, h])?,
            encoder_b: values(weights, "gnn.encoder.b", &[s, h])?,
            embedding: values(weights, "gnn.embedding", &[c, h])?,
            edges: edges(spec)?,
            layers: (0..arch.layers)
                .map(|l| {
                    Ok(Layer {
                        w_sensor: values(weights, &format!("gnn.layer{l}.w_sensor"), &[h, h])?,
                        w_component: values(weights, &format!("gnn.layer{l}.w_component"), &[h, h])?,
                        neighbours: Dense::load(weights, &format!("gnn.layer{l}.neighbours"), RELATIONS * h, h)?,
                    })
                })
                .collect::<Result<_, ModelError>>()?,
            heads: (0..arch.classes.len())
                .map(|t| Head::load(weights, &format!("gnn.head{t}"), arch.head_inputs(), arch.head_hidden, arch.classes[t]))
                .collect::<Result<_, _>>()?,
            target_nodes: targets.iter().map(|t| Ok(s + spec.component_index(t)?)).collect::<Result<_, ModelError>>()?,
            readout: arch.readout,
        })
    }

    /// Class probabilities per target; `x` is `[sensor][feature]` flattened.
    pub fn probabilities(&self, x: &[f32]) -> Vec<Vec<f32>> {
        self.logits(x).iter().map(|l| softmax(l)).collect()
    }

    /// Class logits per target (before the softmax): occlusion compares them where the
    /// probabilities have saturated.
    pub fn logits(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let (s, h, f) = (self.sensors, self.hidden, self.features);
        let n = s + self.embedding.len() / h;
        let mut nodes = vec![0f32; n * h];
        for i in 0..s {
            let out = &mut nodes[i * h..(i + 1) * h];
            out.copy_from_slice(&self.encoder_b[i * h..(i + 1) * h]);
            Dense::add_product(&self.encoder_w[i * f * h..(i + 1) * f * h], &x[i * f..(i + 1) * f], out);
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        nodes[s * h..].copy_from_slice(&self.embedding);
        let mut means = vec![0f32; n * RELATIONS * h];
        let mut update = vec![0f32; h];
        for layer in &self.layers {
            means.iter_mut().for_each(|v| *v = 0.0);
            for e in &self.edges {
                let dst = &mut means[(e.dst * RELATIONS + e.relation) * h..][..h];
                for (d, v) in dst.iter_mut().zip(&nodes[e.src * h..(e.src + 1) * h]) {
                    *d += e.weight * v;
                }
            }
            // Each node's update reads only the previous states, so compute all, then add.
            let mut next = nodes.clone();
            for v in 0..n {
                update.copy_from_slice(&layer.neighbours.b);
                let w_own = if v < s { &layer.w_sensor } else { &layer.w_component };
                Dense::add_product(w_own, &nodes[v * h..(v + 1) * h], &mut update);
                Dense::add_product(&layer.neighbours.w, &means[v * RELATIONS * h..(v + 1) * RELATIONS * h], &mut update);
                for (o, u) in next[v * h..(v + 1) * h].iter_mut().zip(&update) {
                    *o += u.max(0.0);
                }
            }
            nodes = next;
        }
        let mut input = vec![0f32; if self.readout { 2 * h } else { h }];
        if self.readout {
            for v in 0..n {
                for (g, x) in input[h..].iter_mut().zip(&nodes[v * h..(v + 1) * h]) {
                    *g += x / n as f32;
                }
            }
        }
        self.target_nodes
            .iter()
            .zip(&self.heads)
            .map(|(node, head)| {
                input[..h].copy_from_slice(&nodes[node * h..(node + 1) * h]);
                head.logits(&input)
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub(super) struct FastMlp {
    l1: Dense,
    l2: Dense,
    heads: Vec<Head>,
}

impl FastMlp {
    pub fn load(weights: &Weights, sensors: usize, arch: &Arch) -> Result<Self, ModelError> {
        let hidden = arch.mlp_hidden;
        Ok(FastMlp {
            l1: Dense::load(weights, "mlp.l1", sensors * arch.features, hidden)?,
            l2: Dense::load(weights, "mlp.l2", hidden, hidden)?,
            heads: (0..arch.classes.len())
                .map(|t| Head::load(weights, &format!("mlp.head{t}"), hidden, arch.head_hidden, arch.classes[t]))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn probabilities(&self, x: &[f32]) -> Vec<Vec<f32>> {
        self.logits(x).iter().map(|l| softmax(l)).collect()
    }

    pub fn logits(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let hidden = self.l2.forward(&self.l1.forward(x, true), true);
        self.heads.iter().map(|head| head.logits(&hidden)).collect()
    }
}
